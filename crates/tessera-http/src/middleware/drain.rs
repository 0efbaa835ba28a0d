//! Draining before a shutdown: once [`Draining::start`] is called (on
//! SIGTERM), `/readyz` answers 503 so load balancers stop sending new
//! work, and every response says `Connection: close`, so clients and
//! proxies open their next connection elsewhere instead of reusing one
//! that is about to close. Requests keep being served all along.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Response, header};

/// Whether this node is draining; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on, this node is on its way out.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// While draining, every response says `Connection: close`.
    pub fn edit<B>(&self, response: &mut Response<B>) {
        // Checked when the answer is ready: a request that began before
        // the drain still closes its connection.
        if self.is_draining() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}
