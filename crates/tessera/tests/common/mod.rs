//! Running the `tessera` binary from tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn register(client: &reqwest::Client, server: &Server, name: &str) -> u16 {
    client
        .post(server.url("/v1/users"))
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn access_token(client: &reqwest::Client, server: &Server, name: &str) -> String {
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", name),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn me_status(client: &reqwest::Client, server: &Server, token: &str) -> u16 {
    client
        .get(server.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub fn tessera(dir: &Path) -> Command {
    in_dir(Command::new(env!("CARGO_BIN_EXE_tessera")), dir)
}

/// The binary as a shell with `umask` would start it.
pub fn tessera_with_umask(dir: &Path, umask: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tessera"));
    in_dir(command, dir)
}

fn in_dir(mut command: Command, dir: &Path) -> Command {
    command.current_dir(dir);
    // The test must see only the configuration it sets itself.
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

pub struct Server {
    child: Child,
    pub base: String,
    startup_log: Vec<String>,
    log: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_command(tessera(dir), env)
    }

    /// `serve` from `command` (see [`tessera_with_umask`]).
    pub fn start_command(command: Command, env: &[(&str, &str)]) -> Self {
        Self::try_start(command, env)
            .unwrap_or_else(|log| panic!("server did not start; log: {log:#?}"))
    }

    /// `serve` on a free loopback port whose URL is also `public_url`, so
    /// the issuer is an address outside clients can fetch from. A free port
    /// can be taken by someone else before the server binds it; then the
    /// server exits and another port is tried.
    pub fn start_public(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let listen = format!("127.0.0.1:{port}");
            let base = format!("http://{listen}");
            let mut all = vec![("TESSERA_LISTEN", listen.as_str())];
            all.push(("TESSERA_PUBLIC_URL", base.as_str()));
            all.extend_from_slice(env);
            match Self::try_start(tessera(dir), &all) {
                Ok(server) => {
                    assert_eq!(server.base, base, "log: {:#?}", server.startup_log);
                    return server;
                }
                Err(log) => failures.push(log),
            }
        }
        panic!("server did not start; logs: {failures:#?}");
    }

    /// The server, or its log if it exited before listening.
    fn try_start(mut command: Command, env: &[(&str, &str)]) -> Result<Self, Vec<String>> {
        serve(&mut command, env);
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            let line = match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                // Standard error closed: the server exited (e.g. the port
                // was taken).
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    return Err(seen);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("server did not start in 30 s; log: {seen:#?}")
                }
            };
            let address = line
                .split("listening on ")
                .nth(1)
                // Text ends the URL with white space, JSON with a quote.
                .map(|rest| {
                    rest.split(|c: char| c.is_whitespace() || c == '"')
                        .next()
                        .unwrap()
                        .to_owned()
                });
            seen.push(line);
            if let Some(address) = address {
                break address;
            }
        };
        Ok(Self {
            child,
            base,
            startup_log: seen,
            log: rx,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut log = std::mem::take(&mut self.startup_log);
        // The reader thread ends at the pipe's end of file: drain until then.
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(5)) {
            log.push(line);
        }
        (status, log)
    }

    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `args` with `stdin` as standard input: (success, stdout, stderr).
pub fn run_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    run_command(tessera(dir).args(args), stdin)
}

/// Runs a prepared command with `stdin` as standard input: (success, stdout, stderr).
pub fn run_command(command: &mut Command, stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Makes `command` a `serve` on an ephemeral loopback port with `env`,
/// its standard error piped to the test.
fn serve(command: &mut Command, env: &[(&str, &str)]) {
    command
        .arg("serve")
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
}

/// `serve` must refuse to start: its standard error, once it has exited
/// with a failure. A server that starts instead fails the test (it does not
/// hang it).
pub fn refuses_to_start(command: &mut Command, env: &[(&str, &str)]) -> String {
    serve(command, env);
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exited successfully: {stderr}");
    assert!(
        !stderr.contains("listening on"),
        "it started before failing: {stderr}"
    );
    stderr
}

/// A fresh, migrated schema in the test database (`TEST_DATABASE_URL`).
pub async fn fresh_database() -> String {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must be set (scripts/test sets it)");
    let (store, schema) = tessera_store_postgres::PgStore::connect_in_new_schema(&url, 2)
        .await
        .unwrap();
    store.close().await;
    schema
}

/// The test database's URL with `schema` as the search path.
pub fn database_url_in(schema: &str) -> String {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must be set (scripts/test sets it)");
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// A TCP proxy on loopback in front of a real service, that a test can cut
/// (every connection dropped, new ones refused) and restore.
pub struct Proxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = std::sync::Arc::new(generation);
        let task = {
            let cut = cut.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let mut killed = generation.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = killed.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            port,
            cut,
            generation,
            task,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
