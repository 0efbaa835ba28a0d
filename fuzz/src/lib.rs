//! Fuzz harnesses for the parsers that face the network.
//!
//! Each `pub fn` here is the body of one cargo-fuzz target
//! (`fuzz_targets/<name>.rs`). The same file is compiled into tessera-http's
//! `tests/fuzz_regressions.rs` with `#[path]`, so the committed seeds and
//! every crash input turned into a regression test run through exactly this
//! code in the ordinary test suite.
//!
//! A harness must never panic on its own account: every `assert!` below is a
//! property of the code under test (what it accepts must be well-formed), and
//! a failure is a finding like any other panic.

use std::net::IpAddr;
use std::sync::OnceLock;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde::Deserialize;
use tessera_core::jwt::{self, AccessClaims, TokenPolicy};
use tessera_core::keys::{Algorithm, KeyPurpose, Keyring, SigningKey};
use tessera_core::password;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::username::Username;
use tessera_http::cookie::CookieConfig;
use tessera_http::csrf::{self, OriginPolicy};
use tessera_http::{auth, body, input};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// The issuer (and audience) of the fuzzing token policy.
pub const ISSUER: &str = "https://issuer.example";
/// The fixed "now" of the JWT harness: 2026-01-01T00:00:00Z. The committed
/// seed token was minted at this instant, so it verifies at it.
pub const NOW_UNIX: i64 = 1_767_225_600;
/// `kid` of the fixed Ed25519 signing key.
pub const ED25519_KID: &str = "fuzz-ed25519";
/// `kid`s of the other, retired keys in the ring (one per algorithm), so that
/// tokens naming them reach every verifier.
pub const OTHER_KIDS: [&str; 3] = ["fuzz-es256", "fuzz-rs256", "fuzz-hs256"];

/// Seed of the fixed Ed25519 key. Public on purpose: it signs nothing but
/// fuzz inputs, and it must be fixed for the committed seed token to verify.
const ED25519_SEED: [u8; 32] = *b"tessera fuzz key, not a secret!!";
/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410), before the seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Longest claims set the JWT harness signs: larger ones would only hit the
/// size limit.
const MAX_SIGNED_PAYLOAD: usize = 6 * 1024;

/// Keys, policy and clock of the JWT harness, built once per process.
pub struct JwtFixture {
    /// Fixed Ed25519 key (current), plus ES256, RS256 and HS256 keys (retired
    /// but still verifying).
    pub ring: Keyring,
    /// `TokenPolicy::new(ISSUER)`.
    pub policy: TokenPolicy,
    /// [`NOW_UNIX`].
    pub now: OffsetDateTime,
    signer: Ed25519KeyPair,
}

impl JwtFixture {
    fn build() -> Self {
        let now = OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("NOW_UNIX is a valid time");
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&ED25519_SEED);
        let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("fixed Ed25519 key parses");
        let current = SigningKey {
            kid: ED25519_KID.to_owned(),
            algorithm: Algorithm::EdDSA,
            purpose: KeyPurpose::Access,
            private: Zeroizing::new(pkcs8),
            created_at: now,
            retired_at: None,
            expires_at: None,
        };
        let mut keys = vec![current];
        for (kid, algorithm) in
            OTHER_KIDS
                .iter()
                .zip([Algorithm::ES256, Algorithm::RS256, Algorithm::HS256])
        {
            let mut key = SigningKey::generate(algorithm, now - Duration::days(1))
                .expect("key generation works");
            (*kid).clone_into(&mut key.kid);
            key.retired_at = Some(now - Duration::hours(1));
            keys.push(key);
        }
        let ring = Keyring::new(&keys, now).expect("fixture keyring builds");
        Self {
            ring,
            policy: TokenPolicy::new(ISSUER),
            now,
            signer,
        }
    }

    /// A token with a valid header and `payload` as its claims set, signed
    /// with the current key: what only the server itself could produce.
    pub fn sign_payload(&self, payload: &[u8]) -> String {
        let header = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"fuzz-ed25519"}"#;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.signer.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        token
    }

    /// A fresh valid token minted with `tessera_core::jwt::mint` at `now`.
    pub fn mint(&self) -> String {
        let claims = jwt::new_claims(
            &self.policy,
            uuid_nil(),
            "fuzz-session",
            vec!["admin".to_owned()],
            self.now,
        )
        .expect("claims");
        jwt::mint(&self.ring, &claims).expect("minting works")
    }
}

fn uuid_nil() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef)
}

/// The JWT harness's keys and clock.
pub fn jwt_fixture() -> &'static JwtFixture {
    static FIXTURE: OnceLock<JwtFixture> = OnceLock::new();
    FIXTURE.get_or_init(JwtFixture::build)
}

/// Target `jwt_verify`: the input, used three ways, goes through `verify`
/// (at three instants) and `verify_ignoring_expiry`:
/// 1. as a bearer token;
/// 2. as the claims set of a token correctly signed by the current key, to
///    reach the checks behind the signature (time bounds, lifetime, `nbf`,
///    required claims);
/// 3. as binary-encoded time claims ([`time_claims`]) of an otherwise valid
///    signed token, so that the integer edge cases a byte-level mutator
///    hardly writes out as JSON digits come up too.
pub fn jwt_verify(data: &[u8]) {
    let fx = jwt_fixture();
    let token = String::from_utf8_lossy(data);
    check_token(fx, &token);
    if data.len() <= MAX_SIGNED_PAYLOAD {
        check_token(fx, &fx.sign_payload(data));
    }
    if let Some(claims) = time_claims(data) {
        check_token(fx, &fx.sign_payload(claims.as_bytes()));
    }
}

/// A valid claims set whose `exp`, `iat` and (optional) `nbf` come from the
/// first 27 bytes of `data`, three fields of one tag byte and one 64-bit
/// little-endian word `v`. The tag picks the value's neighbourhood: `v`
/// itself, [`NOW_UNIX`] plus `v` as an `i16`, or `v`'s low byte away from
/// `i64::MAX` or `i64::MIN`; tag bit 2 of the `nbf` field includes it. The
/// rest of the input is the `sid`.
pub fn time_claims(data: &[u8]) -> Option<String> {
    fn field(tag: u8, word: [u8; 8]) -> i64 {
        let v = i64::from_le_bytes(word);
        let small = i64::from(word[0]);
        match tag % 4 {
            0 => v,
            1 => NOW_UNIX.wrapping_add(i64::from(i16::from_le_bytes([word[0], word[1]]))),
            2 => i64::MAX.wrapping_sub(small),
            _ => i64::MIN.wrapping_add(small),
        }
    }
    let (exp_tag, rest) = data.split_first()?;
    let (exp, rest) = rest.split_first_chunk::<8>()?;
    let (iat_tag, rest) = rest.split_first()?;
    let (iat, rest) = rest.split_first_chunk::<8>()?;
    let (nbf_tag, rest) = rest.split_first()?;
    let (nbf, rest) = rest.split_first_chunk::<8>()?;
    let mut claims = serde_json::json!({
        "iss": ISSUER,
        "sub": uuid_nil().to_string(),
        "aud": ISSUER,
        "exp": field(*exp_tag, *exp),
        "iat": field(*iat_tag, *iat),
        "jti": "fuzz-jti",
        "sid": String::from_utf8_lossy(rest),
        "roles": [],
    });
    if nbf_tag & 4 != 0
        && let Some(object) = claims.as_object_mut()
    {
        object.insert("nbf".to_owned(), field(*nbf_tag, *nbf).into());
    }
    Some(claims.to_string())
}

fn check_token(fx: &JwtFixture, token: &str) {
    for now in [
        fx.now,
        fx.now + Duration::minutes(9),
        fx.now - Duration::days(400),
    ] {
        if let Ok(claims) = jwt::verify(&fx.ring, &fx.policy, token, now) {
            assert_sound_claims(fx, &claims);
            let (exp, iat, now) = (
                i128::from(claims.exp),
                i128::from(claims.iat),
                i128::from(now.unix_timestamp()),
            );
            let leeway = i128::from(fx.policy.leeway.whole_seconds());
            assert!(exp + leeway > now, "accepted an expired token: {claims:?}");
            assert!(iat - leeway <= now, "accepted a token from the future");
        }
    }
    if let Ok(claims) = jwt::verify_ignoring_expiry(&fx.ring, &fx.policy, token) {
        assert_sound_claims(fx, &claims);
    }
}

/// What every accepted token must satisfy, computed without overflow.
fn assert_sound_claims(fx: &JwtFixture, claims: &AccessClaims) {
    assert_eq!(claims.iss, fx.policy.issuer, "accepted a foreign issuer");
    assert_eq!(
        claims.aud, fx.policy.audience,
        "accepted a foreign audience"
    );
    assert!(!claims.sid.is_empty() && !claims.jti.is_empty());
    let lifetime = i128::from(claims.exp) - i128::from(claims.iat);
    let allowed = i128::from(fx.policy.access_ttl.whole_seconds())
        + i128::from(fx.policy.leeway.whole_seconds());
    assert!(
        lifetime <= allowed,
        "accepted a token living {lifetime}s: {claims:?}"
    );
}

/// Proxies trusted by the `client_ip` checks.
fn trusted_proxies() -> [IpAddr; 3] {
    [
        IpAddr::from([10, 0, 0, 1]),
        IpAddr::from([10, 0, 0, 2]),
        IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
    ]
}

/// Target `headers`: the input is read as header lines `name: value`
/// (invalid names and values are skipped, repeated names appended) and the
/// resulting map goes through every header parser: session cookies, bearer
/// token, client address behind proxies, CSRF origin checks. The whole input,
/// each line and each header value also go through the string parsers
/// (secrets, origins, usernames, password strength).
pub fn headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_strings(&text);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let second = lines.next().unwrap_or_default();
    let _ = password::check_strength(first, second);
    let _ = password::check_strength(&text, "alice");

    let mut map = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(line) = std::str::from_utf8(line) {
            check_strings(line);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii_start();
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        if let Ok(value) = value.to_str() {
            check_strings(value);
        }
        map.append(name, value);
    }
    check_header_map(&map);
}

fn check_strings(s: &str) {
    for kind in [SecretKind::Session, SecretKind::Refresh] {
        if let Some(secret) = Secret::parse(kind, s) {
            // Only the canonical wire form is accepted: one secret, one string.
            assert_eq!(
                secret.expose(),
                s,
                "secret accepted in a non-canonical form"
            );
        }
    }
    if let Some(origin) = csrf::origin_of(s) {
        let (scheme, authority) = origin.split_once("://").unwrap_or_default();
        assert!(scheme == "http" || scheme == "https", "{origin}");
        assert!(!authority.is_empty(), "{origin}");
        assert!(
            !authority.contains(['/', '?', '#', '@'])
                && !authority.chars().any(char::is_whitespace)
                && !authority.bytes().any(|b| b.is_ascii_uppercase()),
            "origin not normalised: {origin:?}"
        );
        assert_eq!(
            csrf::origin_of(&origin).as_deref(),
            Some(origin.as_str()),
            "origin_of is not idempotent"
        );
    }
    if let Ok(name) = Username::parse(s) {
        assert!(name.normalized().chars().count() <= tessera_core::username::MAX_USERNAME_CHARS);
        assert!(name.display().chars().count() <= tessera_core::username::MAX_USERNAME_CHARS);
        assert!(!name.normalized().is_empty());
        assert_eq!(
            Username::parse(name.display()).as_ref(),
            Ok(&name),
            "a username's display form does not parse back to itself"
        );
    }
}

fn header_strs<'a>(map: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    map.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

fn check_header_map(map: &HeaderMap) {
    let insecure = CookieConfig {
        secure: false,
        ..CookieConfig::default()
    };
    for config in [CookieConfig::default(), insecure] {
        for secret in config.session_secrets(map) {
            let wire = secret.expose();
            assert!(
                header_strs(map, &header::COOKIE).any(|v| v.contains(&wire)),
                "a session secret that is not in any Cookie header"
            );
        }
    }

    if let Some(token) = auth::bearer(map) {
        assert!(!token.is_empty() && token.trim() == token);
        assert!(header_strs(map, &header::AUTHORIZATION).any(|v| v.contains(token)));
    }

    let trusted = trusted_proxies();
    let hops: Vec<IpAddr> = header_strs(map, &HeaderName::from_static("x-forwarded-for"))
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    for peer in [
        IpAddr::from([203, 0, 113, 9]),
        IpAddr::from([10, 0, 0, 1]),
        IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        let ip = auth::client_ip(peer, map, &trusted);
        if trusted.contains(&peer) {
            assert!(
                ip == peer || (!trusted.contains(&ip) && hops.contains(&ip)),
                "client_ip made up {ip}"
            );
        } else {
            assert_eq!(ip, peer, "X-Forwarded-For believed from an untrusted peer");
        }
    }

    let configured = OriginPolicy::new(
        Some("https://auth.example.com"),
        &["https://app.example.com".to_owned()],
    )
    .expect("valid origin policy");
    for policy in [OriginPolicy::default(), configured] {
        let allowed = policy.check(map).is_ok();
        match map.get(header::ORIGIN) {
            Some(origin) if allowed => {
                let origin = origin.to_str().unwrap_or("null");
                assert!(
                    csrf::origin_of(origin).is_some(),
                    "allowed origin {origin:?}"
                );
            }
            Some(_) => {}
            None => {
                let site = map.get("sec-fetch-site").and_then(|v| v.to_str().ok());
                assert_eq!(
                    allowed,
                    !matches!(site, Some("cross-site" | "same-site")),
                    "Sec-Fetch-Site {site:?}"
                );
            }
        }
    }

    let _ = body::body_format(map.get(header::CONTENT_TYPE));
    let _ = csrf::check_token("expected-csrf-token", map, None);
}

/// `POST /v1/session` body, as in `tessera_http::cookie_session::SignIn`.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Long-lived session.
    #[serde(default, deserialize_with = "tessera_http::input::form_bool")]
    pub remember_me: bool,
}

/// `POST /v1/token` body, as in `tessera_http::oauth::TokenForm`.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// Grant type.
    pub grant_type: Option<String>,
    /// User name (password grant).
    pub username: Option<String>,
    /// Password (password grant).
    pub password: Option<String>,
    /// Refresh token (refresh grant).
    pub refresh_token: Option<String>,
    /// Token to revoke.
    pub token: Option<String>,
}

/// Target `bodies`: the input as a JSON body and as a form body, decoded
/// into a JSON object and then into the sign-in and token request types, as
/// `tessera_http::input::Input` does; accepted fields then go through the
/// username, password and refresh-token parsers as the handlers would.
pub fn bodies(data: &[u8]) {
    for decoded in [body::decode_json(data), body::decode_form(data)] {
        let Ok(value) = decoded else { continue };
        assert!(value.is_object(), "decoders must produce objects");
        if let Ok(sign_in) = input::into_typed::<SignIn>(value.clone()) {
            assert!(!sign_in.username.contains('\0') && !sign_in.password.contains('\0'));
            let _ = Username::parse(&sign_in.username);
            let _ = password::check_strength(&sign_in.password, &sign_in.username);
            let _ = sign_in.remember_me;
        }
        if let Ok(form) = input::into_typed::<TokenForm>(value.clone()) {
            if let Some(token) = form.refresh_token.as_deref() {
                let _ = Secret::parse(SecretKind::Refresh, token);
            }
            for text in [
                &form.grant_type,
                &form.username,
                &form.password,
                &form.token,
            ] {
                assert!(!text.as_deref().unwrap_or_default().contains('\0'));
            }
        }
        let _ = input::into_typed::<serde_json::Map<String, serde_json::Value>>(value);
    }
}
