//! The JSON shapes the API answers with.

use serde::Serialize;
use tessera_core::authorization;
use tessera_core::mfa::MfaStatus;
use tessera_core::session::Session;
use tessera_core::user::User;
use tessera_core::user_sessions::ListedSession;
use time::OffsetDateTime;
use uuid::Uuid;

/// A user as shown to themselves and to administrators.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Display name.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.display().to_owned(),
            roles: user.roles.clone(),
            created_at: user.created_at,
        }
    }
}

/// A user as administrators see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminUserView {
    /// Everything the user sees.
    #[serde(flatten)]
    pub user: UserView,
    /// Whether sign-in is blocked.
    pub disabled: bool,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The second factors the user has enabled.
    pub mfa: MfaView,
}

impl AdminUserView {
    /// The view of `user`, whose second factors are `mfa`.
    pub fn new(user: &User, mfa: MfaStatus) -> Self {
        Self {
            user: user.into(),
            disabled: user.disabled,
            updated_at: user.updated_at,
            mfa: mfa.into(),
        }
    }
}

/// The second factors a user has enabled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaView {
    /// TOTP (an authenticator app) is enabled.
    pub totp: bool,
    /// Unused recovery codes left.
    pub recovery_codes: u32,
    /// Passkeys registered.
    pub passkeys: u32,
}

impl From<MfaStatus> for MfaView {
    fn from(s: MfaStatus) -> Self {
        Self {
            totp: s.totp,
            recovery_codes: s.recovery_codes,
            passkeys: s.passkeys,
        }
    }
}

/// A session, by its public id: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Public id (the JWT `sid` of a token session).
    pub id: String,
    /// `cookie` or `token`.
    #[schema(value_type = String, examples("cookie", "token"))]
    pub kind: &'static str,
    /// Sign-in time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last use (to within a minute).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// When it ends unless used again.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it ends at the latest.
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
    /// How the user proved who they are at sign-in (RFC 8176: `pwd`, `otp`,
    /// `hwk`, and `mfa` for more than one factor).
    pub amr: Vec<String>,
    /// The OAuth client holding the session (one the authorization-code
    /// flow created); absent for any other session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// That client's name; absent with `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
}

impl SessionView {
    /// The view of `session`, marked current when it is `current_id`.
    pub fn new(session: &Session, current_id: Option<&str>) -> Self {
        Self {
            id: session.id.as_str().to_owned(),
            kind: session.kind.as_str(),
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            expires_at: session.expires_at(),
            absolute_expires_at: session.absolute_expires_at,
            ip: session.ip.map(|ip| ip.to_string()),
            user_agent: session.user_agent.clone(),
            current: current_id == Some(session.id.as_str()),
            amr: session.amr.amr(),
            client_id: None,
            client_name: None,
        }
    }

    /// The view of a session in its user's list, with the client holding it.
    pub fn listed(listed: &ListedSession, current_id: Option<&str>) -> Self {
        let mut view = Self::new(&listed.session, current_id);
        if let Some(client) = &listed.client {
            view.client_id = Some(client.client_id);
            view.client_name = Some(client.client_name.clone());
        }
        view
    }
}

/// A consent the user gave an OAuth client.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    /// The client.
    pub client_id: Uuid,
    /// Its name.
    pub client_name: String,
    /// The scopes consented to, space-separated.
    pub scope: String,
    /// When it was (last) given.
    #[serde(with = "time::serde::rfc3339")]
    pub granted_at: OffsetDateTime,
}

impl From<&authorization::ConsentView> for ConsentView {
    fn from(view: &authorization::ConsentView) -> Self {
        Self {
            client_id: view.consent.client_id,
            client_name: view.client_name.clone(),
            scope: view.consent.scope.clone(),
            granted_at: view.consent.granted_at,
        }
    }
}

/// `GET /v1/me/consents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentsView {
    /// The user's consents, newest first.
    pub consents: Vec<ConsentView>,
}
