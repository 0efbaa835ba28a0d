//! User accounts.

use std::sync::OnceLock;

use bytes::Bytes;
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
    /// How a front end shows this user, made once per value.
    pub rendered: Rendered,
}

/// A rendering of a [`User`] (the HTTP API's JSON view), made at most once
/// per value: cached users are shared, unchanging values that a change
/// replaces, and `GET /v1/me` answers the same bytes on every call. It is
/// no part of the user's identity: equal users may hold one or not, and a
/// clone, which may then be changed, starts without.
#[derive(Default)]
pub struct Rendered(OnceLock<Bytes>);

impl Rendered {
    /// The rendering, made by `render` if this is the first call.
    pub fn get_or_make(&self, render: impl FnOnce() -> Option<Bytes>) -> Option<Bytes> {
        if let Some(bytes) = self.0.get() {
            return Some(bytes.clone());
        }
        let bytes = render()?;
        // A racing call may have set it first: both made the same bytes.
        Some(self.0.get_or_init(|| bytes).clone())
    }
}

impl Clone for Rendered {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Rendered {}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered")
    }
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
