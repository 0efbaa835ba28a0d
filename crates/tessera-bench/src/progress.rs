//! One line of progress on stderr, rewritten in place: the report alone goes
//! to stdout.

use std::io::Write as _;

/// Says what is being measured now.
pub(crate) fn progress(what: &str) {
    eprint!("\r\x1b[2Ktessera bench: {what} …");
    let _ = std::io::stderr().flush();
}
