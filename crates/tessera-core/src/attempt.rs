//! A password attempt as the counters see it ([`crate::store::Counters`]):
//! its keys, its limits, and the rules every store applies to them in one
//! atomic operation. The rules are written here once, in Rust; the SQL and
//! Lua of the stores follow them and the conformance suite holds them to it.
//!
//! Each key (the client's address, the account) counts attempts in a fixed
//! window that starts at its first attempt. An attempt counts from the
//! moment it is admitted, before any password work, so attempts in flight
//! count against the limit as failures do; a success gives its slot back.
//!
//! - An address whose count has reached the limit is refused.
//! - An account is never refused for its count, only slowed: each attempt
//!   from the limit on makes the next one wait, doubling up to a maximum.
//! - A key may also be blocked until a time (an address after too many
//!   failures); a blocked key is refused.
//! - A refused attempt changes nothing.

use time::{Duration, OffsetDateTime};

/// What a client is told to wait while its address's last attempts are
/// still being checked (they either fail, and the address is blocked, or
/// succeed, and give their slots back).
pub const IN_FLIGHT_RETRY: Duration = Duration::seconds(1);

/// One attempt: the keys it counts under and the limits that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// The counter key of the client's address, when it is known.
    pub ip: Option<&'a str>,
    /// The counter key of the account (known or not).
    pub account: &'a str,
    /// Attempts (in flight or failed) allowed per key within a window.
    pub limit: u32,
    /// The counting window.
    pub window: Duration,
    /// The account's wait after its attempt at the limit.
    pub first_wait: Duration,
    /// The longest the account's wait grows.
    pub max_wait: Duration,
}

/// A counter as stored: attempts in its window, the window's end, and the
/// end of its block (in the past when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterState {
    /// Attempts counted in the window.
    pub count: u64,
    /// When the window ends (the count is void from then on).
    pub window_end: OffsetDateTime,
    /// When the key's block or wait ends.
    pub blocked_until: OffsetDateTime,
}

/// The answer of [`crate::store::Counters::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The attempt may go ahead. The counts include it (`ip` is 0 when the
    /// address is unknown).
    Granted {
        /// The address's count.
        ip: u64,
        /// The account's count.
        account: u64,
    },
    /// Refused, and nothing counted: the client may try again at `retry_at`.
    Refused {
        /// When a new attempt may be admitted.
        retry_at: OffsetDateTime,
    },
}

/// `base` doubled `times` times, at most `cap`.
pub fn doubled(base: Duration, times: u64, cap: Duration) -> Duration {
    let factor = 1_i32 << times.min(20);
    (base * factor).min(cap)
}

impl Attempt<'_> {
    /// The wait the account's `count`th attempt in a window imposes on the
    /// next one: none below the limit, then `first_wait`, doubling with
    /// each further attempt up to `max_wait`.
    pub fn account_wait(&self, count: u64) -> Option<Duration> {
        let limit = u64::from(self.limit);
        (count >= limit).then(|| doubled(self.first_wait, count - limit, self.max_wait))
    }

    /// Whether an attempt is admitted given its keys' counters (`None`:
    /// no counter yet) at `now`; if not, when it may be retried.
    pub fn refusal(
        &self,
        ip: Option<&CounterState>,
        account: Option<&CounterState>,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let blocked = |c: &CounterState| (c.blocked_until > now).then_some(c.blocked_until);
        let full = ip
            .filter(|c| c.window_end > now && c.count >= u64::from(self.limit))
            .map(|_| now + IN_FLIGHT_RETRY);
        [ip.and_then(blocked), account.and_then(blocked), full]
            .into_iter()
            .flatten()
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> Attempt<'static> {
        Attempt {
            ip: Some("ip:192.0.2.1"),
            account: "acct:alice",
            limit: 3,
            window: Duration::minutes(15),
            first_wait: Duration::seconds(1),
            max_wait: Duration::minutes(1),
        }
    }

    #[test]
    fn waits_double_up_to_their_cap() {
        let base = Duration::minutes(15);
        let cap = Duration::days(1);
        assert_eq!(doubled(base, 0, cap), Duration::minutes(15));
        assert_eq!(doubled(base, 1, cap), Duration::minutes(30));
        assert_eq!(doubled(base, 3, cap), Duration::hours(2));
        assert_eq!(doubled(base, 40, cap), cap);
        let a = attempt();
        assert_eq!(a.account_wait(2), None);
        assert_eq!(a.account_wait(3), Some(Duration::seconds(1)));
        assert_eq!(a.account_wait(8), Some(Duration::seconds(32)));
        assert_eq!(a.account_wait(9), Some(Duration::minutes(1)));
        assert_eq!(a.account_wait(u64::MAX), Some(Duration::minutes(1)));
    }

    #[test]
    fn refusals_name_the_latest_reason() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let a = attempt();
        let state = |count, window: i64, blocked: i64| CounterState {
            count,
            window_end: now + Duration::seconds(window),
            blocked_until: now + Duration::seconds(blocked),
        };
        assert_eq!(a.refusal(None, None, now), None);
        assert_eq!(
            a.refusal(Some(&state(2, 60, -1)), Some(&state(9, 60, 0)), now),
            None
        );
        // A full address while its attempts are in flight.
        assert_eq!(
            a.refusal(Some(&state(3, 60, 0)), None, now),
            Some(now + IN_FLIGHT_RETRY)
        );
        // ... but not once its window is over.
        assert_eq!(a.refusal(Some(&state(3, 0, 0)), None, now), None);
        // The account's count alone never refuses; its wait does.
        assert_eq!(a.refusal(None, Some(&state(30, 60, 0)), now), None);
        assert_eq!(
            a.refusal(Some(&state(3, 60, 900)), Some(&state(5, 60, 4)), now),
            Some(now + Duration::seconds(900))
        );
    }
}
