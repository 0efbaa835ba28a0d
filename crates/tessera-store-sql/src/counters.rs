//! The counters both SQL stores keep (`counters`: key, count, window end,
//! block end), their shared statement, and the answers of a reservation
//! read back from rows. Each store admits attempts with its own single
//! atomic operation that returns, per key of the attempt, `key, count,
//! expires_at, blocked_until`: the counted rows when it was admitted, the
//! rows as they are when it was refused.
//!
//! Placeholders are `$N`, numbered in order of first appearance, which
//! SQLite reads like PostgreSQL.

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use tessera_core::attempt::{Admission, Attempt, CounterState, IN_FLIGHT_RETRY};
use tessera_core::store::{StoreResult, from_millis, to_millis};
use time::OffsetDateTime;

use crate::corrupt;

/// Blocks `$1` until `$2` (a longer block stays) and forgets its count.
pub const BLOCK: &str = "INSERT INTO counters (key, count, expires_at, blocked_until) \
     VALUES ($1, 0, $2, $2) \
     ON CONFLICT (key) DO UPDATE SET count = 0, blocked_until = CASE \
     WHEN counters.blocked_until > excluded.blocked_until THEN counters.blocked_until \
     ELSE excluded.blocked_until END";

/// Binds a reservation's parameters: `$1` address key (or NULL), `$2`
/// account key, `$3` now, `$4` window, `$5` limit, `$6` the account's first
/// wait, `$7` its longest wait (times in Unix milliseconds, durations in
/// milliseconds).
pub fn bind_attempt<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    attempt: &Attempt<'q>,
    now: OffsetDateTime,
) -> Query<'q, DB, <DB as Database>::Arguments>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let millis = |d: time::Duration| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX);
    query
        .bind(attempt.ip)
        .bind(attempt.account)
        .bind(to_millis(now))
        .bind(millis(attempt.window))
        .bind(i64::from(attempt.limit))
        .bind(millis(attempt.first_wait))
        .bind(millis(attempt.max_wait))
}

/// A counter row: its key and state.
fn read_counter<'r, R>(row: &'r R) -> StoreResult<(String, CounterState)>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let get = |name: &'r str| -> StoreResult<i64> { row.try_get(name).map_err(corrupt) };
    Ok((
        row.try_get("key").map_err(corrupt)?,
        CounterState {
            count: u64::try_from(get("count")?).unwrap_or(0),
            window_end: from_millis(get("expires_at")?)?,
            blocked_until: from_millis(get("blocked_until")?)?,
        },
    ))
}

/// The attempt's address and account counters among `rows`.
fn states<'r, R>(
    attempt: &Attempt<'_>,
    rows: &'r [R],
) -> StoreResult<(Option<CounterState>, Option<CounterState>)>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut ip = None;
    let mut account = None;
    for row in rows {
        let (key, state) = read_counter(row)?;
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
pub fn admitted<'r, R>(attempt: &Attempt<'_>, counted: &'r [R]) -> StoreResult<Option<Admission>>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    if counted.is_empty() {
        return Ok(None);
    }
    let (ip, account) = states(attempt, counted)?;
    let account = account.ok_or_else(|| corrupt("reservation without the account's counter"))?;
    Ok(Some(Admission::Granted {
        ip: ip.map_or(0, |c| c.count),
        account: account.count,
    }))
}

/// The answer to a refused attempt, from its keys' counters.
/// Should they have changed since (a block just ended), the client is
/// told to come back shortly.
pub fn refused<'r, R>(
    attempt: &Attempt<'_>,
    state: &'r [R],
    now: OffsetDateTime,
) -> StoreResult<Admission>
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let (ip, account) = states(attempt, state)?;
    let retry_at = attempt
        .refusal(ip.as_ref(), account.as_ref(), now)
        .unwrap_or(now + IN_FLIGHT_RETRY);
    Ok(Admission::Refused { retry_at })
}
