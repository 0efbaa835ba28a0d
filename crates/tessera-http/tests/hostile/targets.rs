//! Crafted query strings and path parameters on every route.

use crate::world::*;

const QUERIES: &[&str] = &[
    "",
    "limit=abc",
    "limit=-1",
    "limit=0",
    "limit=501",
    "limit=99999999999999999999",
    "limit=1&limit=2",
    "limit=%2B5",
    "limit=1e3",
    "before=abc",
    "before=-9223372036854775808",
    "before=9223372036854775808",
    "after=%27%20OR%20%271%27%3D%271",
    "after=%25%27%20UNION%20SELECT%20password_hash%20FROM%20users%20--",
    "after=alice%27%3B%20DROP%20TABLE%20users%3B%20--",
    "after=%00",
    "since=-1",
    "since=9223372036854775807",
    "since=9223372036854775808",
    "since=1.5",
    "since=%00",
    "since=0x10",
    "scope=ALL",
    "scope=all&scope=others",
    "scope=",
    "scope[]=all",
    "scope=%E2%80%AEall",
    "scope=others",
    "scope=all",
    "%",
    "%%",
    "%ZZ",
    "%FF%FE=%C0",
    "a=%00",
    "=&&==",
    "&",
    "a[b][c]=d",
    "a=1;b=2",
    "limit=%ED%A0%80",
    "username=mallory&password=correct%20horse%20battery%20staple&grant_type=password",
];

/// Values for `{id}`, already in URL form.
fn crafted_ids(world: &World, template: &str) -> Vec<String> {
    let real = world.real_id(template);
    vec![
        real.clone(),
        real.to_uppercase(),
        format!("%7B{real}%7D"),
        format!("urn:uuid:{real}"),
        format!("{real}%00"),
        "not-a-uuid".into(),
        "00000000-0000-0000-0000-000000000000".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "..%5C..%5Cwindows".into(),
        "%00".into(),
        "%FF%FE".into(),
        "%C0%AE%C0%AE%C0%AF".into(),
        "%ED%A0%80".into(),
        "%27%20OR%20%271%27%3D%271".into(),
        "alice%27%3B%20DROP%20TABLE%20users%3B%20--".into(),
        "%ZZ".into(),
        "%".into(),
        "%E2%80%AE".into(),
        "%20".into(),
        ";".into(),
        "*".into(),
        "a".repeat(2 * KIB),
    ]
}

#[tokio::test]
async fn crafted_query_strings_and_path_parameters_never_get_a_server_error() {
    let mut world = World::new().await;
    for (method, template) in ENDPOINTS {
        world.refresh().await;
        for cred in CREDS {
            for query in QUERIES {
                let target = format!("{}?{query}", fill(&world, template));
                world
                    .probe(&Req::new("crafted query strings", method, target, cred))
                    .await;
            }
        }
        if template.contains("{id}") {
            for cred in CREDS {
                for id in crafted_ids(&world, template) {
                    let target = template.replace("{id}", &id);
                    let answer = world
                        .probe(&Req::new(
                            "crafted path parameters",
                            method,
                            target.clone(),
                            cred,
                        ))
                        .await;
                    // Disabling or enabling nobody is 404 (or 400 for a
                    // parameter that is not even UTF-8). Signing nobody out
                    // is a no-op for a well-formed id (204).
                    let nobody = !id.contains(&world.victim_id)
                        && !id.eq_ignore_ascii_case(&world.victim_id);
                    let well_formed = uuid::Uuid::parse_str(&id).is_ok();
                    if cred == Cred::Admin
                        && template.starts_with("/v1/admin/")
                        && nobody
                        && !(well_formed && template.ends_with("/sessions"))
                    {
                        assert!(
                            matches!(answer.status, 400 | 404),
                            "{method} {target}: {}",
                            answer.status
                        );
                    }
                }
            }
        }
    }
    // The victim was disabled and enabled many times over; it is enabled or
    // not, but the admin API still lists it.
    let r = world
        .hit(&Req::new(
            "crafted path parameters",
            "GET",
            "/v1/admin/users",
            Cred::Admin,
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["users"].as_array().unwrap().len() >= 2);
    world
        .assert_still_serving("crafted queries and path parameters")
        .await;
}
