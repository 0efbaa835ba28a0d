//! A software WebAuthn authenticator for tests: an ES256 key (aws-lc-rs),
//! answers to creation and request options built byte by byte as a
//! platform authenticator and a browser would (CBOR attestation object
//! with `fmt: none`, authenticator data, client data JSON), and knobs to
//! spoil each part for the hostile cases.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// Authenticator data flags.
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const AT: u8 = 0x40;

/// What to put in an answer; the defaults are what an honest browser and
/// authenticator send for `origin` and `rp_id`.
#[derive(Clone, Debug)]
pub struct Answer {
    pub origin: String,
    pub rp_id: String,
    pub flags: u8,
    /// Overrides the challenge the options carried.
    pub challenge: Option<String>,
    /// Overrides the user handle (`None` keeps the key's own).
    pub user_handle: Option<Option<Vec<u8>>>,
    pub client_data_type: Option<&'static str>,
}

/// One discoverable credential.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub counter: u32,
    pub origin: String,
    pub rp_id: String,
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    B64.decode(text).unwrap()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&SHA256, data).as_ref().to_vec()
}

// --- a little CBOR (RFC 8949), as much as attestation objects need ---

fn head(major: u8, len: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if len < 24 {
        out.push(m | len as u8);
    } else if len < 256 {
        out.extend([m | 24, len as u8]);
    } else if len < 65_536 {
        out.push(m | 25);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(m | 26);
        out.extend((len as u32).to_be_bytes());
    }
}

fn int(v: i64, out: &mut Vec<u8>) {
    if v >= 0 {
        head(0, v as u64, out);
    } else {
        head(1, (-1 - v) as u64, out);
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len() as u64, out);
    out.extend(b);
}

fn text(t: &str, out: &mut Vec<u8>) {
    head(3, t.len() as u64, out);
    out.extend(t.as_bytes());
}

impl SoftPasskey {
    /// A new key for the server at `origin` (RP id: its host).
    pub fn new(origin: &str) -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut credential_id).unwrap();
        let rp_id = url::Url::parse(origin)
            .unwrap()
            .host_str()
            .unwrap()
            .to_owned();
        Self {
            key,
            credential_id,
            user_handle: Vec::new(),
            counter: 0,
            origin: origin.trim_end_matches('/').to_owned(),
            rp_id,
        }
    }

    /// The honest answer's settings.
    pub fn honest(&self) -> Answer {
        Answer {
            origin: self.origin.clone(),
            rp_id: self.rp_id.clone(),
            flags: UP | UV,
            challenge: None,
            user_handle: None,
            client_data_type: None,
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let mut out = Vec::new();
        head(5, 5, &mut out);
        int(1, &mut out); // kty: EC2
        int(2, &mut out);
        int(3, &mut out); // alg: ES256
        int(-7, &mut out);
        int(-1, &mut out); // crv: P-256
        int(1, &mut out);
        int(-2, &mut out); // x
        bytes(&point[1..33], &mut out);
        int(-3, &mut out); // y
        bytes(&point[33..65], &mut out);
        out
    }

    fn client_data(&self, kind: &str, challenge: &str, answer: &Answer) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": answer.client_data_type.unwrap_or(kind),
            "challenge": challenge,
            "origin": answer.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// The answer to `navigator.credentials.create(options)`, as JSON;
    /// remembers the user handle the options gave.
    pub fn create(&mut self, options: &Value, answer: &Answer) -> Value {
        let public_key = &options["publicKey"];
        self.user_handle = unb64(public_key["user"]["id"].as_str().unwrap());
        let challenge = answer
            .challenge
            .clone()
            .unwrap_or_else(|| public_key["challenge"].as_str().unwrap().to_owned());
        let client_data = self.client_data("webauthn.create", &challenge, answer);
        let mut auth_data = sha256(answer.rp_id.as_bytes());
        auth_data.push(answer.flags | AT);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        head(5, 3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        head(5, 0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&auth_data, &mut attestation);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// The answer to `navigator.credentials.get(options)`, as JSON. The
    /// counter moves by one unless it is 0 (as synced passkeys keep it).
    pub fn get(&mut self, options: &Value, answer: &Answer) -> Value {
        let challenge = answer.challenge.clone().unwrap_or_else(|| {
            options["publicKey"]["challenge"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        let client_data = self.client_data("webauthn.get", &challenge, answer);
        if self.counter > 0 {
            self.counter += 1;
        }
        let mut auth_data = sha256(answer.rp_id.as_bytes());
        auth_data.push(answer.flags);
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(sha256(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .unwrap()
            .as_ref()
            .to_vec();
        let user_handle = answer
            .user_handle
            .clone()
            .unwrap_or_else(|| Some(self.user_handle.clone()));
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": user_handle.map(|h| b64(&h)),
            },
            "extensions": {},
        })
    }
}
