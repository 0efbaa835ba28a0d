//! Request ids (`x-request-id`): set on every request that lacks one and
//! echoed on its response, so a client's report can be matched to the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;
use tower_http::request_id::{MakeRequestId, RequestId};

/// Request ids: a random per-process prefix and a counter. Unique across
/// nodes and restarts without a trip to the OS random source per request
/// (a v4 UUID each cost a system call).
#[derive(Clone)]
pub struct RequestIds {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    /// Ids with a fresh random prefix.
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // Uniqueness, not secrecy: a clock-derived prefix will do if the
        // OS random source fails.
        let prefix = match tessera_core::secret::fill_random(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        Self {
            prefix,
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
