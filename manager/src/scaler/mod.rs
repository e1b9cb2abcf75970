//! Scaling backends. The manager decides how many workers of each kind it wants; a [`Scaler`]
//! makes that so on one platform: child processes on this machine, Docker containers, or ECS
//! Fargate tasks.

pub mod docker;
pub mod ecs;
mod ecs_stopped;
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

/// The worker images of a container backend: `<prefix><service>:<tag>`. The `docker` and
/// `ecs` backends take the same two settings under flags of their own (`--docker-image-*`,
/// `--ecs-image-*`); this is the naming and checking they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerImage<'a> {
    /// Registry and repository path up to the service name, e.g. `redline/` or
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com/redline/`.
    pub prefix: &'a str,
    pub tag: &'a str,
}

/// Flag names a backend gives [`WorkerImage`]'s two settings, for its error messages.
#[derive(Debug, Clone, Copy)]
pub struct WorkerImageFlags {
    pub backend: &'static str,
    pub prefix: &'static str,
    pub tag: &'static str,
}

impl WorkerImage<'_> {
    /// The image workers of `kind` run.
    pub fn of(&self, kind: WorkerKind) -> String {
        format!("{}{}:{}", self.prefix.trim(), kind.service(), self.tag)
    }

    /// Checks prefix and tag; errors name `flags`.
    pub fn validate(&self, flags: WorkerImageFlags) -> Result<(), ScalerError> {
        let error = |field, problem: String| ScalerError::config(flags.backend, field, problem);
        if self.prefix.trim().chars().any(char::is_whitespace) {
            return Err(error(
                flags.prefix,
                format!("`{}` contains whitespace", self.prefix),
            ));
        }
        // Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
        let mut chars = self.tag.chars();
        let tag_ok = self.tag.len() <= 128
            && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !tag_ok {
            return Err(error(
                flags.tag,
                format!(
                    "`{}` is not an image tag (letters, digits, `_`, `.` and `-`, not starting \
                     with `.` or `-`, at most 128)",
                    self.tag
                ),
            ));
        }
        Ok(())
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

impl ScalerError {
    /// `field` (a flag of `backend`) cannot work.
    pub fn config(backend: &'static str, field: &'static str, problem: impl Into<String>) -> Self {
        ScalerError::Config {
            backend,
            field,
            problem: problem.into(),
        }
    }

    /// A call to `backend`'s platform failed.
    pub fn backend(
        backend: &'static str,
        operation: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> Self {
        ScalerError::Backend {
            backend,
            operation: operation.into(),
            message: message.to_string(),
        }
    }
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

/// What the backends' unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use clap::{Args, Parser};

    use super::ScalerError;

    #[derive(Parser)]
    struct Flags<T: Args> {
        #[command(flatten)]
        flags: T,
    }

    /// One backend's flags parsed from `args` (without the program name).
    pub fn parse<T: Args>(args: &[&str]) -> T {
        let command_line = std::iter::once("manager").chain(args.iter().copied());
        Flags::<T>::try_parse_from(command_line).unwrap().flags
    }

    /// The flag a configuration error names.
    pub fn config_field(error: ScalerError) -> &'static str {
        match error {
            ScalerError::Config { field, .. } => field,
            other => panic!("expected a config error, got {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::config_field;
    use super::*;

    const FLAGS: WorkerImageFlags = WorkerImageFlags {
        backend: "docker",
        prefix: "--docker-image-prefix",
        tag: "--docker-image-tag",
    };

    fn field_of(image: WorkerImage) -> &'static str {
        config_field(image.validate(FLAGS).unwrap_err())
    }

    #[test]
    fn worker_images_are_named_and_checked() {
        let image = WorkerImage {
            prefix: "registry.example:5000/redline/",
            tag: "v1.2_rc-3",
        };
        image.validate(FLAGS).unwrap();
        assert_eq!(
            image.of(WorkerKind::Liquidator),
            "registry.example:5000/redline/liquidator:v1.2_rc-3"
        );
        let bad_prefix = WorkerImage {
            prefix: "my repo/",
            tag: "latest",
        };
        assert_eq!(field_of(bad_prefix), "--docker-image-prefix");
        for tag in ["", "v1 2", ".hidden", "-x", &"a".repeat(129)] {
            let image = WorkerImage {
                prefix: "redline/",
                tag,
            };
            assert_eq!(field_of(image), "--docker-image-tag", "{tag:?}");
        }
    }
}
