//! User accounts.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::username::Username;

/// The role that grants the administration API.
pub const ADMIN_ROLE: &str = "admin";

/// A user account as the domain sees it. The password hash lives apart, in
/// [`UserRecord`], so that a `User` can be handed around and serialised freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier, the JWT `sub`.
    pub id: Uuid,
    /// Display and normalised name.
    pub username: Username,
    /// Role names, e.g. `admin`.
    pub roles: Vec<String>,
    /// A disabled user cannot sign in and has no live sessions.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the account last changed.
    pub updated_at: OffsetDateTime,
}

impl User {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// A user together with the stored password hash (a PHC string).
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The account.
    pub user: User,
    /// Argon2id PHC string.
    pub password_hash: String,
}
