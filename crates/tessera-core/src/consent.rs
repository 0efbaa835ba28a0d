//! Consent: a user's standing permission for a client, remembered until the
//! user revokes it.

use time::OffsetDateTime;
use uuid::Uuid;

/// A remembered consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Who consented.
    pub user_id: Uuid,
    /// To which client.
    pub client_id: Uuid,
    /// The scopes consented to, space-separated.
    pub scope: String,
    /// When it was (last) given.
    pub granted_at: OffsetDateTime,
}

impl Consent {
    /// Whether every scope in `requested` (space-separated) was consented to.
    pub fn covers(&self, requested: &str) -> bool {
        requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| self.scope.split(' ').any(|g| g == s))
    }
}

/// A session created for a client, as the user's session list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// The session's public id.
    pub session_id: crate::session::SessionId,
    /// The client that holds it.
    pub client_id: Uuid,
    /// Its name.
    pub client_name: String,
}
