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
pub struct UserView<'a> {
    /// User id.
    pub id: Uuid,
    /// Display name.
    pub username: &'a str,
    /// Roles.
    pub roles: &'a [String],
    /// Creation time.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
}

impl UserView<'_> {
    /// The JSON its `Serialize` writes, written directly: `GET /v1/me`
    /// answers it on every call, and serde writes each key as an escaped
    /// string. Only the name and roles can need escaping (a test holds the
    /// two forms equal).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(160);
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.hyphenated().encode_lower(&mut id).as_bytes());
        out.extend_from_slice(b"\",\"username\":");
        serde_json::to_writer(&mut out, self.username)?;
        out.extend_from_slice(b",\"roles\":");
        serde_json::to_writer(&mut out, self.roles)?;
        out.extend_from_slice(b",\"created_at\":");
        tessera_core::rfc3339::serialize(
            &self.created_at,
            &mut serde_json::Serializer::new(&mut out),
        )?;
        out.push(b'}');
        Ok(out)
    }
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            username: user.username.display(),
            roles: &user.roles,
            created_at: user.created_at,
        }
    }
}

/// A user as administrators see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminUserView<'a> {
    /// Everything the user sees.
    #[serde(flatten)]
    pub user: UserView<'a>,
    /// Whether sign-in is blocked.
    pub disabled: bool,
    /// Last change.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub updated_at: OffsetDateTime,
    /// The second factors the user has enabled.
    pub mfa: MfaView,
}

impl<'a> AdminUserView<'a> {
    /// The view of `user`, whose second factors are `mfa`.
    pub fn new(user: &'a User, mfa: MfaStatus) -> Self {
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
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    /// Last use (to within a minute).
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub last_seen_at: OffsetDateTime,
    /// When it ends unless used again.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub expires_at: OffsetDateTime,
    /// When it ends at the latest.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
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
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_written_user_is_what_serde_writes() {
        let names = [
            "alice",
            "Zoë \"the quote\" \\ back",
            "tab\there",
            "日本語の名前",
            "\u{1f600}\u{7f}",
        ];
        let role_lists: [&[&str]; 4] = [&[], &["admin"], &["a\"b", "c\nd"], &["x", "y", "z"]];
        let times = [
            OffsetDateTime::UNIX_EPOCH,
            time::macros::datetime!(2026-12-01 10:00:00.123 UTC),
            time::macros::datetime!(2026-12-01 10:00:00 +01:00),
        ];
        for name in names {
            for roles in role_lists {
                for created_at in times {
                    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
                    let view = UserView {
                        id: Uuid::new_v4(),
                        username: name,
                        roles: &roles,
                        created_at,
                    };
                    assert_eq!(
                        String::from_utf8(view.to_json().unwrap()).unwrap(),
                        serde_json::to_string(&view).unwrap()
                    );
                }
            }
        }
    }
}
