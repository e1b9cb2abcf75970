//! Scaling backends. The manager decides how many workers of each kind it wants; a [`Scaler`]
//! makes that so on one platform: child processes on this machine, Docker containers, or ECS
//! Fargate tasks.

pub mod docker;
pub mod ecs;
pub mod env;
pub mod process;

use std::future::Future;

use serde::{Deserialize, Serialize};

/// The kinds of worker the manager scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerKind {
    HealthChecker,
    Liquidator,
}

impl WorkerKind {
    pub const ALL: [WorkerKind; 2] = [WorkerKind::HealthChecker, WorkerKind::Liquidator];

    /// The service (binary, image `redline/<service>`, ECS service suffix) a worker runs.
    pub fn service(&self) -> &'static str {
        match self {
            WorkerKind::HealthChecker => "health-checker",
            WorkerKind::Liquidator => "liquidator",
        }
    }
}

impl std::fmt::Display for WorkerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.service())
    }
}

/// What a backend reports for one worker kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCount {
    /// Workers the backend has been asked for.
    pub desired: u32,
    /// Workers actually running (started and not exited).
    pub running: u32,
    /// Workers being started.
    pub pending: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScalerError {
    #[error("{backend}: {operation} failed: {message}")]
    Backend {
        backend: &'static str,
        operation: String,
        message: String,
    },
    #[error("{backend} configuration: {field}: {problem}")]
    Config {
        backend: &'static str,
        field: &'static str,
        problem: String,
    },
}

/// One platform that runs workers. Implementations are idempotent: `scale_to(kind, n)` twice is
/// the same as once, and a manager restarted over a running fleet adopts it via `observe`.
pub trait Scaler: Send + Sync {
    /// `process`, `docker` or `ecs`.
    fn backend(&self) -> &'static str;

    /// The current count of `kind` workers, as the platform sees it.
    fn observe(
        &self,
        kind: WorkerKind,
    ) -> impl Future<Output = Result<WorkerCount, ScalerError>> + Send;

    /// Asks for exactly `desired` workers of `kind`.
    fn scale_to(
        &self,
        kind: WorkerKind,
        desired: u32,
    ) -> impl Future<Output = Result<(), ScalerError>> + Send;

    /// Stops every worker this scaler started (the manager's Ctrl-C path for local backends;
    /// cloud backends may leave their services running).
    fn shutdown(&self) -> impl Future<Output = Result<(), ScalerError>> + Send;
}
