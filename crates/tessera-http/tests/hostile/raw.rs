//! Requests written byte by byte on a TCP socket: the HTTP client refuses
//! to send what these carry (bytes no client sends in methods, targets and
//! headers, targets too long to build). Answers are parsed with `httparse`.

use std::net::SocketAddr;

use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{ADMIN_TOKEN, INTROSPECTION_SECRET};
use crate::world::{Cred, LIMIT, World, clip, verify};

/// What a raw exchange came to.
pub enum Raw {
    /// The server closed (or reset) the connection without an answer.
    Closed,
    Answered {
        status: u16,
        ours: bool,
    },
}

/// `method path HTTP/1.1` with the loopback Host, `headers`, and `body`
/// framed by Content-Length; `Connection: close`, so the server closes
/// after answering.
pub fn raw_request(
    world: &World,
    method: &[u8],
    path: &[u8],
    headers: &[(Vec<u8>, Vec<u8>)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = [method, b" ", path, b" HTTP/1.1\r\nHost: "].concat();
    out.extend_from_slice(world.server.addr.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend([&name[..], b": ", value, b"\r\n"].concat());
    }
    let framing = format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(framing.as_bytes());
    out.extend_from_slice(body);
    out
}

/// The headers that carry `cred`.
pub fn raw_cred(world: &World, cred: Cred) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bearer = |t: &str| {
        vec![(
            b"Authorization".to_vec(),
            format!("Bearer {t}").into_bytes(),
        )]
    };
    match cred {
        Cred::Anon => vec![],
        Cred::Cookie => vec![
            (
                b"Cookie".to_vec(),
                format!("{}={}", world.cookie_name, world.cookie).into_bytes(),
            ),
            (b"X-CSRF-Token".to_vec(), world.csrf.clone().into_bytes()),
        ],
        Cred::Bearer => bearer(&world.access),
        Cred::Admin => bearer(ADMIN_TOKEN),
        Cred::Verifier => bearer(INTROSPECTION_SECRET),
    }
}

/// A parsed answer.
struct Answer {
    version: Option<u8>,
    status: u16,
    content_type: String,
    /// The router adds its security headers to everything it answers; a
    /// request the HTTP layer refused before routing (bad request line,
    /// bad header) gets a bare 4xx with no body to check.
    ours: bool,
    /// Empty for an event stream (it never ends).
    body: Vec<u8>,
}

/// The answer in `buf` once it is whole: the head, then the body by
/// Content-Length; an event stream's head is enough, and so is the head of
/// an answer that has no body (to HEAD, 204, 304); any other answer
/// ends when the server closes (`closed`: requests ask it to).
/// `Err` for bytes that are no HTTP answer, or one cut short.
fn parse(buf: &[u8], to_head: bool, closed: bool) -> Result<Option<Answer>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if !closed => return Ok(None),
        Ok(httparse::Status::Partial) => return Err("answer head cut short".into()),
        Err(e) => return Err(format!("no HTTP answer ({e})")),
    };
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let status = head.code.unwrap_or_default();
    let rest = &buf[head_len..];
    if (100..200).contains(&status) {
        // An interim answer: the final one follows.
        return parse(rest, to_head, closed);
    }
    let content_type = header("content-type").unwrap_or_default();
    let bodiless = to_head || matches!(status, 204 | 304);
    let body = if bodiless || content_type.starts_with("text/event-stream") {
        Some(Vec::new())
    } else if let Some(length) = header("content-length").and_then(|v| v.parse().ok()) {
        rest.get(..length).map(<[u8]>::to_vec)
    } else {
        closed.then(|| rest.to_vec())
    };
    match body {
        Some(body) => Ok(Some(Answer {
            version: head.version,
            status,
            ours: header("x-content-type-options").is_some(),
            content_type,
            body,
        })),
        None if closed => Err("answer body cut short".into()),
        None => Ok(None),
    }
}

/// Writes `request` on a fresh connection and reads the answer within
/// [`LIMIT`]; no 5xx, and an answer from the router passes [`verify`].
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], method: &[u8], path: &[u8]) -> Raw {
    let what = format!("raw request {}", clip(request, 600));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before taking the whole request.
        let _ = stream.write_all(request).await;
        let mut buf = Vec::new();
        loop {
            let closed = matches!(stream.read_buf(&mut buf).await, Ok(0) | Err(_));
            if closed && buf.is_empty() {
                return Ok(None);
            }
            if let Some(answer) = parse(&buf, method == b"HEAD", closed)? {
                return Ok(Some(answer));
            }
        }
    };
    let answer = tokio::time::timeout(LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within {LIMIT:?} (hang) for {what}"))
        .unwrap_or_else(|e: String| panic!("{e} for {what}"));
    let Some(answer) = answer else {
        return Raw::Closed;
    };
    let status = answer.status;
    assert_eq!(answer.version, Some(1), "not HTTP/1.1 for {what}");
    assert!(
        status < 500,
        "server error {status} {} for {what}",
        clip(&answer.body, 300)
    );
    if answer.ours && !answer.content_type.starts_with("text/event-stream") {
        let method = Method::from_bytes(method).unwrap_or(Method::GET);
        let path = String::from_utf8_lossy(path).into_owned();
        verify(
            &method,
            &path,
            status,
            &answer.content_type,
            &answer.body,
            &what,
        );
    }
    Raw::Answered {
        status,
        ours: answer.ours,
    }
}
