//! Brute-force defence for passwords: sign-in (cookie and token endpoints)
//! and the current password of a password change count together, per client
//! address and per account, within a window. Registrations are counted per
//! address.
//!
//! - Every attempt is reserved before its password is checked, in one
//!   atomic store operation that counts it while in flight (see
//!   [`crate::attempt`]): however many arrive at once, no more than the
//!   limit are ever checked. A success gives its slot back.
//! - An address over the limit is blocked, for the window, then twice as
//!   long at each further strike (up to a day): addresses are the attacker's.
//! - An account over the limit is slowed, not locked: each further attempt
//!   makes the next wait, doubling up to a minute. An attacker can keep an
//!   account slow but never shut its owner out.
//! - IPv6 clients count by /64 (one subscriber's usual allocation, which a
//!   single host can walk through); IPv4-mapped addresses count as IPv4.
//!
//! Counters live in the store (Redis when configured), so every node shares
//! them; when they cannot be reached at all, sign-in is refused (503), not
//! unguarded. Unknown usernames are counted exactly like known ones.

use std::net::IpAddr;

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::attempt::{Admission, Attempt, doubled};
use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::error::CoreError;
use crate::service::Tessera;

/// Longest a blocked address waits.
const MAX_IP_BLOCK: Duration = Duration::days(1);
/// A slowed account's first wait.
const FIRST_ACCOUNT_WAIT: Duration = Duration::seconds(1);
/// Longest a slowed account waits between attempts.
const MAX_ACCOUNT_WAIT: Duration = Duration::minutes(1);
/// How long address strikes are remembered for the growing block.
const STRIKE_MEMORY: Duration = Duration::days(1);

/// Attempts allowed per account and per address within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Failed (or in-flight) password attempts allowed before the limit applies.
    pub login_attempts: u32,
    /// The counting window.
    pub window: Duration,
    /// Registrations allowed per address within the window.
    pub registrations: u32,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            login_attempts: 10,
            window: Duration::minutes(15),
            registrations: 20,
        }
    }
}

/// The counter key of a client address: IPv4 as itself (IPv4-mapped IPv6
/// included), IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                format!("ip:{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The counter keys of one password attempt.
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
            ip: client.ip.map(address_key),
        }
    }

    fn attempt(&self, policy: RateLimitPolicy) -> Attempt<'_> {
        Attempt {
            ip: self.ip.as_deref(),
            account: &self.account,
            limit: policy.login_attempts,
            window: policy.window,
            first_wait: FIRST_ACCOUNT_WAIT,
            max_wait: MAX_ACCOUNT_WAIT,
        }
    }
}

/// An admitted attempt's counts, which tell its failure what to impose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted {
    ip: u64,
    account: u64,
}

fn seconds_until(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(1)
}

impl Tessera {
    /// Reserves a password attempt before any password work: refuses with
    /// [`CoreError::RateLimited`] while the address is blocked or full or
    /// the account's next attempt is not due, and otherwise counts the
    /// attempt at once, so that parallel attempts cannot all pass. One store
    /// operation.
    pub(crate) async fn reserve_attempt(&self, keys: &AttemptKeys) -> Result<Admitted, CoreError> {
        let now = self.now();
        match self
            .store
            .reserve(&keys.attempt(self.config.rate_limit), now)
            .await?
        {
            Admission::Granted { ip, account } => Ok(Admitted { ip, account }),
            Admission::Refused { retry_at } => Err(CoreError::RateLimited {
                retry_after: seconds_until(now, retry_at),
            }),
        }
    }

    /// A right password: gives the slots back and clears the account's
    /// count (not the address's: one good password does not excuse a
    /// thousand guesses from the same address).
    pub(crate) async fn attempt_succeeded(&self, keys: &AttemptKeys) -> Result<(), CoreError> {
        let attempt = keys.attempt(self.config.rate_limit);
        Ok(self.store.release(&attempt, true, self.now()).await?)
    }

    /// The password was never checked (the hashing pool was busy, the store
    /// failed): gives the slots back, keeping the original error. A failure
    /// to do so only leaves the slot counted, the cautious side.
    pub(crate) async fn attempt_abandoned(&self, keys: &AttemptKeys) {
        let attempt = keys.attempt(self.config.rate_limit);
        if let Err(e) = self.store.release(&attempt, false, self.now()).await {
            tracing::warn!(error = %e, "cannot give back an unchecked password attempt");
        }
    }

    /// A wrong password, already counted when it was admitted: the attempt
    /// that took the address's last slot blocks it (growing with each
    /// strike); an account past the limit was slowed on admission. Both are
    /// audited.
    pub(crate) async fn attempt_failed(
        &self,
        keys: &AttemptKeys,
        admitted: Admitted,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let policy = self.config.rate_limit;
        let now = self.now();
        if let Some(ip) = &keys.ip
            && admitted.ip >= u64::from(policy.login_attempts)
        {
            let (strikes, _) = self
                .store
                .hit(&format!("strikes:{ip}"), STRIKE_MEMORY, now)
                .await?;
            let block = doubled(policy.window, strikes.saturating_sub(1), MAX_IP_BLOCK);
            self.store.block(ip, now + block, now).await?;
            self.audit(
                AuditKind::SignInRateLimited,
                None,
                client,
                json!({ "scope": "ip", "retry_after": block.whole_seconds(), "strike": strikes }),
            )
            .await?;
        }
        if let Some(wait) = keys.attempt(policy).account_wait(admitted.account) {
            self.audit(
                AuditKind::SignInRateLimited,
                None,
                client,
                json!({ "scope": "account", "retry_after": wait.whole_seconds(), "attempts": admitted.account }),
            )
            .await?;
        }
        Ok(())
    }

    /// Counts a registration attempt from `client`'s address (whatever its
    /// outcome: probing for taken names is what is limited) and refuses it
    /// past `rate_limit.registrations` in the window. One atomic store
    /// operation.
    pub(crate) async fn count_registration(&self, client: &ClientInfo) -> Result<(), CoreError> {
        let Some(ip) = client.ip else {
            return Ok(());
        };
        let policy = self.config.rate_limit;
        let now = self.now();
        let (count, window_end) = self
            .store
            .hit(&format!("reg:{}", address_key(ip)), policy.window, now)
            .await?;
        if count > u64::from(policy.registrations) {
            return Err(CoreError::TooManyRegistrations {
                retry_after: seconds_until(now, window_end),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(key("203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            key("2001:db8:1:2::1"),
            "one /64, one client"
        );
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::1"), "ip:::/64");
    }
}
