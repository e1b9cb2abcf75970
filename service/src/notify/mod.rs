//! Operator notifications of liquidations and errors, configured as in mango's liquidator:
//! `--notify-liquidations`, `--notify-successful-liquidations`, `--notify-failed-liquidations`
//! and `--notify-errors`, each repeatable, each taking a target `discord:WEBHOOK_URL`,
//! `slack:WEBHOOK_URL`, `telegram:CHAT_ID@BOT_TOKEN` or `csvfile:PATH`.
//!
//! Sending never holds a liquidation back: [`Notifier::notify`] only puts the event on a bounded
//! queue per target and returns. A task per target delivers it with a timeout per attempt and
//! retries with doubling backoff; a target that is slow or dead only fills its own queue, after
//! which its new notifications are dropped. Every delivery, failure and drop is counted (see
//! [`Notifier::stats`] and [`Notifier::register_metrics`]) and failures are logged.
//!
//! Webhook URLs and bot tokens are credentials: they appear redacted in every error, log line
//! and `Debug` output (`discord:https://discord.com/***`, `telegram:-100123@***`).
//!
//! ```no_run
//! use clap::Parser;
//! use redline_service::notify::{NotifyArgs, NotifyEvent, Notifier};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     notify: NotifyArgs,
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let cli = Cli::parse();
//! let notifier = cli.notify.start()?; // validates every target, errors name the flag
//! notifier
//!     .notify(&NotifyEvent::Error {
//!         service: "liquidator".into(),
//!         message: "wallet balance below the fee reserve".into(),
//!     })
//!     .await;
//! # Ok(())
//! # }
//! ```

mod event;
mod target;
mod worker;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;
use url::Url;

use crate::config::ConfigError;

pub use event::{LiquidationAttempt, LiquidationOutcome, NotifyEvent};
pub use target::{Target, TargetError, TargetKind};

const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_BACKOFF_MS: u64 = 1_000;
const DEFAULT_QUEUE_SIZE: usize = 256;

/// Notification flags; flatten them into a service's arguments.
///
/// A target flag may be repeated, and its env twin takes a comma-separated list. Environment
/// values are hidden from `--help`, since targets carry credentials.
#[derive(Clone, Args)]
pub struct NotifyArgs {
    /// Report every liquidation attempt to TARGET: `discord:WEBHOOK_URL`, `slack:WEBHOOK_URL`,
    /// `telegram:CHAT_ID@BOT_TOKEN` or `csvfile:PATH`. Repeat for several targets.
    #[arg(
        long,
        env = "NOTIFY_LIQUIDATIONS",
        value_name = "TARGET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_liquidations: Vec<String>,
    /// Report successful liquidations to TARGET (same forms as --notify-liquidations).
    #[arg(
        long,
        env = "NOTIFY_SUCCESSFUL_LIQUIDATIONS",
        value_name = "TARGET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_successful_liquidations: Vec<String>,
    /// Report failed liquidations to TARGET (same forms as --notify-liquidations).
    #[arg(
        long,
        env = "NOTIFY_FAILED_LIQUIDATIONS",
        value_name = "TARGET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_failed_liquidations: Vec<String>,
    /// Report service errors to TARGET: `discord:`, `slack:` or `telegram:` (a CSV file holds
    /// liquidations only).
    #[arg(
        long,
        env = "NOTIFY_ERRORS",
        value_name = "TARGET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify_errors: Vec<String>,
    /// Base URL of the Telegram Bot API (to go through a proxy).
    #[arg(long, env = "NOTIFY_TELEGRAM_API", default_value = DEFAULT_TELEGRAM_API)]
    pub notify_telegram_api: String,
    /// Time limit of one delivery attempt, in milliseconds.
    #[arg(long, env = "NOTIFY_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub notify_timeout_ms: u64,
    /// Retries of a failed delivery (timeouts, connection errors, HTTP 429 and 5xx) before the
    /// notification is given up.
    #[arg(long, env = "NOTIFY_RETRIES", default_value_t = DEFAULT_RETRIES)]
    pub notify_retries: u32,
    /// Wait before the first retry, in milliseconds; it doubles with each retry (up to 30 s).
    #[arg(long, env = "NOTIFY_BACKOFF_MS", default_value_t = DEFAULT_BACKOFF_MS)]
    pub notify_backoff_ms: u64,
    /// Notifications a target may have waiting; beyond that its new ones are dropped (counted),
    /// so a dead webhook never holds memory or liquidations back.
    #[arg(long, env = "NOTIFY_QUEUE_SIZE", default_value_t = DEFAULT_QUEUE_SIZE)]
    pub notify_queue_size: usize,
}

impl Default for NotifyArgs {
    /// No targets, every other flag at its default.
    fn default() -> Self {
        NotifyArgs {
            notify_liquidations: Vec::new(),
            notify_successful_liquidations: Vec::new(),
            notify_failed_liquidations: Vec::new(),
            notify_errors: Vec::new(),
            notify_telegram_api: DEFAULT_TELEGRAM_API.into(),
            notify_timeout_ms: DEFAULT_TIMEOUT_MS,
            notify_retries: DEFAULT_RETRIES,
            notify_backoff_ms: DEFAULT_BACKOFF_MS,
            notify_queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
}

impl fmt::Debug for NotifyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn shown(raw: &[String]) -> Vec<String> {
            raw.iter()
                .map(|r| match Target::parse(r) {
                    Ok(target) => target.redacted(),
                    Err(error) => error.shown,
                })
                .collect()
        }
        f.debug_struct("NotifyArgs")
            .field("notify_liquidations", &shown(&self.notify_liquidations))
            .field(
                "notify_successful_liquidations",
                &shown(&self.notify_successful_liquidations),
            )
            .field(
                "notify_failed_liquidations",
                &shown(&self.notify_failed_liquidations),
            )
            .field("notify_errors", &shown(&self.notify_errors))
            .field("notify_telegram_api", &self.notify_telegram_api)
            .field("notify_timeout_ms", &self.notify_timeout_ms)
            .field("notify_retries", &self.notify_retries)
            .field("notify_backoff_ms", &self.notify_backoff_ms)
            .field("notify_queue_size", &self.notify_queue_size)
            .finish()
    }
}

/// Which events a target receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subscriptions {
    pub liquidations: bool,
    pub successful_liquidations: bool,
    pub failed_liquidations: bool,
    pub errors: bool,
}

impl Subscriptions {
    pub fn wants(&self, event: &NotifyEvent) -> bool {
        match event {
            NotifyEvent::LiquidationAttempt(attempt) => {
                self.liquidations
                    || match attempt.outcome {
                        LiquidationOutcome::Succeeded => self.successful_liquidations,
                        LiquidationOutcome::Failed => self.failed_liquidations,
                    }
            }
            NotifyEvent::Error { .. } => self.errors,
        }
    }
}

/// Validated notification settings: each distinct target once, with everything it subscribed to.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub routes: Vec<(Target, Subscriptions)>,
    pub telegram_api: Url,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub queue_size: usize,
}

fn flag_error(flag: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag,
        problem: problem.into(),
    }
}

impl NotifyArgs {
    /// Parses and validates every target and setting. Errors name the flag and show the target
    /// redacted.
    pub fn config(&self) -> Result<NotifyConfig, ConfigError> {
        let mut routes: Vec<(Target, Subscriptions)> = Vec::new();
        let lists: [(&'static str, &[String]); 4] = [
            ("--notify-liquidations", &self.notify_liquidations),
            (
                "--notify-successful-liquidations",
                &self.notify_successful_liquidations,
            ),
            (
                "--notify-failed-liquidations",
                &self.notify_failed_liquidations,
            ),
            ("--notify-errors", &self.notify_errors),
        ];
        for (flag, raws) in lists {
            // An empty entry comes from a stray comma in an env list; it names no target.
            for raw in raws.iter().filter(|r| !r.trim().is_empty()) {
                let target = Target::parse(raw).map_err(|e| flag_error(flag, e.to_string()))?;
                if flag == "--notify-errors" && target.kind() == TargetKind::CsvFile {
                    return Err(flag_error(
                        flag,
                        format!(
                            "target `{target}`: a CSV file records liquidations only; send \
                             errors to discord:, slack: or telegram:"
                        ),
                    ));
                }
                let index = match routes.iter().position(|(t, _)| *t == target) {
                    Some(index) => index,
                    None => {
                        routes.push((target, Subscriptions::default()));
                        routes.len() - 1
                    }
                };
                let subscriptions = &mut routes[index].1;
                match flag {
                    "--notify-liquidations" => subscriptions.liquidations = true,
                    "--notify-successful-liquidations" => {
                        subscriptions.successful_liquidations = true
                    }
                    "--notify-failed-liquidations" => subscriptions.failed_liquidations = true,
                    _ => subscriptions.errors = true,
                }
            }
        }
        let telegram_api = Url::parse(&self.notify_telegram_api)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                flag_error(
                    "--notify-telegram-api",
                    format!(
                        "`{}` is not an http(s) URL",
                        self.notify_telegram_api.trim()
                    ),
                )
            })?;
        if self.notify_timeout_ms == 0 {
            return Err(flag_error("--notify-timeout-ms", "must be above 0"));
        }
        if self.notify_queue_size == 0 {
            return Err(flag_error("--notify-queue-size", "must be above 0"));
        }
        Ok(NotifyConfig {
            routes,
            telegram_api,
            timeout: Duration::from_millis(self.notify_timeout_ms),
            retries: self.notify_retries,
            backoff: Duration::from_millis(self.notify_backoff_ms),
            queue_size: self.notify_queue_size,
        })
    }

    /// The flags as the environment twins a worker started by the manager reads, so that
    /// `manager --notify-liquidations …` reaches the liquidators it starts. Empty lists are
    /// left out (the worker's own environment then applies); without any target, nothing is.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let any_target = [
            &self.notify_liquidations,
            &self.notify_successful_liquidations,
            &self.notify_failed_liquidations,
            &self.notify_errors,
        ]
        .iter()
        .any(|targets| !targets.is_empty());
        if !any_target {
            return env;
        }
        for (key, targets) in [
            ("NOTIFY_LIQUIDATIONS", &self.notify_liquidations),
            (
                "NOTIFY_SUCCESSFUL_LIQUIDATIONS",
                &self.notify_successful_liquidations,
            ),
            (
                "NOTIFY_FAILED_LIQUIDATIONS",
                &self.notify_failed_liquidations,
            ),
            ("NOTIFY_ERRORS", &self.notify_errors),
        ] {
            if !targets.is_empty() {
                env.push((key.to_string(), targets.join(",")));
            }
        }
        env.push((
            "NOTIFY_TELEGRAM_API".into(),
            self.notify_telegram_api.clone(),
        ));
        env.push((
            "NOTIFY_TIMEOUT_MS".into(),
            self.notify_timeout_ms.to_string(),
        ));
        env.push(("NOTIFY_RETRIES".into(), self.notify_retries.to_string()));
        env.push((
            "NOTIFY_BACKOFF_MS".into(),
            self.notify_backoff_ms.to_string(),
        ));
        env.push((
            "NOTIFY_QUEUE_SIZE".into(),
            self.notify_queue_size.to_string(),
        ));
        env
    }

    /// Validates the flags and starts a [`Notifier`] (see [`Notifier::start`]).
    pub fn start(&self) -> Result<Notifier, NotifyError> {
        Notifier::start(self.config()?)
    }
}

/// Why notifications could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("notifications are sent from tasks: start the notifier within a tokio runtime")]
    NoRuntime,
    #[error("building the notification HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Counts since the notifier started, summed over targets (a notification to two targets
/// counts twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyStats {
    /// Queued and not yet delivered or given up.
    pub pending: u64,
    pub sent: u64,
    /// Given up after the retries, or refused by the target (HTTP 4xx other than 429).
    pub failed: u64,
    /// Not queued because the target's queue was full.
    pub dropped: u64,
    /// Delivery attempts repeated after a retryable failure.
    pub retries: u64,
}

/// How one notification to one target ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delivery {
    Sent,
    Failed,
    Dropped,
}

/// Counters shared by the notifier handle and its sending tasks.
pub(crate) struct Shared {
    pending: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retried: AtomicU64,
    /// `notifications_total{target, result}` with result `sent`, `failed` or `dropped`.
    results: IntCounterVec,
    /// `notification_retries_total{target}`.
    retries: IntCounterVec,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            pending: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            results: IntCounterVec::new(
                Opts::new(
                    "notifications_total",
                    "Notifications by target kind and result (sent, failed, dropped)",
                ),
                &["target", "result"],
            )
            .expect("static metric options are valid"),
            retries: IntCounterVec::new(
                Opts::new(
                    "notification_retries_total",
                    "Notification delivery attempts repeated after a retryable failure",
                ),
                &["target"],
            )
            .expect("static metric options are valid"),
        }
    }

    pub(crate) fn finished(&self, kind: TargetKind, result: Delivery) {
        let (counter, result) = match result {
            Delivery::Sent => (&self.sent, "sent"),
            Delivery::Failed => (&self.failed, "failed"),
            Delivery::Dropped => (&self.dropped, "dropped"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.results
            .with_label_values(&[kind.as_str(), result])
            .inc();
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn retried(&self, kind: TargetKind) {
        self.retried.fetch_add(1, Ordering::Relaxed);
        self.retries.with_label_values(&[kind.as_str()]).inc();
    }
}

/// A notification waiting for its target.
pub(crate) struct Outgoing {
    pub event: Arc<NotifyEvent>,
    /// When it was notified, in Unix milliseconds (the CSV timestamp).
    pub at_ms: u64,
}

struct Route {
    target: Target,
    subscriptions: Subscriptions,
    queue: mpsc::Sender<Outgoing>,
}

struct Inner {
    routes: Vec<Route>,
    shared: Arc<Shared>,
    /// When each error text was last sent by [`Notifier::error`].
    errors_sent: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// An error with the same text is sent again only after this long (an alarm that repeats
/// every 30 s must not flood the channel).
pub const ERROR_REPEAT_AFTER: Duration = Duration::from_secs(600);

/// Sends [`NotifyEvent`]s to the configured targets in the background. Cheap to clone; the
/// sending tasks finish what is queued and stop once every clone is dropped.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "targets",
                &self
                    .inner
                    .routes
                    .iter()
                    .map(|r| (r.target.redacted(), r.subscriptions))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Notifier {
    /// Starts one sending task per target on the current tokio runtime.
    pub fn start(config: NotifyConfig) -> Result<Notifier, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let shared = Arc::new(Shared::new());
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect would carry a webhook's secret path to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.without_url()))?;
        let policy = worker::RetryPolicy {
            retries: config.retries,
            backoff: config.backoff,
        };
        let routes = config
            .routes
            .into_iter()
            .map(|(target, subscriptions)| {
                let (queue, receiver) = mpsc::channel(config.queue_size);
                let sender = worker::Sender {
                    target: target.clone(),
                    http: http.clone(),
                    telegram_api: config.telegram_api.clone(),
                    policy,
                };
                runtime.spawn(worker::run(sender, receiver, shared.clone()));
                tracing::info!(notify_target = %target, ?subscriptions, "notifications enabled");
                Route {
                    target,
                    subscriptions,
                    queue,
                }
            })
            .collect();
        Ok(Notifier {
            inner: Arc::new(Inner {
                routes,
                shared,
                errors_sent: Default::default(),
            }),
        })
    }

    /// A notifier without targets: [`Notifier::notify`] does nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            inner: Arc::new(Inner {
                routes: Vec::new(),
                shared: Arc::new(Shared::new()),
                errors_sent: Default::default(),
            }),
        }
    }

    /// Whether any target is configured.
    pub fn is_enabled(&self) -> bool {
        !self.inner.routes.is_empty()
    }

    /// The configured targets (redacted when displayed) and what each receives.
    pub fn targets(&self) -> impl Iterator<Item = (&Target, Subscriptions)> + '_ {
        self.inner
            .routes
            .iter()
            .map(|r| (&r.target, r.subscriptions))
    }

    /// Queues `event` for every target that subscribed to it and returns at once: it never
    /// waits for a target. A target whose queue is full drops it (logged and counted).
    pub async fn notify(&self, event: &NotifyEvent) {
        let mut event_arc: Option<Arc<NotifyEvent>> = None;
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let shared = &self.inner.shared;
        for route in &self.inner.routes {
            if !route.subscriptions.wants(event) {
                continue;
            }
            let event = event_arc
                .get_or_insert_with(|| Arc::new(event.clone()))
                .clone();
            shared.pending.fetch_add(1, Ordering::AcqRel);
            if let Err(error) = route.queue.try_send(Outgoing { event, at_ms }) {
                shared.finished(route.target.kind(), Delivery::Dropped);
                let reason = match error {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "sender stopped",
                };
                tracing::warn!(notify_target = %route.target, reason, "notification dropped");
            }
        }
    }

    /// Reports a service error to the `--notify-errors` targets, unless the same `message` was
    /// reported less than [`ERROR_REPEAT_AFTER`] ago. Returns whether it was queued.
    pub async fn error(&self, service: &str, message: impl Into<String>) -> bool {
        let message = message.into();
        if !self.inner.routes.iter().any(|r| r.subscriptions.errors) {
            return false;
        }
        {
            let Ok(mut sent) = self.inner.errors_sent.lock() else {
                return false;
            };
            let now = std::time::Instant::now();
            if sent
                .get(&message)
                .is_some_and(|at| now.duration_since(*at) < ERROR_REPEAT_AFTER)
            {
                return false;
            }
            // Bounded: texts older than the window are forgotten.
            sent.retain(|_, at| now.duration_since(*at) < ERROR_REPEAT_AFTER);
            sent.insert(message.clone(), now);
        }
        self.notify(&NotifyEvent::Error {
            service: service.to_string(),
            message,
        })
        .await;
        true
    }

    /// What was sent, failed and dropped so far.
    pub fn stats(&self) -> NotifyStats {
        let shared = &self.inner.shared;
        NotifyStats {
            pending: shared.pending.load(Ordering::Acquire),
            sent: shared.sent.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            retries: shared.retried.load(Ordering::Relaxed),
        }
    }

    /// Registers `notifications_total{target,result}` and `notification_retries_total{target}`
    /// in a service's registry.
    pub fn register_metrics(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.inner.shared.results.clone()))?;
        registry.register(Box::new(self.inner.shared.retries.clone()))
    }

    /// Waits until every queued notification was delivered or given up, at most `timeout`
    /// (e.g. before a service exits). Returns whether the queues were drained.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.shared.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
