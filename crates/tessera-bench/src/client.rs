//! A minimal HTTP/1.1 client for loopback load: one connection per task,
//! requests sent one after another on it, bodies read whole.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::Value;

/// The password of the user every scenario signs in as.
pub(crate) const PASSWORD: &str = "bench-password-correct-horse";

/// A minimal HTTP/1.1 client for loopback load.
#[derive(Clone)]
pub(crate) struct Loader {
    addr: SocketAddr,
}

pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Loader {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    pub(crate) async fn connect(&self) -> anyhow::Result<Sender> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .context("connecting")?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    pub(crate) async fn send(
        &self,
        sender: &mut Sender,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        sender.ready().await.context("connection not ready")?;
        let response = sender
            .send_request(request)
            .await
            .context("request failed")?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the body")?
            .to_bytes();
        Ok((status, headers, body))
    }

    pub(crate) async fn once(
        &self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        let mut sender = self.connect().await?;
        self.send(&mut sender, request).await
    }

    pub(crate) async fn json_post(&self, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, _, body) = self.once(json_request(path, body)?).await?;
        if !(200..300).contains(&status) {
            bail!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub(crate) async fn cookie_sign_in(&self) -> anyhow::Result<String> {
        let body = format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#);
        let (status, headers, _) = self.once(json_request("/v1/session", &body)?).await?;
        if status != 200 {
            bail!("sign-in answered {status}");
        }
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("no cookie")?;
        Ok(cookie.to_owned())
    }

    pub(crate) async fn tokens(&self) -> anyhow::Result<(String, String)> {
        let body = format!("grant_type=password&username=bench&password={PASSWORD}");
        let (status, _, body) = self.once(form_request("/v1/token", &body)?).await?;
        if status != 200 {
            bail!("password grant answered {status}");
        }
        let value: Value = serde_json::from_slice(&body).context("token response")?;
        let access = value
            .get("access_token")
            .unwrap_or(&Value::Null)
            .as_str()
            .context("access_token")?
            .to_owned();
        let refresh = value
            .get("refresh_token")
            .unwrap_or(&Value::Null)
            .as_str()
            .context("refresh_token")?
            .to_owned();
        Ok((access, refresh))
    }

    pub(crate) async fn access_token(&self) -> anyhow::Result<String> {
        Ok(self.tokens().await?.0)
    }
}

pub(crate) fn json_request(path: &str, body: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .context("building a request")
}

pub(crate) fn form_request(path: &str, body: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .context("building a request")
}
