//! Crafted bodies (malformed JSON, hostile values, odd forms and media
//! types) sent to every route with every credential.

use serde_json::{Value, json};

use crate::common::PASSWORD;
use crate::nasty::NASTY;
use crate::world::*;

/// A body for every route at once: each text field holds `v`.
pub fn every_field(v: &Value, grant_type: &str) -> Value {
    json!({
        "username": v,
        "password": v,
        "current_password": v,
        "new_password": v,
        "grant_type": grant_type,
        "token": v,
        "refresh_token": v,
        "token_type_hint": v,
    })
}

/// A crafted body: label, content type (none when `None`), bytes.
struct Body {
    label: String,
    content_type: Option<&'static [u8]>,
    bytes: Vec<u8>,
}

fn body(
    label: impl Into<String>,
    content_type: Option<&'static [u8]>,
    bytes: impl Into<Vec<u8>>,
) -> Body {
    Body {
        label: label.into(),
        content_type,
        bytes: bytes.into(),
    }
}

pub const JSON: Option<&[u8]> = Some(b"application/json");
pub const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

/// A JSON object of exactly `total` bytes whose username fills the space.
pub fn sized_json(total: usize) -> Vec<u8> {
    let skeleton = json!({
        "username": "",
        "password": "not the password",
        "current_password": "not the password",
        "new_password": "a new password 123",
        "grant_type": "password",
        "token": "x",
    })
    .to_string();
    let pad = "a".repeat(total - skeleton.len());
    let out = skeleton.replacen("\"username\":\"\"", &format!("\"username\":\"{pad}\""), 1);
    assert_eq!(out.len(), total);
    out.into_bytes()
}

/// A form of exactly `total` bytes whose username fills the space.
pub fn sized_form(total: usize) -> Vec<u8> {
    let tail =
        "&password=not+the+password&current_password=x&new_password=y&grant_type=password&token=x";
    let head = "username=";
    let pad = "a".repeat(total - head.len() - tail.len());
    let out = format!("{head}{pad}{tail}");
    assert_eq!(out.len(), total);
    out.into_bytes()
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

/// Malformed, mistyped and odd JSON documents.
fn json_shape_bodies(user: &str) -> Vec<Body> {
    vec![
        body("empty", JSON, ""),
        body("{}", JSON, "{}"),
        body("[]", JSON, "[]"),
        body("null", JSON, "null"),
        body("bare string", JSON, "\"alice\""),
        body("bare number", JSON, "42"),
        body("whitespace only", JSON, " \n\t\r "),
        body("10k nested arrays", JSON, nested("[", "]", 10_000)),
        body(
            "10k nested objects",
            JSON,
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
        ),
        body(
            "10k nested arrays in a field",
            JSON,
            format!("{{\"username\":{},\"password\":\"x\"}}", nested("[", "]", 10_000)),
        ),
        body("60 KiB", JSON, sized_json(60 * KIB)),
        body("70 KiB", JSON, sized_json(70 * KIB)),
        body(
            "invalid UTF-8",
            JSON,
            b"{\"username\":\"\xff\xfe\xfd\",\"password\":\"\xc3\x28\xa0\",\"token\":\"\xed\xa0\x80\"}".to_vec(),
        ),
        body(
            "lone surrogates",
            JSON,
            r#"{"username":"\ud800","password":"\udc00abcdefgh","token":"\ud800","grant_type":"password"}"#,
        ),
        body(
            "reversed surrogate pair",
            JSON,
            r#"{"username":"\udc00\ud800","password":"x"}"#,
        ),
        body(
            "escaped NUL",
            JSON,
            r#"{"username":"ali\u0000ce","password":"correct horse battery staple","grant_type":"password"}"#,
        ),
        body("NUL in a key", JSON, r#"{"user\u0000name":"alice","password":"x"}"#),
        body(
            "raw NUL byte",
            JSON,
            b"{\"username\":\"ali\x00ce\",\"password\":\"x\"}".to_vec(),
        ),
        body(
            "duplicate keys",
            JSON,
            format!(r#"{{"username":"{user}","username":"nobody","password":"x","grant_type":"password"}}"#),
        ),
        body("truncated", JSON, r#"{"username":"alice","pass"#),
        body("trailing garbage", JSON, r#"{"username":"alice","password":"x"} trailing"#),
        body("trailing comma", JSON, r#"{"username":"alice",}"#),
        body("single quotes", JSON, "{'username':'alice'}"),
        body("comments", JSON, "/* hi */ {\"username\":\"alice\"}"),
        body("NaN", JSON, r#"{"username":NaN,"password":Infinity}"#),
        body("number overflow", JSON, r#"{"username":1e999,"password":-1e999}"#),
        body(
            "huge integer",
            JSON,
            r#"{"username":123456789012345678901234567890,"password":"x"}"#,
        ),
        body("UTF-8 BOM", JSON, b"\xef\xbb\xbf{\"username\":\"alice\"}".to_vec()),
        body(
            "UTF-16",
            Some(b"application/json; charset=utf-16"),
            "{\"username\":\"alice\"}"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ),
        body(
            "5000 keys",
            JSON,
            format!(
                "{{{}}}",
                (0..5000)
                    .map(|i| format!("\"k{i}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        body(
            "valid credentials",
            JSON,
            json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string(),
        ),
        body(
            "remember_me: maybe",
            JSON,
            json!({ "username": user, "password": PASSWORD, "remember_me": "maybe" }).to_string(),
        ),
        body(
            "remember_me: 2",
            JSON,
            json!({ "username": user, "password": PASSWORD, "remember_me": 2 }).to_string(),
        ),
        body("grant_type: number", JSON, r#"{"grant_type":1}"#),
        body("grant_type: array", JSON, r#"{"grant_type":["password"]}"#),
        body(
            "grant_type: PASSWORD",
            JSON,
            json!({ "grant_type": "PASSWORD", "username": user, "password": PASSWORD }).to_string(),
        ),
        body("grant_type: client_credentials", JSON, r#"{"grant_type":"client_credentials"}"#),
        body("grant_type only", JSON, r#"{"grant_type":"password"}"#),
        body(
            "refresh grant, garbage token",
            JSON,
            r#"{"grant_type":"refresh_token","refresh_token":"rt_' OR '1'='1"}"#,
        ),
        body("mongo operator", JSON, r#"{"username":{"$ne":null},"password":{"$gt":""}}"#),
    ]
}

/// Well-formed JSON with hostile values in every field.
fn json_value_bodies() -> Vec<Body> {
    let mut out = Vec::new();
    let others = [
        json!(12345),
        json!(-1),
        json!(1.5e300),
        json!(true),
        Value::Null,
        json!([]),
        json!({}),
        json!(["a", "b"]),
    ];
    for v in others {
        out.push(body(
            format!("every field = {v}"),
            JSON,
            every_field(&v, "password").to_string(),
        ));
    }
    for (i, s) in NASTY.iter().enumerate() {
        let grant = if i % 2 == 0 {
            "password"
        } else {
            "refresh_token"
        };
        out.push(body(
            format!("every field = {s:?}"),
            JSON,
            every_field(&json!(s), grant).to_string(),
        ));
    }
    out
}

fn form_bodies(user: &str) -> Vec<Body> {
    let sqli = [
        "' OR '1'='1",
        "alice'; DROP TABLE users; --",
        "%' UNION SELECT username, password_hash FROM users --",
    ];
    let mut out = vec![
        body("empty", FORM, ""),
        body(
            "repeated username",
            FORM,
            "username=a&username=b&password=x&grant_type=password",
        ),
        body(
            "repeated grant_type",
            FORM,
            "grant_type=password&grant_type=refresh_token",
        ),
        body("repeated csrf_token", FORM, "csrf_token=a&csrf_token=b"),
        body("lone %", FORM, "%"),
        body("bad escape", FORM, "username=%ZZ&password=%"),
        body("short escape", FORM, "a=%F"),
        body("escaped invalid UTF-8", FORM, "=%FF%FE&username=%C3%28"),
        body(
            "raw invalid UTF-8",
            FORM,
            b"username=\xff\xfe&password=\xc0\xaf".to_vec(),
        ),
        body(
            "escaped surrogate",
            FORM,
            "username=%ED%A0%80&password=%ED%B0%80",
        ),
        body("overlong dot", FORM, "username=%C0%AE%C0%AE&password=x"),
        body(
            "escaped NUL",
            FORM,
            "username=al%00ice&password=correct+horse+battery+staple&grant_type=password",
        ),
        body(
            "RTL override",
            FORM,
            "username=al%E2%80%AEice&password=correct+horse+battery+staple&grant_type=password",
        ),
        body("separators only", FORM, "&&&===&"),
        body("=", FORM, "="),
        body("a==b=c", FORM, "a==b=c"),
        body("plus signs", FORM, "+++=+++"),
        body("brackets", FORM, "username[]=a&username[]=b&password[x]=y"),
        body("semicolons", FORM, "username=alice;password=x"),
        body(
            "traversal tokens",
            FORM,
            "token=..%2F..%2Fetc%2Fpasswd&grant_type=refresh_token&refresh_token=..%2F",
        ),
        body("60 KiB", FORM, sized_form(60 * KIB)),
        body("70 KiB", FORM, sized_form(70 * KIB)),
        body(
            "valid credentials",
            FORM,
            serde_urlencoded::to_string([
                ("username", user),
                ("password", PASSWORD),
                ("grant_type", "password"),
            ])
            .unwrap(),
        ),
    ];
    for s in sqli {
        let encoded = serde_urlencoded::to_string([
            ("username", s),
            ("password", s),
            ("current_password", s),
            ("new_password", s),
            ("grant_type", "password"),
            ("token", s),
        ])
        .unwrap();
        out.push(body(format!("SQL injection {s:?}"), FORM, encoded));
    }
    out
}

fn other_media_bodies(user: &str) -> Vec<Body> {
    let creds =
        json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string();
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n{user}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PASSWORD}\r\n--XyZ--\r\n"
    );
    let form = serde_urlencoded::to_string([("username", user), ("password", PASSWORD)]).unwrap();
    vec![
        body("no content type", None, creds.clone()),
        body("no content type, empty", None, ""),
        body("text/plain", Some(b"text/plain"), creds.clone()),
        body(
            "multipart",
            Some(b"multipart/form-data; boundary=XyZ"),
            multipart,
        ),
        body(
            "merge-patch+json",
            Some(b"application/merge-patch+json"),
            creds.clone(),
        ),
        body(
            "application/+json",
            Some(b"application/+json"),
            creds.clone(),
        ),
        body("upper case", Some(b"APPLICATION/JSON"), creds.clone()),
        body(
            "XML",
            Some(b"application/xml"),
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
        ),
        body(
            "latin-1 form",
            Some(b"application/x-www-form-urlencoded; charset=iso-8859-1"),
            b"username=caf\xe9&password=x".to_vec(),
        ),
        body(";;;", Some(b";;;"), creds.clone()),
        body("*/*", Some(b"*/*"), creds.clone()),
        body(
            "obs-text content type",
            Some(b"application/json\xff"),
            creds.clone(),
        ),
        body("JSON type, form body", JSON, form),
        body("form type, JSON body", FORM, creds.clone()),
        body(
            "octet-stream",
            Some(b"application/octet-stream"),
            (0..=255u8).collect::<Vec<u8>>(),
        ),
        body("empty content type", Some(b""), creds),
    ]
}

/// Sends every crafted body to every route with every credential.
async fn bodies_everywhere(world: &mut World, category: &'static str, bodies: &[Body]) {
    for (method, template) in ENDPOINTS {
        world.refresh().await;
        for cred in CREDS {
            for b in bodies {
                let mut req =
                    Req::new(category, method, fill(world, template), cred).body(b.bytes.clone());
                if let Some(ct) = b.content_type {
                    req = req.content_type(ct);
                }
                let answer = world.probe(&req).await;
                let reads_body = matches!(
                    (*method, *template),
                    (
                        "POST",
                        "/v1/users" | "/v1/session" | "/v1/token" | "/v1/token/revoke"
                    )
                );
                if reads_body && b.bytes.len() > BODY_LIMIT {
                    assert_eq!(answer.status, 413, "{} ({})", req.describe(), b.label);
                }
                if b.bytes.len() <= BODY_LIMIT {
                    assert_ne!(answer.status, 413, "{} ({})", req.describe(), b.label);
                }
            }
        }
    }
}

#[tokio::test]
async fn malformed_json_bodies_never_get_a_server_error() {
    let mut world = World::new().await;
    let bodies = json_shape_bodies(&world.user.clone());
    bodies_everywhere(&mut world, "malformed JSON bodies", &bodies).await;
    world.assert_still_serving("malformed JSON bodies").await;
}

#[tokio::test]
async fn hostile_json_values_never_get_a_server_error() {
    let mut world = World::new().await;
    bodies_everywhere(&mut world, "hostile JSON values", &json_value_bodies()).await;
    world.assert_still_serving("hostile JSON values").await;
}

#[tokio::test]
async fn crafted_forms_and_other_media_types_never_get_a_server_error() {
    let mut world = World::new().await;
    let user = world.user.clone();
    bodies_everywhere(&mut world, "crafted form bodies", &form_bodies(&user)).await;
    bodies_everywhere(&mut world, "other media types", &other_media_bodies(&user)).await;
    world
        .assert_still_serving("crafted forms and media types")
        .await;
}
