//! The sending task of one target: deliver each queued notification with a timeout per attempt,
//! retry what may succeed later with doubling backoff, give up (logged and counted) otherwise.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use url::Url;

use super::event::{csv_header_line, csv_row, truncate};
use super::{Delivery, NotifyEvent, Outgoing, Shared, Target};

/// Discord refuses messages over 2,000 characters, Telegram over 4,096; Slack truncates long
/// ones anyway.
const DISCORD_MAX_CHARS: usize = 2_000;
const TELEGRAM_MAX_CHARS: usize = 4_096;
const SLACK_MAX_CHARS: usize = 4_000;
/// Longest wait between two attempts, whatever the backoff or a `Retry-After` asks.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How much of an error answer's body goes into the log line.
const ERROR_BODY_CHARS: usize = 200;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Wait after failed attempt `attempt` (1-based): backoff × 2^(attempt-1), at least what the
    /// target asked for, at most [`MAX_BACKOFF`].
    fn wait(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let doubled = self.backoff.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.max(asked.unwrap_or_default()).min(MAX_BACKOFF)
    }
}

pub(crate) struct Sender {
    pub target: Target,
    pub http: reqwest::Client,
    pub telegram_api: Url,
    pub policy: RetryPolicy,
}

enum Failure {
    /// May succeed later (timeout, connection refused, HTTP 429/5xx); `after` is what the
    /// target asked to wait.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will not succeed (HTTP 4xx: bad webhook, revoked token).
    Permanent(String),
}

pub(crate) async fn run(sender: Sender, mut queue: mpsc::Receiver<Outgoing>, shared: Arc<Shared>) {
    let kind = sender.target.kind();
    while let Some(outgoing) = queue.recv().await {
        match sender.deliver(&outgoing, &shared).await {
            Ok(()) => shared.finished(kind, Delivery::Sent),
            Err(reason) => {
                shared.finished(kind, Delivery::Failed);
                tracing::warn!(
                    notify_target = %sender.target,
                    error = %reason,
                    "notification not delivered"
                );
            }
        }
    }
}

impl Sender {
    async fn deliver(&self, outgoing: &Outgoing, shared: &Shared) -> Result<(), String> {
        let attempts = self.policy.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            match self.attempt(outgoing).await {
                Ok(()) => return Ok(()),
                Err(Failure::Permanent(reason)) => return Err(reason),
                Err(Failure::Retry { reason, after }) => {
                    if attempt >= attempts {
                        return Err(format!("{reason} (after {attempts} attempts)"));
                    }
                    let wait = self.policy.wait(attempt, after);
                    tracing::debug!(
                        notify_target = %self.target,
                        error = %reason,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "notification attempt failed; retrying"
                    );
                    shared.retried(self.target.kind());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, outgoing: &Outgoing) -> Result<(), Failure> {
        let event = &*outgoing.event;
        match &self.target {
            Target::Discord { webhook } => {
                let body = json!({ "content": truncate(&event.text(), DISCORD_MAX_CHARS) });
                self.post(webhook.clone(), &body).await
            }
            Target::Slack { webhook } => {
                let body = json!({ "text": truncate(&event.text(), SLACK_MAX_CHARS) });
                self.post(webhook.clone(), &body).await
            }
            Target::Telegram { chat_id, bot_token } => {
                let base = self.telegram_api.as_str().trim_end_matches('/');
                // The token was checked to hold only URL-safe characters; still, an error here
                // must not quote the URL.
                let url =
                    Url::parse(&format!("{base}/bot{bot_token}/sendMessage")).map_err(|_| {
                        Failure::Permanent("cannot build the Bot API URL for this token".into())
                    })?;
                let body = json!({
                    "chat_id": chat_id,
                    "text": truncate(&event.text(), TELEGRAM_MAX_CHARS),
                    "disable_web_page_preview": true,
                });
                self.post(url, &body).await
            }
            Target::CsvFile { path } => match event {
                NotifyEvent::LiquidationAttempt(attempt) => {
                    append_csv(path, csv_row(attempt, outgoing.at_ms)).await
                }
                // Configuration refuses csvfile for errors; nothing to record.
                NotifyEvent::Error { .. } => Ok(()),
            },
        }
    }

    async fn post(&self, url: Url, body: &serde_json::Value) -> Result<(), Failure> {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            // reqwest quotes the URL in its errors, and the URL is the secret.
            .map_err(|e| Failure::Retry {
                reason: e.without_url().to_string(),
                after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(|secs| Duration::from_secs_f64(secs.min(MAX_BACKOFF.as_secs_f64())));
        let body = response.text().await.unwrap_or_default();
        let reason = format!("HTTP {status}: {}", truncate(body.trim(), ERROR_BODY_CHARS));
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Err(Failure::Retry { reason, after })
        } else {
            Err(Failure::Permanent(reason))
        }
    }
}

/// Appends one row, writing the header first when the file is new or empty. One `write` call
/// in append mode, so concurrent writers do not interleave within a row.
async fn append_csv(path: &Path, row: String) -> Result<(), Failure> {
    let path = path.to_path_buf();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut data = String::new();
        if file.metadata()?.len() == 0 {
            data.push_str(&csv_header_line());
        }
        data.push_str(&row);
        file.write_all(data.as_bytes())
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        // A full disk or a permission fixed by the operator may clear up.
        Ok(Err(e)) => Err(Failure::Retry {
            reason: format!("writing the CSV file: {e}"),
            after: None,
        }),
        Err(e) => Err(Failure::Permanent(format!("CSV writer task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            retries: 5,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(policy.wait(1, None), Duration::from_millis(100));
        assert_eq!(policy.wait(3, None), Duration::from_millis(400));
        assert_eq!(
            policy.wait(2, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(policy.wait(40, None), MAX_BACKOFF);
        assert_eq!(policy.wait(1, Some(Duration::from_secs(999))), MAX_BACKOFF);
    }
}
