//! The load generator: connections that each send one kind of request over
//! and over until a deadline, as fast as answered (closed loop) or at a
//! fixed pace, counting latencies and errors.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::Value;

use crate::client::{Loader, PASSWORD, Sender, form_request, json_request};
use crate::latency::Latencies;

/// What a load task sends, and what it keeps between requests.
#[derive(Clone)]
pub(crate) enum Work {
    Get {
        path: &'static str,
        header: Option<(&'static str, String)>,
    },
    Refresh,
    SignIn,
    /// One authorization-code flow of a signed-in browser (its `cookie`)
    /// for a public client that needs no consent: the code issued at
    /// `/v1/authorize`, then exchanged at `/v1/token`.
    CodeFlow {
        client_id: String,
        cookie: String,
    },
}

/// The bench's PKCE pair (RFC 7636's example): the cost is the same
/// whichever pair a client picks.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Where the bench's client is answered (never contacted).
pub(crate) const CODE_REDIRECT: &str = "http://127.0.0.1/callback";

/// The next request of `work`; `refresh` is the refresh token in hand.
pub(crate) fn build(work: &Work, refresh: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    match work {
        Work::Get { path, header } => {
            let mut builder = Request::get(*path).header("host", "127.0.0.1");
            if let Some((name, value)) = header {
                builder = builder.header(*name, value.as_str());
            }
            builder
                .body(Full::new(Bytes::new()))
                .context("building a request")
        }
        Work::Refresh => form_request(
            "/v1/token",
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
        ),
        Work::SignIn => json_request(
            "/v1/session",
            &format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#),
        ),
        Work::CodeFlow { client_id, cookie } => {
            let query = serde_urlencoded::to_string([
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", CODE_REDIRECT),
                ("scope", "openid profile"),
                ("state", "bench"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .context("encoding the authorization request")?;
            Request::get(format!("/v1/authorize?{query}"))
                .header("host", "127.0.0.1")
                .header("cookie", cookie.as_str())
                .body(Full::new(Bytes::new()))
                .context("building a request")
        }
    }
}

/// Sends the next request of `work` (both of a code flow) and answers the
/// last one's status and body.
async fn perform(
    loader: &Loader,
    sender: &mut Sender,
    work: &Work,
    refresh: &str,
) -> anyhow::Result<(u16, Bytes)> {
    let (status, headers, body) = loader.send(sender, build(work, refresh)?).await?;
    let Work::CodeFlow { client_id, .. } = work else {
        return Ok((status, body));
    };
    let code = headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.split_once('?'))
        .and_then(|(_, q)| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|q| q.into_iter().find(|(n, _)| n == "code").map(|(_, v)| v));
    let (302, Some(code)) = (status, code) else {
        return Ok((status, body));
    };
    let exchange = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CODE_REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ])
    .context("encoding the exchange")?;
    let (status, _, body) = loader
        .send(sender, form_request("/v1/token", &exchange)?)
        .await?;
    Ok((status, body))
}

/// What a stretch of load did: latencies of the answered (200) requests,
/// requests that failed, and how long it took.
pub(crate) struct Run {
    pub(crate) latencies: Latencies,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
}

/// One connection sending `work` until `until`, every `pace` if given.
async fn connection_loop(
    loader: Loader,
    work: Work,
    until: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<(Latencies, u64)> {
    let mut sender = loader.connect().await?;
    let mut refresh = match work {
        Work::Refresh => loader.tokens().await?.1,
        _ => String::new(),
    };
    let mut latencies = Latencies::new()?;
    let mut errors = 0;
    let mut next = Instant::now();
    while Instant::now() < until {
        if let Some(pace) = pace {
            next += pace;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        let started = Instant::now();
        let outcome = perform(&loader, &mut sender, &work, &refresh).await;
        let took = started.elapsed();
        match outcome {
            Ok((200, body)) => {
                if matches!(work, Work::Refresh) {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if let Some(next_refresh) =
                        value.get("refresh_token").unwrap_or(&Value::Null).as_str()
                    {
                        refresh = next_refresh.to_owned();
                    }
                }
                latencies.record(took);
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                sender = loader.connect().await?;
            }
        }
    }
    Ok((latencies, errors))
}

/// `connections` connections sending `work` as fast as answered.
pub(crate) async fn closed_loop(
    loader: &Loader,
    work: Work,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    drive(loader, work, connections, duration, None).await
}

/// `connections` connections sending `work` for `duration`, each every
/// `pace` if given, else as fast as answered.
pub(crate) async fn drive(
    loader: &Loader,
    work: Work,
    connections: usize,
    duration: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection_loop(loader.clone(), work.clone(), until, pace)))
        .collect();
    let mut latencies = Latencies::new()?;
    let mut errors = 0;
    for task in tasks {
        let (done, failed) = task.await.context("load task")??;
        latencies.add(&done)?;
        errors += failed;
    }
    Ok(Run {
        latencies,
        errors,
        elapsed: started.elapsed(),
    })
}

/// A short, unmeasured run that fills caches and connection pools.
pub(crate) async fn warm_up(
    loader: &Loader,
    work: &Work,
    connections: usize,
) -> anyhow::Result<()> {
    drive(
        loader,
        work.clone(),
        connections,
        Duration::from_millis(300),
        None,
    )
    .await?;
    Ok(())
}
