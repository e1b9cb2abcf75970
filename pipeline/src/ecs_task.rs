//! Which ECS task this process runs in, read from the task metadata endpoint (version 4) that
//! ECS gives every container on Fargate. A worker on ECS names itself after its task, so the
//! manager, which sees tasks stop through the ECS API, can name the worker that died and hand
//! its wallet slots to the replacement at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::Deserialize;

/// The variable ECS sets in every container of a task (Fargate platform 1.4 and later).
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The endpoint is local to the task (the agent answers in milliseconds); an answer slower
/// than this means it is not there. Asked once, when the worker first names itself.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The queue consumer name of the worker that runs as the task `task_arn`: `ecs-<task id>`.
pub fn consumer_name(task_arn: &str) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    format!("ecs-{id}")
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{METADATA_ENV}={uri} is not an http URL: {problem}")]
    Url { uri: String, problem: String },
    #[error("reading the task metadata at {url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the task metadata at {url} answered `{status}`")]
    Status { url: String, status: String },
    #[error("the task metadata at {url} has no TaskARN: {problem}")]
    Body { url: String, problem: String },
}

#[derive(Deserialize)]
struct TaskMetadata {
    #[serde(rename = "TaskARN")]
    task_arn: String,
}

/// The task's ARN, from `<metadata_uri>/task`.
pub fn task_arn(metadata_uri: &str) -> Result<String, MetadataError> {
    let url_error = |problem: String| MetadataError::Url {
        uri: metadata_uri.to_owned(),
        problem,
    };
    let url = url::Url::parse(&format!("{}/task", metadata_uri.trim_end_matches('/')))
        .map_err(|e| url_error(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(url_error(format!("scheme {}", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| url_error("no host".into()))?;
    let io_error = |source| MetadataError::Io {
        url: url.to_string(),
        source,
    };
    let address = url
        .socket_addrs(|| Some(80))
        .map_err(io_error)?
        .into_iter()
        .next()
        .ok_or_else(|| io_error(std::io::Error::other("the host has no address")))?;
    let (status, body) = get(address, host, url.path()).map_err(io_error)?;
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(MetadataError::Status {
            url: url.to_string(),
            status,
        });
    }
    serde_json::from_slice::<TaskMetadata>(&body)
        .map(|task| task.task_arn)
        .map_err(|e| MetadataError::Body {
            url: url.to_string(),
            problem: e.to_string(),
        })
}

/// One GET: the status line and the body.
fn get(address: SocketAddr, host: &str, path: &str) -> std::io::Result<(String, Vec<u8>)> {
    use std::io::{Error, ErrorKind};
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    // HTTP/1.0: the answer is never chunked and ends where the connection closes.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let end_of_head = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, "no end of the headers"))?;
    let head = String::from_utf8_lossy(&answer[..end_of_head]);
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, answer[end_of_head + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// Serves one request with `answer` and returns the request's first line.
    fn serve_once(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}/v4/0123-abcd", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let read = stream.read(&mut chunk).unwrap();
                assert!(read > 0, "the request ended before its headers did");
                request.extend_from_slice(&chunk[..read]);
            }
            stream.write_all(answer.as_bytes()).unwrap();
            let request = String::from_utf8_lossy(&request).to_string();
            request.lines().next().unwrap_or_default().to_owned()
        });
        (uri, server)
    }

    #[test]
    fn the_task_arn_comes_from_the_task_document() {
        // Shaped as AWS documents the v4 task response, trimmed.
        let (uri, server) = serve_once(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n\
             {\"Cluster\":\"arn:aws:ecs:us-west-2:111122223333:cluster/default\",\
             \"TaskARN\":\"arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c\",\
             \"Family\":\"redline-liquidator\",\"Revision\":\"3\",\"DesiredStatus\":\"RUNNING\"}",
        );
        let arn = task_arn(&uri).unwrap();
        assert_eq!(server.join().unwrap(), "GET /v4/0123-abcd/task HTTP/1.0");
        assert_eq!(
            arn,
            "arn:aws:ecs:us-west-2:111122223333:task/default/158d1c8083dd49d6b527399fd6414f5c"
        );
        assert_eq!(consumer_name(&arn), "ecs-158d1c8083dd49d6b527399fd6414f5c");
    }

    #[test]
    fn errors_name_the_endpoint_and_what_was_wrong() {
        let (uri, server) = serve_once("HTTP/1.0 404 Not Found\r\n\r\nnot found");
        let error = task_arn(&uri).unwrap_err().to_string();
        server.join().unwrap();
        assert!(error.contains("/v4/0123-abcd/task"), "{error}");
        assert!(error.contains("404 Not Found"), "{error}");

        let (uri, server) = serve_once("HTTP/1.0 200 OK\r\n\r\n{\"Cluster\":\"c\"}");
        let error = task_arn(&uri).unwrap_err().to_string();
        server.join().unwrap();
        assert!(error.contains("no TaskARN"), "{error}");

        let error = task_arn("https://169.254.170.2/v4/x")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(METADATA_ENV) && error.contains("https"),
            "{error}"
        );
    }
}
