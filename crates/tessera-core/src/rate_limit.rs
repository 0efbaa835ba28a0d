//! Brute-force defence for sign-in (cookie and token endpoints together):
//! failures are counted per client IP and per account in a window.
//!
//! - An IP over the limit is blocked, for the window, then twice as long at
//!   each further strike (up to a day): addresses are the attacker's.
//! - An account over the limit is slowed, not locked: each further failure
//!   makes the next attempt wait, doubling up to a minute. An attacker can
//!   keep an account slow but never shut its owner out.
//!
//! Counters live in the store (Redis when configured), so every node shares
//! them; when they cannot be read, sign-in is refused (503), not unguarded.
//! Unknown usernames are counted exactly like known ones.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::error::CoreError;
use crate::service::Tessera;

/// Longest a blocked IP waits.
const MAX_IP_BLOCK: Duration = Duration::days(1);
/// Longest a slowed account waits between attempts.
const MAX_ACCOUNT_DELAY: Duration = Duration::minutes(1);
/// How long IP strikes are remembered for the growing block.
const STRIKE_MEMORY: Duration = Duration::days(1);

/// Failed sign-ins allowed per account and per IP within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Failures allowed before the limit applies.
    pub login_attempts: u32,
    /// The counting window.
    pub window: Duration,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            login_attempts: 10,
            window: Duration::minutes(15),
        }
    }
}

/// The counter keys of one sign-in attempt.
pub(crate) struct AttemptKeys {
    account: String,
    ip: Option<String>,
}

impl AttemptKeys {
    /// Keys for `normalized_username` (or the raw input when it is not a
    /// valid name, so garbage is limited too) from `client`.
    pub(crate) fn new(normalized_username: &str, client: &ClientInfo) -> Self {
        Self {
            account: format!("acct:{normalized_username}"),
            ip: client.ip.map(|ip| format!("ip:{ip}")),
        }
    }
}

fn seconds_until(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(1)
}

fn doubled(base: Duration, times: u64, cap: Duration) -> Duration {
    let factor = 1_i32 << times.min(20);
    (base * factor).min(cap)
}

impl Tessera {
    /// Refuses with [`CoreError::RateLimited`] while the IP is blocked or
    /// the account's next attempt is not due yet. Otherwise tells whether
    /// the account has failures on record, for [`Self::record_success`].
    /// One store read for all three keys.
    pub(crate) async fn guard_sign_in(&self, keys: &AttemptKeys) -> Result<Failures, CoreError> {
        let now = self.now();
        let account_block = format!("block:{}", keys.account);
        let account_failures = failures_key(&keys.account);
        let ip_block = keys.ip.as_ref().map(|ip| format!("block:{ip}"));
        let mut asked = vec![account_block.as_str(), account_failures.as_str()];
        asked.extend(ip_block.as_deref());
        let marks = self.store.marks(&asked, now).await?;
        let mark = |i: usize| marks.get(i).copied().flatten();
        let until = [mark(0), mark(2)].into_iter().flatten().max();
        match until {
            Some(until) => Err(CoreError::RateLimited {
                retry_after: seconds_until(now, until),
            }),
            None => Ok(Failures {
                on_record: mark(1).is_some(),
            }),
        }
    }

    /// Counts a failure and imposes the growing waits.
    pub(crate) async fn record_failure(
        &self,
        keys: &AttemptKeys,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let policy = self.config.rate_limit;
        let limit = u64::from(policy.login_attempts);
        let now = self.now();
        if let Some(ip) = &keys.ip {
            let (failures, _) = self
                .store
                .hit(&format!("fail:{ip}"), policy.window, now)
                .await?;
            if failures >= limit {
                let (strikes, _) = self
                    .store
                    .hit(&format!("strikes:{ip}"), STRIKE_MEMORY, now)
                    .await?;
                let block = doubled(policy.window, strikes.saturating_sub(1), MAX_IP_BLOCK);
                self.store
                    .block(&format!("block:{ip}"), now + block, now)
                    .await?;
                self.store.reset(&format!("fail:{ip}")).await?;
                self.audit(
                    AuditKind::SignInRateLimited,
                    None,
                    client,
                    json!({ "scope": "ip", "retry_after": block.whole_seconds(), "strike": strikes }),
                )
                .await?;
            }
        }
        let (failures, _) = self
            .store
            .hit(&failures_key(&keys.account), policy.window, now)
            .await?;
        if failures >= limit {
            let delay = doubled(Duration::seconds(1), failures - limit, MAX_ACCOUNT_DELAY);
            self.store
                .block(&format!("block:{}", keys.account), now + delay, now)
                .await?;
            self.audit(
                AuditKind::SignInRateLimited,
                None,
                client,
                json!({ "scope": "account", "retry_after": delay.whole_seconds(), "failures": failures }),
            )
            .await?;
        }
        Ok(())
    }

    /// A success clears the account's failures (not the IP's: one good
    /// password does not excuse a thousand guesses from the same address).
    ///
    /// The account's block needs no reset: the guard let this attempt in, so
    /// there is none. The guard read the failure count, so the usual sign-in
    /// (no failures) costs no write here.
    pub(crate) async fn record_success(
        &self,
        keys: &AttemptKeys,
        failures: Failures,
    ) -> Result<(), CoreError> {
        if failures.on_record {
            self.store.reset(&failures_key(&keys.account)).await?;
        }
        Ok(())
    }
}

/// Whether an account had failed sign-ins counted when its attempt began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failures {
    on_record: bool,
}

fn failures_key(account: &str) -> String {
    format!("fail:{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_their_cap() {
        let base = Duration::minutes(15);
        assert_eq!(doubled(base, 0, MAX_IP_BLOCK), Duration::minutes(15));
        assert_eq!(doubled(base, 1, MAX_IP_BLOCK), Duration::minutes(30));
        assert_eq!(doubled(base, 3, MAX_IP_BLOCK), Duration::hours(2));
        assert_eq!(doubled(base, 40, MAX_IP_BLOCK), MAX_IP_BLOCK);
        assert_eq!(
            doubled(Duration::seconds(1), 0, MAX_ACCOUNT_DELAY),
            Duration::seconds(1)
        );
        assert_eq!(
            doubled(Duration::seconds(1), 5, MAX_ACCOUNT_DELAY),
            Duration::seconds(32)
        );
        assert_eq!(
            doubled(Duration::seconds(1), 6, MAX_ACCOUNT_DELAY),
            MAX_ACCOUNT_DELAY
        );
    }
}
