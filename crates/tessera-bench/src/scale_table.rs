//! The `--populate` report as a table for people (`--json` prints
//! [`ScaleReport`] as is).

use crate::scale::{Compared, ScaleReport, Stretch};
use crate::table::{print_header, print_row};

/// Prints `report` to stdout.
pub(crate) fn print_scale(report: &ScaleReport, sessions: usize) {
    println!(
        "Tessera bench --populate {sessions} — {} — {}",
        report.machine, report.store
    );
    let p = &report.populated;
    println!(
        "populated: {} sessions ({} cookie, {} token; {} expired) over {} users, and {} revocations, in {:.1} s ({:.0} rows/s)",
        p.sessions,
        p.cookie_sessions,
        p.token_sessions,
        p.expired_sessions,
        p.users,
        p.revocations,
        p.seconds,
        p.rows_per_second
    );
    println!(
        "reference: {} sessions over {} users, only those requested; both served at once, measured in alternating windows",
        report.reference.sessions, report.reference.users
    );
    println!(
        "{} s per scenario, {} connections, loopback, server and load in one process",
        report.duration_s, report.connections
    );
    println!();
    print_header();
    for compared in [&report.cold_me, &report.refresh] {
        print_compared(compared);
    }
    println!(
        "ratio: populated over reference (requests per second; p99 in brackets). \
         Cold: each request brings a session no request used before."
    );
    println!();
    let s = &report.sweep;
    println!(
        "sweep: {} of {} expired sessions deleted in {:.2} s ({:.0} rows/s)",
        s.deleted_sessions, s.expired_sessions, s.seconds, s.rows_per_second
    );
    print_stretches("cold GET /v1/me at 200/s", &s.me_before, &s.me_during);
    print_stretches("refresh at 100/s", &s.refresh_before, &s.refresh_during);
    let r = &report.revocation_set;
    println!(
        "revocation set: {} entries, {:.0} bytes each; loaded in {:.0} ms; a node starts in {:.0} ms with them ({:.0} ms without)",
        r.entries, r.bytes_per_entry, r.load_ms, r.node_start_ms, r.reference_node_start_ms
    );
    let c = &report.checks;
    println!(
        "populated credentials: a live cookie answered {}, an expired one {}, a refresh token {}",
        c.populated_cookie, c.expired_cookie, c.populated_refresh
    );
}

fn print_compared(compared: &Compared) {
    print_row(
        &compared.populated,
        &format!(
            "{:.0}% ({:.1}×)",
            compared.per_second_ratio * 100.0,
            compared.p99_ratio
        ),
    );
    print_row(&compared.reference, "—");
}

fn print_stretches(name: &str, before: &Stretch, during: &Stretch) {
    println!(
        "  {name}: p99 {} µs, max {} µs during the sweep ({} requests, {} errors); p99 {} µs, max {} µs before",
        during.p99_us, during.max_us, during.requests, during.errors, before.p99_us, before.max_us
    );
}
