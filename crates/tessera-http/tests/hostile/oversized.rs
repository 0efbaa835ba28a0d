//! Oversized everything: bodies around the 64 KiB limit, huge headers,
//! tokens, cookies, paths and request targets, over a hundred headers.

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::json;

use crate::bodies::{FORM, JSON, sized_form, sized_json};
use crate::common::*;
use crate::raw::{raw_cred, raw_exchange, raw_request};
use crate::world::*;

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_bodies_under_it_are_read() {
    let mut world = World::new().await;
    let cases: &[(&str, Cred)] = &[
        ("/v1/users", Cred::Anon),
        ("/v1/session", Cred::Anon),
        ("/v1/token", Cred::Anon),
        ("/v1/token/revoke", Cred::Anon),
        ("/v1/token/introspect", Cred::Verifier),
        ("/v1/token/introspect", Cred::Admin),
        ("/v1/me/password", Cred::Bearer),
        ("/v1/me/password", Cred::Cookie),
    ];
    for (path, cred) in cases {
        for (label, ct, under, over) in [
            (
                "json",
                JSON,
                sized_json(BODY_LIMIT - 1),
                sized_json(70 * KIB),
            ),
            (
                "form",
                FORM,
                sized_form(BODY_LIMIT - 1),
                sized_form(70 * KIB),
            ),
            ("none", None, sized_json(60 * KIB), sized_json(70 * KIB)),
        ] {
            let mut small = Req::new("oversized bodies", "POST", *path, *cred).body(under);
            let mut big = Req::new("oversized bodies", "POST", *path, *cred).body(over);
            if let Some(ct) = ct {
                small = small.content_type(ct);
                big = big.content_type(ct);
            }
            let r = world.probe(&big).await;
            assert_eq!(r.status, 413, "{label}: {}", big.describe());
            let r = world.probe(&small).await;
            assert!(
                r.status != 413 && r.status < 500,
                "{label}: {} answered {}",
                small.describe(),
                r.status
            );
            if ct.is_none() {
                assert_eq!(r.status, 415, "{}", small.describe());
            }
        }
    }
    // The limit is exact: 64 KiB is read, one byte more is not.
    for (size, expect_413) in [(BODY_LIMIT, false), (BODY_LIMIT + 1, true)] {
        for (ct, bytes) in [(JSON, sized_json(size)), (FORM, sized_form(size))] {
            let req = Req::new("oversized bodies", "POST", "/v1/users", Cred::Anon)
                .content_type(ct.unwrap())
                .body(bytes);
            let r = world.probe(&req).await;
            assert_eq!(r.status == 413, expect_413, "{size} bytes: {}", r.status);
        }
    }
    // A cookie-authenticated form without the CSRF header has its body read
    // (for the csrf_token field) before any handler: still 413.
    let mut req = Req::new("oversized bodies", "POST", "/v1/me/password", Cred::Anon)
        .content_type(b"application/x-www-form-urlencoded")
        .body(sized_form(70 * KIB));
    req = req.header(
        "cookie",
        HeaderValue::from_str(&format!("{}={}", world.cookie_name, world.cookie)).unwrap(),
    );
    let r = world.probe(&req).await;
    assert_eq!(r.status, 413, "{}", req.describe());
    // A chunked body without Content-Length is limited the same way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..70).map(|_| Ok(vec![b'a'; KIB])).collect();
    world.count("oversized bodies");
    let r = tokio::time::timeout(
        LIMIT,
        world
            .http
            .post(world.server.url("/v1/users"))
            .header(CONTENT_TYPE, "application/json")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
            .send(),
    )
    .await
    .expect("chunked 70 KiB body hangs");
    if let Ok(r) = r {
        assert_eq!(r.status(), 413, "chunked 70 KiB body");
        problem(r, 413).await;
    }
    // A megabyte: refused, or the connection closed while it was sent.
    let req = Req::new("oversized bodies", "POST", "/v1/users", Cred::Anon)
        .content_type(b"application/json")
        .body(vec![b' '; 1024 * KIB]);
    if let Some(r) = world.hit_or_closed(&req).await {
        assert_eq!(r.status, 413);
    }
    world.assert_still_serving("oversized bodies").await;
}

#[tokio::test]
async fn oversized_headers_tokens_cookies_and_paths_never_get_a_server_error() {
    let mut world = World::new().await;
    let filler = HeaderValue::from_str(&"a".repeat(20 * KIB)).unwrap();
    // A 20 KiB header on every route.
    for (method, template) in ENDPOINTS {
        for cred in [Cred::Anon, Cred::Admin, Cred::Bearer] {
            let req = Req::new("20 KiB header", method, fill(&world, template), cred)
                .header("x-filler", filler.clone());
            world.hit_or_closed(&req).await;
        }
    }
    // 20 KiB in headers the server reads.
    for (name, method, path, cred) in [
        ("user-agent", "POST", "/v1/session", Cred::Anon),
        ("origin", "POST", "/v1/session", Cred::Anon),
        (
            "origin",
            "DELETE",
            "/v1/me/sessions?scope=others",
            Cred::Cookie,
        ),
        (
            "x-csrf-token",
            "DELETE",
            "/v1/me/sessions?scope=others",
            Cred::Cookie,
        ),
        ("sec-fetch-site", "POST", "/v1/users", Cred::Anon),
        ("accept", "GET", "/v1/revocations", Cred::Verifier),
        ("last-event-id", "GET", "/v1/revocations", Cred::Verifier),
        ("x-forwarded-for", "POST", "/v1/token", Cred::Anon),
        ("x-request-id", "GET", "/healthz", Cred::Anon),
    ] {
        let creds =
            json!({ "username": world.user, "password": PASSWORD, "grant_type": "password" });
        let req = Req::new("20 KiB header", method, path, cred)
            .json(&creds)
            .header(name, filler.clone());
        if let Some(r) = world.hit_or_closed(&req).await
            && (200..300).contains(&r.status)
            && destructive(&req.method, path)
        {
            world.refresh().await;
        }
    }
    // The session made with a 20 KiB user agent lists fine.
    let r = world
        .hit(&Req::new(
            "20 KiB header",
            "GET",
            "/v1/me/sessions",
            Cred::Bearer,
        ))
        .await;
    assert_eq!(r.status, 200);

    // A 9 KiB bearer token: well-formed JWT shape, and plain garbage.
    let jwt_shaped = format!(
        "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.{}.c2ln",
        "A".repeat(9 * KIB)
    );
    for token in [jwt_shaped, "x".repeat(9 * KIB)] {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        for (method, template) in ENDPOINTS {
            let req = Req::new("9 KiB bearer", method, fill(&world, template), Cred::Anon)
                .header("authorization", value.clone());
            let r = world.hit(&req).await;
            if NEEDS_CREDENTIALS.contains(&(*method, *template)) {
                assert_eq!(r.status, 401, "{}", req.describe());
            }
        }
    }

    // A 10 KiB cookie: a live session drowned in padding is ignored whole,
    // and a 10 KiB session value is no session.
    let drowned = format!(
        "{}={}; pad={}",
        world.cookie_name,
        world.cookie,
        "p".repeat(10 * KIB)
    );
    let huge_value = format!("{}=ts_{}", world.cookie_name, "A".repeat(10 * KIB));
    for cookie in [drowned, huge_value] {
        let value = HeaderValue::from_str(&cookie).unwrap();
        for (method, template) in ENDPOINTS {
            let req = Req::new("10 KiB cookie", method, fill(&world, template), Cred::Anon)
                .header("cookie", value.clone())
                .header("x-csrf-token", HeaderValue::from_str(&world.csrf).unwrap());
            let r = world.hit(&req).await;
            if NEEDS_CREDENTIALS.contains(&(*method, *template)) {
                assert!(
                    matches!(r.status, 401),
                    "{} answered {}",
                    req.describe(),
                    r.status
                );
            }
        }
        // Signing in with such a cookie on the request still works.
        let req = Req::new("10 KiB cookie", "POST", "/v1/session", Cred::Anon)
            .json(&json!({ "username": world.user, "password": PASSWORD }))
            .header("cookie", value);
        assert_eq!(world.hit(&req).await.status, 200);
    }
    world.refresh().await;

    // A 2 KiB path.
    let long = "a".repeat(2 * KIB);
    let long_escaped = "%41".repeat(700);
    for (method, target, cred, expected) in [
        ("GET", format!("/{long}"), Cred::Anon, Some(404)),
        ("GET", format!("/v1/me/{long}"), Cred::Bearer, Some(404)),
        (
            "DELETE",
            format!("/v1/me/sessions/{long}"),
            Cred::Bearer,
            Some(404),
        ),
        (
            "DELETE",
            format!("/v1/me/sessions/{long_escaped}"),
            Cred::Cookie,
            Some(404),
        ),
        (
            "POST",
            format!("/v1/admin/users/{long}/disable"),
            Cred::Admin,
            Some(404),
        ),
        (
            "POST",
            format!("/v1/admin/users/{long}/enable"),
            Cred::Anon,
            Some(401),
        ),
        (
            "DELETE",
            format!("/v1/admin/users/{long}/sessions"),
            Cred::Admin,
            Some(404),
        ),
        (
            "GET",
            format!("/v1/revocations?since={}", "9".repeat(2 * KIB)),
            Cred::Verifier,
            Some(400),
        ),
        (
            "GET",
            format!("/v1/admin/users?limit=1&after={long}"),
            Cred::Admin,
            Some(200),
        ),
        (
            "GET",
            format!("/v1/admin/audit?before={}", "1".repeat(2 * KIB)),
            Cred::Admin,
            Some(400),
        ),
        ("POST", format!("/v1/token/{long}"), Cred::Anon, Some(404)),
        ("GET", format!("/{}", "../".repeat(700)), Cred::Anon, None),
        (
            "GET",
            format!("/{}", "%2e%2e%2f".repeat(230)),
            Cred::Anon,
            Some(404),
        ),
    ] {
        let req = Req::new("2 KiB path", method, target, cred);
        let r = world.hit(&req).await;
        if let Some(expected) = expected {
            assert_eq!(r.status, expected, "{}", req.describe());
        }
    }

    // A 70 KiB request target (more than the HTTP client will build, so
    // written by hand) and over a hundred headers: refused or closed.
    for target in [
        format!("/v1/admin/users?after={}", "q".repeat(70 * KIB)),
        format!("/v1/admin/users/{}/disable", "a".repeat(70 * KIB)),
    ] {
        world.count("huge URI and header count");
        let request = raw_request(
            &world,
            b"POST",
            target.as_bytes(),
            &raw_cred(&world, Cred::Admin),
            b"",
        );
        raw_exchange(world.server.addr, &request, b"POST", target.as_bytes()).await;
    }
    let mut req = Req::new("huge URI and header count", "GET", "/v1/me", Cred::Bearer);
    for i in 0..120 {
        req = req.header(&format!("x-h{i}"), HeaderValue::from_static("v"));
    }
    world.hit_or_closed(&req).await;
    let mut req = Req::new("huge URI and header count", "GET", "/v1/me", Cred::Anon);
    for _ in 0..90 {
        req = req.header(
            "cookie",
            HeaderValue::from_str(&format!(
                "{}=ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                world.cookie_name
            ))
            .unwrap(),
        );
    }
    if let Some(r) = world.hit_or_closed(&req).await {
        assert!(r.status == 401 || r.status == 431, "{}", r.status);
    }
    world
        .assert_still_serving("oversized headers, tokens, cookies, paths")
        .await;
}
