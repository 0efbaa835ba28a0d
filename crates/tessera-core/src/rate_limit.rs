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
//!
//! This module holds the policy and the counter keys;
//! [`crate::sign_in_guard`] applies them to each attempt.

use std::net::IpAddr;

use time::Duration;

use crate::attempt::Attempt;
use crate::client::ClientInfo;

/// Longest a blocked address waits.
pub(crate) const MAX_IP_BLOCK: Duration = Duration::days(1);
/// A slowed account's first wait.
const FIRST_ACCOUNT_WAIT: Duration = Duration::seconds(1);
/// Longest a slowed account waits between attempts.
const MAX_ACCOUNT_WAIT: Duration = Duration::minutes(1);
/// How long address strikes are remembered for the growing block.
pub(crate) const STRIKE_MEMORY: Duration = Duration::days(1);

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
#[derive(Debug, Clone)]
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

    /// The counter key of the client's address, when it is known.
    pub(crate) fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    /// The attempt these keys count under `policy`.
    pub(crate) fn attempt(&self, policy: RateLimitPolicy) -> Attempt<'_> {
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
