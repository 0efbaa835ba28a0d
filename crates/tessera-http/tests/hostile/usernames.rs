//! SQL injection and Unicode tricks in usernames, passwords and cursors:
//! plain data, never a way into another account.

use reqwest::header::HeaderValue;
use serde_json::json;

use crate::common::*;
use crate::world::*;

impl World {
    async fn register_as(&self, category: &'static str, username: &str) -> Answer {
        self.hit(
            &Req::new(category, "POST", "/v1/users", Cred::Anon)
                .json(&json!({ "username": username, "password": PASSWORD })),
        )
        .await
    }

    /// Cookie sign-in; returns the answer (200 with the user, or a refusal).
    async fn sign_in_as(&self, category: &'static str, username: &str, password: &str) -> Answer {
        self.cool_down();
        self.hit(
            &Req::new(category, "POST", "/v1/session", Cred::Anon)
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    /// Password grant then `GET /v1/me`; the user's id, or the grant's status.
    async fn token_user(
        &self,
        category: &'static str,
        username: &str,
        password: &str,
    ) -> Result<String, u16> {
        self.cool_down();
        let r = self
            .hit(
                &Req::new(category, "POST", "/v1/token", Cred::Anon)
                    .content_type(b"application/x-www-form-urlencoded")
                    .body(
                        serde_urlencoded::to_string([
                            ("grant_type", "password"),
                            ("username", username),
                            ("password", password),
                        ])
                        .unwrap(),
                    ),
            )
            .await;
        if r.status != 200 {
            return Err(r.status);
        }
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        let me = self
            .hit(&Req::new(category, "GET", "/v1/me", Cred::Anon).header(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {access}")).unwrap(),
            ))
            .await;
        assert_eq!(me.status, 200);
        Ok(me.json()["id"].as_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn sql_injection_in_usernames_and_passwords_is_plain_data() {
    let mut world = World::new().await;
    const CAT: &str = "SQL injection";
    let alice = world.register_as(CAT, "alice").await;
    assert_eq!(alice.status, 201);
    let alice_id = alice.json()["id"].as_str().unwrap().to_owned();
    let injections = [
        "alice'; DROP TABLE users; --",
        "' OR '1'='1",
        "%' UNION SELECT id, username FROM users --",
        "alice' --",
        "alice'/*",
        "\" OR \"\"=\"",
        "1; SELECT * FROM sqlite_master",
        "alice' OR 1=1 --",
        "'); DELETE FROM sessions; --",
        "%",
        "_",
    ];
    let mut registered = vec![alice_id.clone()];
    for name in injections {
        let r = world.register_as(CAT, name).await;
        match r.status {
            201 => {
                let id = r.json()["id"].as_str().unwrap().to_owned();
                assert_eq!(r.json()["username"], name);
                assert_ne!(id, alice_id, "{name:?} is not alice");
                registered.push(id.clone());
                let s = world.sign_in_as(CAT, name, PASSWORD).await;
                assert_eq!(s.status, 200, "signing in as {name:?}");
                assert_eq!(s.json()["user"]["id"], id.as_str());
                assert_eq!(s.json()["user"]["username"], name);
                assert_eq!(world.token_user(CAT, name, PASSWORD).await, Ok(id.clone()));
                // Registered once; a second time is a conflict.
                assert_eq!(
                    world.register_as(CAT, name).await.status,
                    409,
                    "{name:?} again"
                );
                // The wrong password is still wrong.
                assert_eq!(
                    world.sign_in_as(CAT, name, "not the password").await.status,
                    401
                );
            }
            400 => {
                assert_eq!(
                    world.sign_in_as(CAT, name, PASSWORD).await.status,
                    401,
                    "{name:?}"
                );
            }
            other => panic!("registering {name:?} answered {other}"),
        }
    }
    // Injections as passwords, or as usernames that try to comment out the
    // password check, never sign anyone in.
    for (username, password) in [
        ("alice", "' OR '1'='1"),
        ("alice", "' OR 1=1 --"),
        ("alice", "x' OR 'x'='x"),
        ("alice' --", "anything at all"),
        ("alice' OR '1'='1", "anything at all"),
        ("' OR username='alice' --", "anything at all"),
        ("%", "anything at all"),
        ("_lice", PASSWORD),
        ("ALIC_", PASSWORD),
        ("al%", PASSWORD),
    ] {
        let r = world.sign_in_as(CAT, username, password).await;
        // `alice' --` and friends were registered above with PASSWORD, not
        // with these passwords.
        assert_eq!(r.status, 401, "signing in as {username:?} / {password:?}");
        assert_eq!(
            world.token_user(CAT, username, password).await,
            Err(400),
            "password grant for {username:?} / {password:?}"
        );
    }
    // Injections in the admin API's cursor are data too.
    for after in [
        "' OR '1'='1",
        "%' UNION SELECT 1 --",
        "%",
        "_",
        "alice'; DROP TABLE users; --",
    ] {
        let r = world
            .hit(&Req::new(
                CAT,
                "GET",
                format!("/v1/admin/users?limit=500&after={}", pct(after.as_bytes())),
                Cred::Admin,
            ))
            .await;
        assert_eq!(r.status, 200, "after={after:?}");
        for user in r.json()["users"].as_array().unwrap() {
            let normalized = tessera_core::username::normalize(user["username"].as_str().unwrap());
            assert!(normalized.as_str() > after, "{after:?} < {normalized:?}");
        }
    }
    // The users table is intact: everyone is still there and alice signs in.
    let r = world
        .hit(&Req::new(
            CAT,
            "GET",
            "/v1/admin/users?limit=500",
            Cred::Admin,
        ))
        .await;
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &registered {
        assert!(ids.contains(id), "user {id} is gone");
    }
    let s = world.sign_in_as(CAT, "alice", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    assert_eq!(world.token_user(CAT, "alice", PASSWORD).await, Ok(alice_id));
    world.assert_still_serving("SQL injection").await;
}

#[tokio::test]
async fn unicode_lookalikes_collide_or_stay_apart_and_invisible_characters_are_refused() {
    let mut world = World::new().await;
    const CAT: &str = "Unicode tricks";
    let alice = world.register_as(CAT, "alice").await;
    assert_eq!(alice.status, 201);
    let alice_id = alice.json()["id"].as_str().unwrap().to_owned();

    // Width and case variants are the same account.
    for variant in ["ａｌｉｃｅ", "ALICE", "Alice", "ＡＬＩＣＥ"] {
        let r = world.register_as(CAT, variant).await;
        assert_eq!(r.status, 409, "registering {variant:?}");
        assert_eq!(r.json()["type"], "urn:tessera:problem:username-taken");
    }

    // Invisible and direction-changing characters are refused, whatever the
    // encoding, and never sign in as alice.
    let invisible = [
        "ali\u{202E}ce",
        "\u{202E}ecila",
        "alice\u{202C}",
        "ali\u{2066}ce",
        "ali\u{200D}ce",
        "ali\u{200C}ce",
        "ali\u{200B}ce",
        "\u{FEFF}alice",
        "ali\u{00AD}ce",
        "alice\u{2060}",
        "ali\u{180E}ce",
        "ali\u{E000}ce",
        "alice\u{E0041}",
        "ali\u{0000}ce",
        "alice\u{0000}",
        "ali\u{0007}ce",
        "ali\nce",
        "alice\u{061C}",
    ];
    for name in invisible {
        let r = world.register_as(CAT, name).await;
        assert_eq!(r.status, 400, "registering {name:?}");
        let form = world
            .hit(
                &Req::new(CAT, "POST", "/v1/users", Cred::Anon)
                    .content_type(b"application/x-www-form-urlencoded")
                    .body(
                        serde_urlencoded::to_string([("username", name), ("password", PASSWORD)])
                            .unwrap(),
                    ),
            )
            .await;
        assert_eq!(form.status, 400, "registering {name:?} by form");
        let s = world.sign_in_as(CAT, name, PASSWORD).await;
        assert!(
            matches!(s.status, 400 | 401),
            "signing in as {name:?} answered {}",
            s.status
        );
        assert!(
            world.token_user(CAT, name, PASSWORD).await.is_err(),
            "password grant as {name:?}"
        );
    }

    // Confusables from other scripts are other accounts: allowed or refused,
    // never alice.
    for name in [
        "\u{0430}lice",
        "\u{0430}li\u{0441}e",
        "\u{0251}lice",
        "al\u{0456}ce",
        "\u{03B1}lice",
    ] {
        let r = world.register_as(CAT, name).await;
        match r.status {
            201 => {
                let id = r.json()["id"].as_str().unwrap().to_owned();
                assert_ne!(id, alice_id, "{name:?}");
                let s = world.sign_in_as(CAT, name, PASSWORD).await;
                assert_eq!(s.status, 200);
                assert_eq!(
                    s.json()["user"]["id"],
                    id.as_str(),
                    "{name:?} signs in as itself"
                );
                assert_eq!(s.json()["user"]["username"], name);
                assert_eq!(world.token_user(CAT, name, PASSWORD).await, Ok(id));
            }
            400 => {
                assert_eq!(
                    world.sign_in_as(CAT, name, PASSWORD).await.status,
                    401,
                    "{name:?}"
                );
            }
            other => panic!("registering {name:?} answered {other}"),
        }
    }

    // The width variant names alice's account (documented normalisation).
    let s = world.sign_in_as(CAT, "ａｌｉｃｅ", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    // And alice is alice.
    let s = world.sign_in_as(CAT, "alice", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    assert_eq!(s.json()["user"]["username"], "alice");
    world.assert_still_serving("Unicode tricks").await;
}
