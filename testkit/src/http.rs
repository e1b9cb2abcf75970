//! Plain HTTP/1.1 on loopback for tests: a webhook receiver standing in for Discord, Slack and
//! Telegram that records every request, and a one-shot `GET`.
//!
//! Both speak just enough HTTP by hand (one request per connection, `Content-Length` bodies) so
//! that the test kit needs no HTTP stack, and what a service sends is read as bytes on the wire.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
}

/// An HTTP status to answer with, and a `Retry-After` header value.
pub type ScriptedAnswer = (u16, Option<&'static str>);

#[derive(Default)]
struct ReceiverState {
    requests: Mutex<Vec<Recorded>>,
    /// Answers to give on a path before the default 200, in order.
    script: Mutex<HashMap<String, VecDeque<ScriptedAnswer>>>,
}

/// A webhook receiver on 127.0.0.1:0: answers 200 (`{"ok":true}`) to every request and records
/// its path and JSON body. Paths can be scripted to answer other statuses first; paths under
/// `/slow` answer only after 30 s, longer than any notification timeout.
pub struct WebhookReceiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> anyhow::Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the webhook receiver")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ReceiverState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, shared.clone()));
            }
        });
        Ok(WebhookReceiver { addr, state, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests to `path` with `answers`, in order, then 200 again.
    pub fn script(&self, path: &str, answers: &[ScriptedAnswer]) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(path.to_string(), answers.iter().copied().collect());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The string `field` of each JSON body posted to `path` (`content` for Discord, `text` for
    /// Slack and Telegram).
    pub fn texts_to(&self, path: &str, field: &str) -> Vec<String> {
        self.requests_to(path)
            .iter()
            .map(|r| r.body[field].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, state: Arc<ReceiverState>) {
    let Some((head, body)) = read_request(&mut stream).await else {
        return;
    };
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        path: path.clone(),
        body,
    });
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let response = match scripted {
        Some((status, retry_after)) => {
            let retry_after = retry_after
                .map(|secs| format!("Retry-After: {secs}\r\n"))
                .unwrap_or_default();
            format!(
                "HTTP/1.1 {status} Scripted\r\n{retry_after}Content-Length: 8\r\n\
                 Connection: close\r\n\r\nscripted"
            )
        }
        None => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\
                 Connection: close\r\n\r\n{\"ok\":true}"
            .to_string(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
}

/// The head (request line and headers) and the body of one request: headers, then as many body
/// bytes as `Content-Length` says. `None` when the client closes first.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let body = &data[end + 4..];
        if body.len() >= length {
            return Some((head, body[..length].to_vec()));
        }
    }
}

/// `GET path` on `addr` (`host:port`): the status code and the body. Gives up after 5 s to
/// connect and 10 s to read, so a hung server fails the test instead of hanging it.
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .context("read timed out")??;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The body of [`http_get`] as JSON, whatever the status (health endpoints answer their JSON
/// with 503 too).
pub async fn http_get_json(addr: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = http_get(addr, path).await?;
    serde_json::from_str(&body).with_context(|| format!("GET {path} ({status}): {body}"))
}
