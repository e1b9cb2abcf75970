//! The external strategy model, in the style of MakerDAO's auction-keeper: `--model CMD` runs a
//! child process (`sh -c CMD`) that gets one JSON line per [`Opportunity`] on its stdin and
//! answers one JSON line, `{"go":true,"max_repay":"123"}` (`max_repay` optional).
//!
//! A model that hangs, answers garbage or exits never makes the liquidator send: that
//! opportunity is declined with a logged reason, and the child is killed and started again for
//! the next one. The child's stderr goes to the logs, tagged with the model's name.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::strategy::{Decision, Opportunity, Strategy};

/// The model's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// External strategy model: a shell command (run with `sh -c`) that reads one JSON
    /// opportunity per line on stdin and answers one JSON line `{"go":bool,"max_repay":"…"}`.
    /// Unset: every profitable plan is sent.
    #[arg(long = "model", env = "LIQUIDATOR_MODEL", value_name = "CMD")]
    pub command: Option<String>,
    /// How long the model may take to answer one opportunity before it is declined and the
    /// model restarted, in milliseconds.
    #[arg(
        long = "model-timeout-ms",
        env = "LIQUIDATOR_MODEL_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub timeout_ms: u64,
}

impl ModelArgs {
    /// The model to run, if any; errors name the flag.
    pub fn validate(&self) -> Result<Option<ModelStrategy>, ModelError> {
        let Some(command) = &self.command else {
            return Ok(None);
        };
        if command.trim().is_empty() {
            return Err(ModelError::Config("--model: the command is empty".into()));
        }
        if self.timeout_ms == 0 {
            return Err(ModelError::Config(
                "--model-timeout-ms: must be at least 1".into(),
            ));
        }
        Ok(Some(ModelStrategy::new(
            command.clone(),
            Duration::from_millis(self.timeout_ms),
        )))
    }
}

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("{0}")]
    Config(String),
    #[error("cannot start the model: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot write the opportunity to the model: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot read the model's answer: {0}")]
    Read(#[source] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the model exited without answering")]
    Exited,
    #[error(
        "the model's answer `{line}` is not {{\"go\":bool,\"max_repay\":\"amount\"}}: {source}"
    )]
    Garbage {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot serialise the opportunity: {0}")]
    Serialise(#[source] serde_json::Error),
}

struct ModelProcess {
    // Held so the child is killed when the process is dropped (kill_on_drop).
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// A [`Strategy`] backed by an external model process.
pub struct ModelStrategy {
    name: String,
    command: String,
    timeout: Duration,
    process: Mutex<Option<ModelProcess>>,
    starts: AtomicU64,
}

impl std::fmt::Debug for ModelStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelStrategy")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("starts", &self.starts())
            .finish_non_exhaustive()
    }
}

impl ModelStrategy {
    /// The child is started lazily, on the first opportunity.
    pub fn new(command: impl Into<String>, timeout: Duration) -> Self {
        let command = command.into();
        // The command itself names the model in logs (shortened: it may carry long arguments).
        let name = command.trim().chars().take(80).collect();
        ModelStrategy {
            name,
            command,
            timeout,
            process: Mutex::new(None),
            starts: AtomicU64::new(0),
        }
    }

    /// The name the model's log lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times the child has been started (restarts + 1, once it ran).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    fn spawn(&self) -> Result<ModelProcess, ModelError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(ModelError::Spawn)?;
        let stdin = child.stdin.take().ok_or(ModelError::Exited)?;
        let stdout = child.stdout.take().ok_or(ModelError::Exited)?;
        if let Some(stderr) = child.stderr.take() {
            let name = self.name.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(model = %name, "{line}");
                }
            });
        }
        let starts = self.starts.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(model = %self.name, pid = ?child.id(), starts, "model started");
        Ok(ModelProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// Sends one opportunity and reads the answer; any failure leaves the process to be killed.
    async fn ask(
        &self,
        slot: &mut Option<ModelProcess>,
        opportunity: &Opportunity,
    ) -> Result<Decision, ModelError> {
        // A child that exited since the last answer is replaced before it is asked.
        if let Some(process) = slot.as_mut() {
            if !matches!(process.child.try_wait(), Ok(None)) {
                tracing::warn!(model = %self.name, "model had exited; restarting it");
                *slot = None;
            }
        }
        if slot.is_none() {
            *slot = Some(self.spawn()?);
        }
        let process = slot.as_mut().ok_or(ModelError::Exited)?;
        let mut line = serde_json::to_string(opportunity).map_err(ModelError::Serialise)?;
        line.push('\n');
        let exchange = async {
            process
                .stdin
                .write_all(line.as_bytes())
                .await
                .map_err(ModelError::Write)?;
            process.stdin.flush().await.map_err(ModelError::Write)?;
            process
                .stdout
                .next_line()
                .await
                .map_err(ModelError::Read)?
                .ok_or(ModelError::Exited)
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => return Err(ModelError::Timeout(self.timeout)),
            // A child that exits before reading its stdin breaks the pipe: say it exited.
            Ok(Err(ModelError::Write(error))) => {
                let exited =
                    tokio::time::timeout(Duration::from_millis(500), process.child.wait()).await;
                return Err(match exited {
                    Ok(Ok(_)) => ModelError::Exited,
                    _ => ModelError::Write(error),
                });
            }
            Ok(answer) => answer?,
        };
        serde_json::from_str::<Decision>(answer.trim()).map_err(|source| ModelError::Garbage {
            line: answer.chars().take(200).collect(),
            source,
        })
    }
}

impl Strategy for ModelStrategy {
    fn decide<'a>(&'a self, opportunity: &'a Opportunity) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            // One question at a time: answers are matched to opportunities by order.
            let mut slot = self.process.lock().await;
            match self.ask(&mut slot, opportunity).await {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::warn!(
                        model = %self.name,
                        account = %opportunity.account,
                        reason = %error,
                        "model failed; not liquidating this account, restarting the model"
                    );
                    // Dropping the process kills it (kill_on_drop); the next opportunity starts
                    // a fresh one.
                    if let Some(mut process) = slot.take() {
                        let _ = process.child.start_kill();
                    }
                    Decision::decline(format!("model {}: {error}", self.name))
                }
            }
        })
    }
}
