//! [`AuditLog`]: reading the audit log (events are written by the services
//! that cause them, through [`crate::context::Context`]).

use std::sync::Arc;

use crate::audit::AuditRecord;
use crate::context::Context;
use crate::error::CoreError;

/// The audit log, for administrators.
#[derive(Debug)]
pub struct AuditLog {
    context: Arc<Context>,
}

impl AuditLog {
    /// The log in `context`'s store.
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// A page of the audit log, newest first.
    pub async fn page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, CoreError> {
        Ok(self.context.store().list_audit(before, limit).await?)
    }
}
