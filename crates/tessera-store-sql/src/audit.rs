//! The append-only audit log (`audit_log`).

use tessera_core::audit::{AuditEvent, AuditRecord};
use tessera_core::store::StoreResult;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable};
use crate::sql::Sql;
use crate::store::SqlStore;

/// Binds an audit event's columns: kind, user_id, ip, user_agent, at, detail.
pub(crate) fn bind_audit<'q, D: Dialect>(q: Sql<'q, D>, e: &AuditEvent) -> Sql<'q, D> {
    q.text(&e.kind)
        .opt_uuid(e.user_id)
        .ip(e.ip)
        .opt_text(e.user_agent.as_deref())
        .time(e.at)
        .text(&e.detail.to_string())
}

/// An audit row (`id`, the event's columns, `detail` as text).
fn read_audit<D: Dialect>(row: &D::Row) -> StoreResult<AuditRecord> {
    let detail = D::text(row, "detail")?;
    Ok(AuditRecord {
        id: D::int(row, "id")?,
        event: AuditEvent {
            kind: D::text(row, "kind")?,
            user_id: D::opt_uuid(row, "user_id")?,
            ip: D::ip(row, "ip")?,
            user_agent: D::opt_text(row, "user_agent")?,
            at: D::time(row, "at")?,
            detail: serde_json::from_str(&detail).map_err(corrupt)?,
        },
    })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Audit::append_audit`].
    pub async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        bind_audit(Sql::<D>::new(D::INSERT_AUDIT), e)
            .execute(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Audit::list_audit`].
    pub async fn list_audit(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = Sql::<D>::new(D::LIST_AUDIT)
            .int(before.unwrap_or(i64::MAX))
            .int(i64::from(limit))
            .fetch_all(D::on_pool(self.pool()))
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_audit::<D>).collect()
    }
}
