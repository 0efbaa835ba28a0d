//! What is known of the client behind a request, for sessions and the audit log.

use std::net::IpAddr;

/// Longest user agent kept; the rest is cut off.
const MAX_USER_AGENT_CHARS: usize = 256;

/// The client's address and user agent, as far as the server can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Address of the peer (or of the client, behind a trusted proxy).
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, cleaned for storage and display.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Builds client info from raw request parts; the user agent is
    /// truncated and stripped of control characters, since it is
    /// attacker-chosen text that ends up in logs and on the account page.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self { ip, user_agent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_cleaned_and_bounded() {
        let info = ClientInfo::new(None, Some(&format!("a\u{0}b\r\nc{}", "x".repeat(1000))));
        let ua = info.user_agent.unwrap_or_default();
        assert!(ua.starts_with("abc"));
        assert_eq!(ua.chars().count(), MAX_USER_AGENT_CHARS);
        assert_eq!(ClientInfo::new(None, Some("   ")).user_agent, None);
    }
}
