//! Expiring counters for rate limits (`counters`: key, count, window end,
//! block end). Each dialect admits password attempts with its own single
//! atomic operation ([`Dialect::reserve`]) that returns, per key of the
//! attempt, `key, count, expires_at, blocked_until`: the counted rows when
//! it was admitted, the rows as they are when it was refused; this module
//! binds it and reads the answers back.

use tessera_core::attempt::{Admission, Attempt, CounterState, IN_FLIGHT_RETRY};
use tessera_core::store::StoreResult;
use time::OffsetDateTime;

use crate::dialect::Dialect;
use crate::errors::{corrupt, unavailable};
use crate::sql::Sql;
use crate::store::SqlStore;

/// Adds one to `$1` in a window ending at `$2` if the one it has ended by
/// `$3`. One upsert: concurrent hits on any node each count exactly once.
const HIT: &str = "INSERT INTO counters (key, count, expires_at) VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN counters.expires_at <= $3 THEN 1 ELSE counters.count + 1 END, \
     expires_at = CASE WHEN counters.expires_at <= $3 THEN excluded.expires_at \
     ELSE counters.expires_at END \
     RETURNING count, expires_at";

/// Blocks `$1` until `$2` (a longer block stays) and forgets its count.
const BLOCK: &str = "INSERT INTO counters (key, count, expires_at, blocked_until) \
     VALUES ($1, 0, $2, $2) \
     ON CONFLICT (key) DO UPDATE SET count = 0, blocked_until = CASE \
     WHEN counters.blocked_until > excluded.blocked_until THEN counters.blocked_until \
     ELSE excluded.blocked_until END";

/// Counters whose window and block have passed at `$1`, `$2` at most.
const EXPIRED: &str = crate::store::batched_delete!(
    "counters",
    "key",
    "expires_at <= $1 AND blocked_until <= $1"
);

/// Binds a reservation's parameters to `sql`: `$1` address key (or NULL),
/// `$2` account key, `$3` now, `$4` window, `$5` limit, `$6` the account's
/// first wait, `$7` its longest wait (durations in milliseconds).
pub fn bind_attempt<'q, D: Dialect>(
    sql: &'static str,
    attempt: &Attempt<'_>,
    now: OffsetDateTime,
) -> Sql<'q, D> {
    let millis = |d: time::Duration| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX);
    Sql::new(sql)
        .opt_text(attempt.ip)
        .text(attempt.account)
        .time(now)
        .int(millis(attempt.window))
        .int(i64::from(attempt.limit))
        .int(millis(attempt.first_wait))
        .int(millis(attempt.max_wait))
}

/// A counter row: its key and state.
fn read_counter<D: Dialect>(row: &D::Row) -> StoreResult<(String, CounterState)> {
    Ok((
        D::text(row, "key")?,
        CounterState {
            count: u64::try_from(D::int(row, "count")?).unwrap_or(0),
            window_end: D::time(row, "expires_at")?,
            blocked_until: D::time(row, "blocked_until")?,
        },
    ))
}

/// The attempt's address and account counters among `rows`.
fn states<D: Dialect>(
    attempt: &Attempt<'_>,
    rows: &[D::Row],
) -> StoreResult<(Option<CounterState>, Option<CounterState>)> {
    let mut ip = None;
    let mut account = None;
    for row in rows {
        let (key, state) = read_counter::<D>(row)?;
        if Some(key.as_str()) == attempt.ip {
            ip = Some(state);
        } else if key == attempt.account {
            account = Some(state);
        }
    }
    Ok((ip, account))
}

/// The admission told by the rows a reservation counted; `None` when it
/// counted none (refused).
pub fn admitted<D: Dialect>(
    attempt: &Attempt<'_>,
    counted: &[D::Row],
) -> StoreResult<Option<Admission>> {
    if counted.is_empty() {
        return Ok(None);
    }
    let (ip, account) = states::<D>(attempt, counted)?;
    let account = account.ok_or_else(|| corrupt("reservation without the account's counter"))?;
    Ok(Some(Admission::Granted {
        ip: ip.map_or(0, |c| c.count),
        account: account.count,
    }))
}

/// The answer to a refused attempt, from its keys' counters.
/// Should they have changed since (a block just ended), the client is
/// told to come back shortly.
pub fn refused<D: Dialect>(
    attempt: &Attempt<'_>,
    state: &[D::Row],
    now: OffsetDateTime,
) -> StoreResult<Admission> {
    let (ip, account) = states::<D>(attempt, state)?;
    let retry_at = attempt
        .refusal(ip.as_ref(), account.as_ref(), now)
        .unwrap_or(now + IN_FLIGHT_RETRY);
    Ok(Admission::Refused { retry_at })
}

impl<D: Dialect> SqlStore<D> {
    /// See [`tessera_core::store::Counters::hit`].
    pub async fn hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, OffsetDateTime)> {
        let row = Sql::<D>::new(HIT)
            .text(key)
            .time(now + window)
            .time(now)
            .fetch_one(D::on_pool(self.counters_pool()))
            .await
            .map_err(unavailable)?;
        let count = D::int(&row, "count")?;
        Ok((
            u64::try_from(count).unwrap_or(0),
            D::time(&row, "expires_at")?,
        ))
    }

    /// See [`tessera_core::store::Counters::reserve`].
    pub async fn reserve(
        &self,
        attempt: &Attempt<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Admission> {
        D::reserve(self.counters_pool(), attempt, now).await
    }

    /// See [`tessera_core::store::Counters::release`].
    pub async fn release(&self, attempt: &Attempt<'_>, succeeded: bool) -> StoreResult<()> {
        Sql::<D>::new(D::RELEASE_ATTEMPT)
            .opt_text(attempt.ip)
            .text(attempt.account)
            .flag(succeeded)
            .execute(D::on_pool(self.counters_pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Counters::block`].
    pub async fn block(&self, key: &str, until: OffsetDateTime) -> StoreResult<()> {
        Sql::<D>::new(BLOCK)
            .text(key)
            .time(until)
            .execute(D::on_pool(self.counters_pool()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`tessera_core::store::Counters::delete_expired_counters`].
    pub async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sweep_in_batches(EXPIRED, now).await
    }
}
