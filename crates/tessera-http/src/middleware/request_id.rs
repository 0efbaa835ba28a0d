//! Request ids (`x-request-id`): the id a request arrives with, or a new
//! one; [`super::request_log`] puts it in the request's log context and on
//! its answer, so a client's report can be matched to the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

/// The header a request id travels in.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Length of the random prefix, in hex digits, plus its dash.
const PREFIX_LEN: usize = 17;
/// Hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Request ids: a random per-process prefix and a counter, `{prefix:016x}-{n:x}`.
/// Unique across nodes and restarts without a trip to the OS random source
/// per request (a v4 UUID each cost a system call), and written by hand:
/// `format!` cost a request more than the rest of this layer.
#[derive(Clone)]
pub struct RequestIds {
    prefix: [u8; PREFIX_LEN],
    next: Arc<AtomicU64>,
}

impl RequestIds {
    /// Ids with a fresh random prefix.
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // Uniqueness, not secrecy: a clock-derived prefix will do if the
        // OS random source fails.
        let seed = match tessera_core::secret::fill_random(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        let mut prefix = [b'-'; PREFIX_LEN];
        write_hex(&mut prefix[..16], seed);
        Self {
            prefix,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let digits = (16 - n.leading_zeros() as usize / 4).max(1);
        let mut id = [0u8; PREFIX_LEN + 16];
        if let Some((prefix, counter)) = id.split_at_mut_checked(PREFIX_LEN) {
            prefix.copy_from_slice(&self.prefix);
            if let Some(counter) = counter.get_mut(..digits) {
                write_hex(counter, n);
            }
        }
        // Only hex digits and a dash: always a valid header value.
        id.get(..PREFIX_LEN + digits)
            .and_then(|id| HeaderValue::from_bytes(id).ok())
            .unwrap_or(HeaderValue::from_static("-"))
    }
}

/// Writes the `out.len()` lowest hex digits of `n` into `out`.
fn write_hex(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = HEX.get((n & 0xf) as usize).copied().unwrap_or(b'0');
        n >>= 4;
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_the_counter_in_hex() {
        let ids = RequestIds::new();
        let prefix = std::str::from_utf8(&ids.prefix)
            .unwrap_or_default()
            .to_owned();
        assert_eq!(prefix.len(), 17);
        assert!(prefix.ends_with('-'));
        assert!(prefix[..16].bytes().all(|b| b.is_ascii_hexdigit()));
        let first = ids.next_id();
        assert_eq!(first.to_str().ok(), Some(format!("{prefix}0").as_str()));
        ids.next.store(0xabc, Ordering::Relaxed);
        assert_eq!(
            ids.next_id().to_str().ok(),
            Some(format!("{prefix}abc").as_str())
        );
        ids.next.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            ids.next_id().to_str().ok(),
            Some(format!("{prefix}ffffffffffffffff").as_str())
        );
        assert_ne!(RequestIds::new().prefix, ids.prefix);
    }
}
