//! The manager's command line: the flags every service shares, the manager's own, and each
//! backend's, in one clap command (every flag with its `env` twin).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use redline_pipeline::index::IndexArgs;
use redline_service::service::ServiceArgs;

use crate::autoscale::{PolicyError, PolicySettingNames, ScalingPolicy};
use crate::scaler::docker::DockerConfig;
use crate::scaler::ecs::EcsConfig;
use crate::scaler::WorkerKind;

/// Everything `manager` takes. The backends' structs give their arguments explicit ids
/// (`docker_*`, `ecs_*`), so fields of the same name (`env`, `image_tag`, the chain's and the
/// Docker backend's `manifest`) live side by side in one command.
#[derive(Debug, Parser)]
#[command(
    name = "manager",
    version,
    about = "Follows blocks, enforces the per-block deadline and scales the workers"
)]
pub struct Cli {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten, next_help_heading = "Manager")]
    pub manager: ManagerArgs,
    #[command(flatten, next_help_heading = "Docker backend")]
    pub docker: DockerConfig,
    #[command(flatten, next_help_heading = "ECS backend")]
    pub ecs: EcsConfig,
    /// Errors go to `--notify-errors`; all four target lists are also handed to the workers
    /// the manager starts (the liquidators notify their attempts).
    #[command(flatten, next_help_heading = "Notifications")]
    pub notify: redline_service::notify::NotifyArgs,
}

/// Where workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Child processes on this machine.
    Process,
    /// Containers on the local Docker engine.
    Docker,
    /// ECS Fargate services.
    Ecs,
}

impl BackendKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendKind::Process => "process",
            BackendKind::Docker => "docker",
            BackendKind::Ecs => "ecs",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ManagerArgs {
    /// Where workers run: `process` (children of the manager), `docker` or `ecs`.
    #[arg(long, env = "SCALER_BACKEND", value_enum, default_value = "process")]
    pub backend: BackendKind,
    /// Seconds without a new block before the manager raises the alarm (error log, metric
    /// `redline_manager_block_alarm`, `/health` status `alarm`), repeated every as many seconds.
    #[arg(long, env = "BLOCK_ALARM_SECS", default_value_t = 30)]
    pub block_alarm_secs: u64,
    /// Blocks a block's health checks may take: its work must be done before block
    /// `height + N` arrives.
    #[arg(long, env = "DEADLINE_BLOCKS", default_value_t = 1)]
    pub deadline_blocks: u32,
    /// How often the queues are sampled, in milliseconds (resolution of the lag figures and
    /// of the busy-time measurement).
    #[arg(long, env = "MANAGER_POLL_MS", default_value_t = 100)]
    pub poll_ms: u64,
    /// Approximate cap on the per-block record stream `<queue prefix>:manager:blocks`.
    #[arg(long, env = "BLOCKS_STREAM_MAX_LEN", default_value_t = 10_000)]
    pub blocks_stream_max_len: u64,
    /// Most health-check jobs a backlog scan reads (the rest is extrapolated).
    #[arg(long, env = "BACKLOG_SCAN_CAP", default_value_t = 200_000)]
    pub backlog_scan_cap: usize,
    /// Name of the liquidator's attempts stream (`<queue prefix>:liquidator:<chain id>:<name>`),
    /// tailed to count and print the liquidations that land.
    #[arg(long, env = "ATTEMPTS_STREAM", default_value = "attempts")]
    pub attempts_stream: String,
    /// Do not log each liquidation that lands.
    #[arg(long, env = "QUIET_LIQUIDATIONS")]
    pub quiet_liquidations: bool,
    /// Log filter of the workers the manager starts (their `RUST_LOG`). Default: the
    /// manager's own `--log-level`.
    #[arg(long, env = "WORKER_LOG_LEVEL")]
    pub worker_log_level: Option<String>,
    /// Address of the web dashboard (`/`, and its figures as JSON on `/api/dashboard`); `off`
    /// disables it. Loopback by default (it shows positions and wallet balances), on a free
    /// port that is logged and shown in `/health` as `dashboard`.
    #[arg(long, env = "DASHBOARD_ADDR", default_value = crate::dashboard::DEFAULT_ADDR)]
    pub dashboard_addr: String,
    #[command(flatten, next_help_heading = "Scaling")]
    pub scaling: ScalingArgs,
    #[command(flatten, next_help_heading = "Process backend")]
    pub process: ProcessArgs,
}

/// Bounds and tuning of the autoscaler (see [`crate::autoscale`] for the formula).
#[derive(Debug, Clone, Args)]
pub struct ScalingArgs {
    /// Fewest health checkers.
    #[arg(long, env = "MIN_HEALTH_CHECKERS", default_value_t = 1)]
    pub min_health_checkers: u32,
    /// Most health checkers.
    #[arg(long, env = "MAX_HEALTH_CHECKERS", default_value_t = 8)]
    pub max_health_checkers: u32,
    /// Fewest liquidators.
    #[arg(long, env = "MIN_LIQUIDATORS", default_value_t = 1)]
    pub min_liquidators: u32,
    /// Most liquidators (each needs a funded wallet slot).
    #[arg(long, env = "MAX_LIQUIDATORS", default_value_t = 4)]
    pub max_liquidators: u32,
    /// Share of the deadline a worker is planned to be busy, in (0, 1].
    #[arg(long, env = "TARGET_UTILIZATION", default_value_t = 0.8)]
    pub target_utilization: f64,
    /// Blocks the needed count must stay lower before workers are removed.
    #[arg(long, env = "SCALE_DOWN_WINDOW_BLOCKS", default_value_t = 3)]
    pub scale_down_window_blocks: u32,
    /// Blocks to wait for starting workers before asking for more.
    #[arg(long, env = "SCALE_UP_COOLDOWN_BLOCKS", default_value_t = 3)]
    pub scale_up_cooldown_blocks: u32,
    /// Dead band around the current count: while nothing is late a need of up to
    /// current × (1 + this) keeps it, and a scale-down keeps this much margin.
    #[arg(long, env = "SCALING_HYSTERESIS", default_value_t = 0.1)]
    pub hysteresis: f64,
    /// Accounts one health checker is assumed to check per second until measured.
    #[arg(
        long,
        env = "HEALTH_CHECKER_INITIAL_THROUGHPUT",
        default_value_t = 20_000.0
    )]
    pub health_checker_initial_throughput: f64,
    /// Liquidations one liquidator is assumed to do per second until measured.
    #[arg(long, env = "LIQUIDATOR_INITIAL_THROUGHPUT", default_value_t = 2.0)]
    pub liquidator_initial_throughput: f64,
}

impl ScalingArgs {
    /// The policy of `kind`, validated (errors name the flag).
    pub fn policy(
        &self,
        kind: WorkerKind,
        deadline_blocks: u32,
        block_time: Duration,
    ) -> Result<ScalingPolicy, PolicyError> {
        let (min, max, throughput, names) = match kind {
            WorkerKind::HealthChecker => (
                self.min_health_checkers,
                self.max_health_checkers,
                self.health_checker_initial_throughput,
                PolicySettingNames {
                    min_workers: "--min-health-checkers",
                    max_workers: "--max-health-checkers",
                    initial_throughput: "--health-checker-initial-throughput",
                    ..FLAG_NAMES
                },
            ),
            WorkerKind::Liquidator => (
                self.min_liquidators,
                self.max_liquidators,
                self.liquidator_initial_throughput,
                PolicySettingNames {
                    min_workers: "--min-liquidators",
                    max_workers: "--max-liquidators",
                    initial_throughput: "--liquidator-initial-throughput",
                    ..FLAG_NAMES
                },
            ),
        };
        let policy = ScalingPolicy {
            min_workers: min,
            max_workers: max,
            deadline_blocks,
            target_utilization: self.target_utilization,
            scale_down_window_blocks: self.scale_down_window_blocks,
            scale_up_cooldown_blocks: self.scale_up_cooldown_blocks,
            hysteresis: self.hysteresis,
            initial_throughput: throughput,
            throughput_decay: ScalingPolicy::default().throughput_decay,
            initial_block_time_s: block_time.as_secs_f64().max(0.001),
        };
        policy.validate(&names)?;
        Ok(policy)
    }
}

const FLAG_NAMES: PolicySettingNames = PolicySettingNames {
    min_workers: "--min-workers",
    max_workers: "--max-workers",
    deadline_blocks: "--deadline-blocks",
    target_utilization: "--target-utilization",
    hysteresis: "--hysteresis",
    initial_throughput: "--initial-throughput",
    throughput_decay: "throughput decay",
    initial_block_time: "the manifest's block_time_ms",
};

/// Settings of the `process` backend.
#[derive(Debug, Clone, Args)]
pub struct ProcessArgs {
    /// Directory of the service binaries. Default: the directory of the manager's binary.
    #[arg(long, env = "BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Seconds a stopped worker gets between SIGTERM and SIGKILL.
    #[arg(
        id = "process_stop_grace_secs",
        long = "stop-grace-secs",
        value_name = "SECS",
        env = "STOP_GRACE_SECS",
        default_value_t = 10
    )]
    pub stop_grace_secs: u64,
    /// Do not start a collector (one runs elsewhere). With the process backend the manager
    /// otherwise runs one `collector` child, restarted if it exits.
    #[arg(long, env = "NO_COLLECTOR")]
    pub no_collector: bool,
    /// Extra argument for the collector; repeat the flag for several.
    #[arg(
        long = "collector-arg",
        env = "COLLECTOR_ARGS",
        value_delimiter = ' ',
        allow_hyphen_values = true
    )]
    pub collector_args: Vec<String>,
    /// Extra argument for each health checker; repeat the flag for several.
    #[arg(
        long = "health-checker-arg",
        env = "HEALTH_CHECKER_ARGS",
        value_delimiter = ' ',
        allow_hyphen_values = true
    )]
    pub health_checker_args: Vec<String>,
    /// Extra argument for each liquidator; repeat the flag for several.
    #[arg(
        long = "liquidator-arg",
        env = "LIQUIDATOR_ARGS",
        value_delimiter = ' ',
        allow_hyphen_values = true
    )]
    pub liquidator_args: Vec<String>,
}

impl ManagerArgs {
    /// Checks the flags that need no connection; errors name the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_alarm_secs == 0 {
            return Err("--block-alarm-secs: must be at least 1".into());
        }
        if self.deadline_blocks == 0 {
            return Err("--deadline-blocks: must be at least 1".into());
        }
        if !(10..=10_000).contains(&self.poll_ms) {
            return Err(format!(
                "--poll-ms: {} is outside 10..=10000 milliseconds",
                self.poll_ms
            ));
        }
        if self.blocks_stream_max_len == 0 {
            return Err("--blocks-stream-max-len: must be at least 1".into());
        }
        crate::dashboard::parse_addr(&self.dashboard_addr)?;
        if self.attempts_stream.trim().is_empty()
            || self.attempts_stream.chars().any(char::is_whitespace)
        {
            return Err(format!(
                "--attempts-stream: {:?} must be non-empty without whitespace",
                self.attempts_stream
            ));
        }
        if let Some(level) = &self.worker_log_level {
            tracing_subscriber::EnvFilter::try_new(level)
                .map_err(|e| format!("--worker-log-level: `{level}` is not a log filter: {e}"))?;
        }
        for kind in WorkerKind::ALL {
            self.scaling
                .policy(kind, self.deadline_blocks, Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    pub fn block_alarm(&self) -> Duration {
        Duration::from_secs(self.block_alarm_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse_all(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec!["manager"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
    }

    fn parse(args: &[&str]) -> ManagerArgs {
        parse_all(args).unwrap().manager
    }

    /// clap's own consistency checks (unique ids, unique long flags…), which it otherwise
    /// makes only when a debug build parses, panicking.
    #[test]
    fn the_command_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` shows value placeholders (`<IMAGE_TAG>`), never the internal ids
    /// (`<docker_image_tag>`) clap falls back to when an argument has an explicit id.
    #[test]
    fn help_shows_placeholders_not_ids() {
        let command = Cli::command();
        for arg in command.get_arguments() {
            for name in arg.get_value_names().unwrap_or_default() {
                assert_eq!(
                    name.as_str(),
                    name.to_uppercase(),
                    "--{}",
                    arg.get_long().unwrap_or_default()
                );
            }
        }
    }

    /// Fields of the same name in different parts land where their flag says.
    #[test]
    fn same_named_fields_stay_apart() {
        let cli = parse_all(&[
            "--manifest",
            "/run/chain.json",
            "--docker-manifest",
            "/host/chain.json",
            "--docker-env",
            "A=1;B=2",
            "--docker-env=C=3",
            "--ecs-env",
            "X=y",
            "--docker-image-tag",
            "v1",
            "--ecs-image-tag",
            "v2",
            "--docker-image-prefix",
            "local/",
            "--ecs-image-prefix",
            "ecr/",
            "--docker-stop-grace-secs",
            "4",
            "--stop-grace-secs",
            "7",
        ])
        .unwrap();
        assert_eq!(
            cli.service.chain.manifest.as_deref(),
            Some(std::path::Path::new("/run/chain.json"))
        );
        assert_eq!(
            cli.docker.manifest.as_deref(),
            Some(std::path::Path::new("/host/chain.json"))
        );
        assert_eq!(cli.docker.env, ["A=1", "B=2", "C=3"]);
        assert_eq!(cli.ecs.env, ["X=y"]);
        assert_eq!(
            cli.docker.image(WorkerKind::Liquidator),
            "local/liquidator:v1"
        );
        assert_eq!(
            cli.ecs.images().of(WorkerKind::Liquidator),
            "ecr/liquidator:v2"
        );
        assert_eq!(cli.docker.stop_grace_secs, 4);
        assert_eq!(cli.manager.process.stop_grace_secs, 7);
    }

    #[test]
    fn backend_flags_report_their_own_name() {
        let error = parse_all(&["--docker-cpus", "many"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--docker-cpus"), "{error}");
        let error = parse_all(&["--ecs-memory", "lots"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--ecs-memory"), "{error}");
    }

    #[test]
    fn defaults_are_valid() {
        let args = parse(&[]);
        args.validate().unwrap();
        assert_eq!(args.backend, BackendKind::Process);
        let policy = args
            .scaling
            .policy(WorkerKind::HealthChecker, 1, Duration::from_millis(6_000))
            .unwrap();
        assert_eq!((policy.min_workers, policy.max_workers), (1, 8));
        assert_eq!(policy.initial_block_time_s, 6.0);
    }

    #[test]
    fn errors_name_the_flag() {
        let error = parse(&["--min-liquidators", "5", "--max-liquidators", "2"])
            .validate()
            .unwrap_err();
        assert!(error.starts_with("--min-liquidators"), "{error}");
        let error = parse(&["--target-utilization", "0"])
            .validate()
            .unwrap_err();
        assert!(error.starts_with("--target-utilization"), "{error}");
        let error = parse(&["--worker-log-level", "info,[[["])
            .validate()
            .unwrap_err();
        assert!(error.starts_with("--worker-log-level"), "{error}");
        let error = parse(&["--poll-ms", "1"]).validate().unwrap_err();
        assert!(error.starts_with("--poll-ms"), "{error}");
        let error = parse(&["--max-health-checkers", "0"])
            .validate()
            .unwrap_err();
        assert!(error.starts_with("--max-health-checkers"), "{error}");
    }

    #[test]
    fn worker_arguments_may_start_with_dashes() {
        let args = parse(&[
            "--health-checker-arg",
            "--compute-threads=1",
            "--liquidator-arg=--csv=/tmp/l.csv",
        ]);
        assert_eq!(args.process.health_checker_args, ["--compute-threads=1"]);
        assert_eq!(args.process.liquidator_args, ["--csv=/tmp/l.csv"]);
    }
}
