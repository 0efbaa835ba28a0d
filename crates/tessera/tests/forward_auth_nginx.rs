//! Forward authentication behind a real nginx: `tessera serve`, a small
//! application that echoes the `X-Tessera-*` headers it receives, and nginx
//! in front of it with `auth_request` and the configuration the README
//! gives (only the addresses differ), all on loopback ports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::HeaderMap;
use common::*;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// The nginx locations the README documents, for Tessera at `tessera` (a
/// base URL) answering to `tessera_host`, and the application at `app`.
fn nginx_locations(tessera: &str, tessera_host: &str, app: &str) -> String {
    let ask = |uri: &str, original: &str| {
        format!(
            r#"
        internal;
        proxy_pass {tessera}{uri};
        # Tessera answers only to its own names (hosts), never the app's.
        proxy_set_header Host {tessera_host};
        proxy_ssl_server_name on;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";{original}"#
        )
    };
    // auth_request understands 2xx, 401 and 403 only: the check describes
    // no original request, so Tessera never answers it with a 302.
    let none = r#"
        proxy_set_header X-Original-URL "";
        proxy_set_header X-Forwarded-Proto "";
        proxy_set_header X-Forwarded-Host "";
        proxy_set_header X-Forwarded-Uri "";"#;
    // Asked again once refused, describing the original request: a browser
    // gets Tessera's 302 to its sign-in page (and back), others the 401.
    let original = r#"
        proxy_set_header X-Original-URL "";
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-Uri $request_uri;"#;
    let protect = |check: &str| {
        format!(
            r#"
        auth_request {check};
        error_page 401 = /_tessera/sign-in;
        auth_request_set $tessera_user_id $upstream_http_x_tessera_user_id;
        auth_request_set $tessera_username $upstream_http_x_tessera_username;
        auth_request_set $tessera_roles $upstream_http_x_tessera_roles;
        auth_request_set $tessera_session_id $upstream_http_x_tessera_session_id;
        # Set here, so whatever a client sent under these names is dropped
        # (an empty value, e.g. no roles, is not sent at all).
        proxy_set_header X-Tessera-User-Id $tessera_user_id;
        proxy_set_header X-Tessera-Username $tessera_username;
        proxy_set_header X-Tessera-Roles $tessera_roles;
        proxy_set_header X-Tessera-Session-Id $tessera_session_id;
        proxy_pass {app};"#
        )
    };
    format!(
        r#"
    location = /_tessera/auth {{{}
    }}
    location = /_tessera/auth/admin {{{}
    }}
    location = /_tessera/sign-in {{{}
    }}

    location / {{{}
    }}
    location /admin/ {{{}
    }}
"#,
        ask("/v1/auth/forward", none),
        ask("/v1/auth/forward?role=admin", none),
        ask("/v1/auth/forward", original),
        protect("/_tessera/auth"),
        protect("/_tessera/auth/admin"),
    )
}

/// The nginx binary: `$NGINX`, else `nginx` on the path or in /usr/sbin.
fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NGINX") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .expect("nginx is not installed (scripts/test installs Debian's nginx package)")
}

/// nginx in the foreground, one process, everything it writes in `dir`.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, listen: SocketAddr, site: &str) -> Self {
        // Worker processes of a root nginx run as `nobody`, and must reach
        // the temporary paths.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let d = dir.display();
        let config = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{site}
}}
"#
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Self {
            child,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(listen).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited ({status}): {}", nginx.log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The protected application: answers every request with the path and the
/// `X-Tessera-*` headers it received (each name's values, in order), and
/// counts the requests that reached it.
async fn start_app() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let echo = move |uri: axum::http::Uri, headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut seen = serde_json::Map::new();
            for name in headers.keys() {
                if name.as_str().starts_with("x-tessera-") {
                    let values: Vec<Value> = headers
                        .get_all(name)
                        .iter()
                        .map(|v| json!(String::from_utf8_lossy(v.as_bytes())))
                        .collect();
                    seen.insert(name.as_str().to_owned(), Value::Array(values));
                }
            }
            Json(json!({ "uri": uri.to_string(), "headers": seen }))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// The hidden field `name` of a page, its HTML escapes undone.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let raw = html[start..].split('"').next().unwrap();
    [
        ("&#38;", "&"),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#60;", "<"),
        ("&#62;", ">"),
        ("&amp;", "&"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
    ]
    .iter()
    .fold(raw.to_owned(), |text, (escape, plain)| {
        text.replace(escape, plain)
    })
}

/// The one value the application received under `name`, if any.
fn received<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    let values = echo["headers"].get(name)?.as_array().unwrap();
    assert_eq!(values.len(), 1, "{name} arrived {} times", values.len());
    values[0].as_str()
}

#[tokio::test]
#[ignore = "needs nginx (scripts/test installs it)"]
async fn nginx_auth_request_protects_an_application() {
    let dir = tempfile::tempdir().unwrap();
    let cheap = [
        ("TESSERA_PASSWORD__MEMORY_KIB", "256"),
        ("TESSERA_PASSWORD__ITERATIONS", "1"),
    ];
    let mut add = tessera(dir.path());
    add.args(["user", "add", "boss", "--admin"]).envs(cheap);
    let (ok, _, err) = run_command(&mut add, &format!("{PASSWORD}\n"));
    assert!(ok, "{err}");

    let (app, hits) = start_app().await;
    let proxy = free_port();
    let app_host = proxy.ip().to_string();
    let mut env = vec![
        ("TESSERA_COOKIE__SECURE", "false"),
        ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
        ("TESSERA_FORWARD_AUTH__ALLOWED_HOSTS", app_host.as_str()),
    ];
    env.extend(cheap);
    let server = Server::start(dir.path(), &env);
    let tessera_host = server.base.trim_start_matches("http://").to_owned();
    let nginx_dir = tempfile::tempdir().unwrap();
    let site = format!(
        "server {{\n    listen {proxy};\n{}}}\n",
        nginx_locations(&server.base, &tessera_host, &format!("http://{app}"))
    );
    let nginx = Nginx::start(nginx_dir.path(), proxy, &site);
    let at = |path: &str| format!("http://{proxy}{path}");

    // No cookie: an API client gets the 401, a browser the way to sign in;
    // neither reaches the application.
    let anon = browser();
    let r = anon.get(at("/notes")).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", nginx.log());
    let r = anon
        .get(at("/notes?a=1&b=2"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", nginx.log());
    let to_login = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        to_login,
        server.url(&format!(
            "/login?return_to=http%3A//{app_host}%3A{}/notes%3Fa%3D1%26b%3D2",
            proxy.port()
        ))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // Signing in through the form sends the browser back, and the
    // application sees who it is (whatever the browser claims itself).
    let alice = browser();
    assert_eq!(register(&alice, &server, "alice").await, 201);
    let form = alice.get(&to_login).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    let r = alice
        .post(server.url("/login"))
        .form(&[
            ("csrf_token", field(&form, "csrf_token").as_str()),
            ("return_to", field(&form, "return_to").as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let back = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(back, at("/notes?a=1&b=2"));
    let current: Value = alice
        .get(server.url("/v1/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = alice
        .get(&back)
        .header("accept", HTML)
        .header("x-tessera-user-id", "someone-else")
        .header("x-tessera-roles", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", nginx.log());
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["uri"], "/notes?a=1&b=2");
    assert_eq!(
        received(&echo, "x-tessera-user-id"),
        current["user"]["id"].as_str()
    );
    assert_eq!(received(&echo, "x-tessera-username"), Some("alice"));
    // Tessera sends the header empty; nginx passes no empty header on.
    assert_eq!(received(&echo, "x-tessera-roles"), None);
    assert_eq!(
        received(&echo, "x-tessera-session-id"),
        current["session"]["id"].as_str()
    );

    // The admin location wants the role.
    let r = alice.get(at("/admin/")).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // Signed out: refused on the very next request.
    let page = alice.get(server.url("/logout")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let r = alice
        .post(server.url("/logout"))
        .form(&[("csrf_token", field(&page, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let before = hits.load(Ordering::SeqCst);
    let r = alice
        .get(at("/notes"))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = alice.get(at("/notes")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // A bearer token, for a role-protected location; revoked, refused.
    let api = reqwest::Client::new();
    let token = access_token(&api, &server, "boss").await;
    let r = api
        .get(at("/admin/report"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", nginx.log());
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["uri"], "/admin/report");
    assert_eq!(received(&echo, "x-tessera-username"), Some("boss"));
    assert_eq!(received(&echo, "x-tessera-roles"), Some("admin"));
    let r = api
        .get(at("/admin/report"))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = api
        .delete(server.url("/v1/me/sessions"))
        .bearer_auth(&token)
        .query(&[("scope", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "signing out everywhere");
    let r = api.get(at("/")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401, "a revoked token is refused at once");

    drop(nginx);
    let _ = server.terminate();
}
