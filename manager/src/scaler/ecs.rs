//! The `ecs` backend: one ECS service on Fargate per worker kind, whose `desiredCount` the
//! manager sets.
//!
//! # Why `desiredCount` on services, not RunTask/StopTask
//! A service keeps its count by itself: ECS replaces a task that crashes or whose host fails,
//! spreads tasks over the subnets' availability zones, rolls out a new task definition without a
//! gap, and the count survives a manager restart, so a new manager adopts the fleet for free.
//! Scaling is then one idempotent `UpdateService` call. With RunTask/StopTask the manager would
//! become a scheduler: track task ARNs, replace failed tasks, retry capacity errors, batch
//! RunTask's 10 tasks per call, and rebuild all that state after its own restart. What the
//! service model costs: on scale-in ECS chooses which tasks stop. That is safe here because
//! workers acknowledge a job only after its effect, ECS sends SIGTERM and waits
//! `--ecs-stop-timeout-secs` (Fargate allows up to 120 s) before SIGKILL, and a job still held
//! by a killed worker is reclaimed by another after the queue's visibility timeout.
//!
//! # Task definitions
//! With `--ecs-task-definitions register` (the default) the backend registers the family
//! `<--ecs-service-prefix><service>` from its flags (Fargate, `awsvpc`, `--ecs-cpu`/
//! `--ecs-memory`, image `<--ecs-image-prefix><service>:<--ecs-image-tag>`, environment, secrets
//! from Secrets Manager or SSM ARNs, awslogs to `--ecs-log-group`), reusing the latest revision
//! when it already matches, and creates a missing service in `--ecs-subnets`. With `existing`
//! (the CloudFormation deployment in deploy/ does this) the services and their task definitions
//! belong to the infrastructure code and the backend only reads and sets counts.
//!
//! # Dead liquidators' wallets
//! With [`EcsScaler::with_wallet_handoff`], each scaling tick also lists the liquidator
//! service's stopped tasks and frees the wallet slots of each one whose container has exited,
//! so its replacement signs with the same, funded wallet at once (see `ecs_stopped`).
//!
//! Region and credentials come from the standard AWS chain (environment, profile, ECS task
//! role, instance metadata); `--ecs-endpoint` points the client elsewhere (a local
//! `moto_server` in the tests).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, KeyValuePair,
    LaunchType, LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode, Secret, Service,
    TaskDefinition,
};
use aws_sdk_ecs::Client;
use clap::{Args, ValueEnum};
use tracing::{debug, info};

use crate::handoff::WalletHandoff;

use super::ecs_stopped::StoppedTasks;
use super::env::{self, parse_env_entries};
use super::{Scaler, ScalerError, WorkerCount, WorkerImage, WorkerImageFlags, WorkerKind};

const BACKEND: &str = "ecs";

/// The container's name inside each worker task definition.
pub const CONTAINER_NAME: &str = "worker";

/// Who owns the worker services' task definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskDefinitionMode {
    /// The manager registers them from its `--ecs-*` flags and creates missing services.
    Register,
    /// Infrastructure code (deploy/) owns services and task definitions; the manager only sets
    /// counts.
    Existing,
}

/// Flags of the `ecs` backend. Every flag has an `env` twin.
///
/// Every argument has an explicit clap id `ecs_<field>`: ids must be unique in the manager's
/// one command, and the Docker backend has fields of the same names (`env`, `image_prefix`,
/// `image_tag`).
#[derive(Debug, Clone, Args)]
pub struct EcsConfig {
    /// ECS cluster (name or ARN) the worker services run in. Required with `--backend ecs`.
    #[arg(
        id = "ecs_cluster",
        value_name = "CLUSTER",
        long = "ecs-cluster",
        env = "ECS_CLUSTER"
    )]
    pub cluster: Option<String>,
    /// ECS API endpoint, e.g. `http://127.0.0.1:5000` for a local moto_server (default: AWS's
    /// endpoint for the region).
    #[arg(
        id = "ecs_endpoint",
        value_name = "ENDPOINT",
        long = "ecs-endpoint",
        env = "ECS_ENDPOINT"
    )]
    pub endpoint: Option<String>,
    /// AWS region (default: the standard chain: AWS_REGION, the profile, instance metadata).
    #[arg(
        id = "ecs_region",
        value_name = "REGION",
        long = "ecs-region",
        env = "ECS_REGION"
    )]
    pub region: Option<String>,
    /// Prefix of the worker services' and task definition families' names:
    /// `<prefix>health-checker`, `<prefix>liquidator`.
    #[arg(
        id = "ecs_service_prefix",
        value_name = "SERVICE_PREFIX",
        long = "ecs-service-prefix",
        env = "ECS_SERVICE_PREFIX",
        default_value = "redline-"
    )]
    pub service_prefix: String,
    /// `register`: the manager registers task definitions from these flags and creates
    /// missing services; `existing`: services come from infrastructure code (deploy/).
    #[arg(
        id = "ecs_task_definitions",
        value_name = "TASK_DEFINITIONS",
        long = "ecs-task-definitions",
        env = "ECS_TASK_DEFINITIONS",
        value_enum,
        default_value = "register"
    )]
    pub task_definitions: TaskDefinitionMode,
    /// Image repository prefix; workers run `<prefix><service>:<tag>`, e.g.
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com/redline/`. Required with `register`.
    #[arg(
        id = "ecs_image_prefix",
        value_name = "IMAGE_PREFIX",
        long = "ecs-image-prefix",
        env = "ECS_IMAGE_PREFIX"
    )]
    pub image_prefix: Option<String>,
    /// Image tag of the worker images.
    #[arg(
        id = "ecs_image_tag",
        value_name = "IMAGE_TAG",
        long = "ecs-image-tag",
        env = "ECS_IMAGE_TAG",
        default_value = "latest"
    )]
    pub image_tag: String,
    /// Task CPU units (Fargate: 256, 512, 1024, 2048, 4096, 8192, 16384).
    #[arg(
        id = "ecs_cpu",
        value_name = "CPU",
        long = "ecs-cpu",
        env = "ECS_CPU",
        default_value_t = 256
    )]
    pub cpu: u32,
    /// Task memory in MiB; must suit `--ecs-cpu` on Fargate (256 CPU: 512, 1024 or 2048).
    #[arg(
        id = "ecs_memory",
        value_name = "MEMORY",
        long = "ecs-memory",
        env = "ECS_MEMORY",
        default_value_t = 512
    )]
    pub memory: u32,
    /// Role ECS uses to pull the image, read the secrets and write logs. Required with secrets
    /// or a log group.
    #[arg(
        id = "ecs_execution_role_arn",
        value_name = "EXECUTION_ROLE_ARN",
        long = "ecs-execution-role-arn",
        env = "ECS_EXECUTION_ROLE_ARN"
    )]
    pub execution_role_arn: Option<String>,
    /// Role the worker itself runs as (it needs no AWS permissions by default).
    #[arg(
        id = "ecs_task_role_arn",
        value_name = "TASK_ROLE_ARN",
        long = "ecs-task-role-arn",
        env = "ECS_TASK_ROLE_ARN"
    )]
    pub task_role_arn: Option<String>,
    /// Subnets of the worker tasks (`awsvpc`), comma-separated. Required to create services.
    #[arg(
        id = "ecs_subnets",
        value_name = "SUBNETS",
        long = "ecs-subnets",
        env = "ECS_SUBNETS",
        value_delimiter = ','
    )]
    pub subnets: Vec<String>,
    /// Security groups of the worker tasks, comma-separated (default: the VPC's default).
    #[arg(
        id = "ecs_security_groups",
        value_name = "SECURITY_GROUPS",
        long = "ecs-security-groups",
        env = "ECS_SECURITY_GROUPS",
        value_delimiter = ','
    )]
    pub security_groups: Vec<String>,
    /// Give worker tasks a public IP (needed in public subnets without a NAT gateway).
    #[arg(
        id = "ecs_assign_public_ip",
        value_name = "ASSIGN_PUBLIC_IP",
        long = "ecs-assign-public-ip",
        env = "ECS_ASSIGN_PUBLIC_IP",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub assign_public_ip: bool,
    /// Extra worker environment, `KEY=VALUE`; repeat the flag (`;`-separated in the env var).
    /// Overrides what the manager passes on. Secrets belong in `--ecs-secret`.
    #[arg(
        id = "ecs_env",
        value_name = "ENV",
        long = "ecs-env",
        env = "ECS_ENV",
        value_delimiter = ';'
    )]
    pub env: Vec<String>,
    /// Worker secrets, `NAME=ARN` of a Secrets Manager secret (or SSM parameter), e.g.
    /// `MNEMONIC=arn:aws:secretsmanager:…:secret:redline/mnemonic`; repeat the flag
    /// (`;`-separated in the env var).
    #[arg(
        id = "ecs_secrets",
        value_name = "SECRETS",
        long = "ecs-secret",
        env = "ECS_SECRETS",
        value_delimiter = ';'
    )]
    pub secrets: Vec<String>,
    /// CloudWatch Logs group of the workers (awslogs driver). Default: no log configuration.
    #[arg(
        id = "ecs_log_group",
        value_name = "LOG_GROUP",
        long = "ecs-log-group",
        env = "ECS_LOG_GROUP"
    )]
    pub log_group: Option<String>,
    /// awslogs stream prefix: streams are `<prefix>/worker/<task id>`.
    #[arg(
        id = "ecs_log_stream_prefix",
        value_name = "LOG_STREAM_PREFIX",
        long = "ecs-log-stream-prefix",
        env = "ECS_LOG_STREAM_PREFIX",
        default_value = "redline"
    )]
    pub log_stream_prefix: String,
    /// Seconds between SIGTERM and SIGKILL when ECS stops a worker (Fargate: at most 120).
    #[arg(
        id = "ecs_stop_timeout_secs",
        value_name = "STOP_TIMEOUT_SECS",
        long = "ecs-stop-timeout-secs",
        env = "ECS_STOP_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub stop_timeout_secs: u32,
    /// Scale every worker service to 0 when the manager stops. Off by default: a manager
    /// restarted by ECS adopts the running workers.
    #[arg(
        id = "ecs_scale_down_on_shutdown",
        value_name = "SCALE_DOWN_ON_SHUTDOWN",
        long = "ecs-scale-down-on-shutdown",
        env = "ECS_SCALE_DOWN_ON_SHUTDOWN",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub scale_down_on_shutdown: bool,
}

impl Default for EcsConfig {
    fn default() -> Self {
        EcsConfig {
            cluster: None,
            endpoint: None,
            region: None,
            service_prefix: "redline-".into(),
            task_definitions: TaskDefinitionMode::Register,
            image_prefix: None,
            image_tag: "latest".into(),
            cpu: 256,
            memory: 512,
            execution_role_arn: None,
            task_role_arn: None,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            env: Vec::new(),
            secrets: Vec::new(),
            log_group: None,
            log_stream_prefix: "redline".into(),
            stop_timeout_secs: 60,
            scale_down_on_shutdown: false,
        }
    }
}

fn config_error(field: &'static str, problem: impl Into<String>) -> ScalerError {
    ScalerError::config(BACKEND, field, problem)
}

pub(super) fn backend_error(
    operation: impl Into<String>,
    message: impl std::fmt::Display,
) -> ScalerError {
    ScalerError::backend(BACKEND, operation, message)
}

/// An SDK error with its service code and message (`ClusterNotFoundException: Cluster not
/// found.`) rather than the bare "service error".
pub(super) fn sdk_error<E>(
    operation: impl Into<String>,
    error: aws_sdk_ecs::error::SdkError<E>,
) -> ScalerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&error).to_string(),
    };
    backend_error(operation, message)
}

/// Memory sizes (MiB) Fargate accepts for a CPU size, as (min, max, step).
fn fargate_memory_range(cpu: u32) -> Option<(u32, u32, u32)> {
    match cpu {
        256 => Some((512, 2048, 512)),
        512 => Some((1024, 4096, 1024)),
        1024 => Some((2048, 8192, 1024)),
        2048 => Some((4096, 16384, 1024)),
        4096 => Some((8192, 30720, 1024)),
        8192 => Some((16384, 61440, 4096)),
        16384 => Some((32768, 122880, 8192)),
        _ => None,
    }
}

impl EcsConfig {
    /// Checks every flag; errors name the flag.
    pub fn validate(&self) -> Result<(), ScalerError> {
        match self.cluster.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(config_error(
                    "--ecs-cluster",
                    "is required with the ecs backend",
                ))
            }
            Some(_) => {}
        }
        if let Some(endpoint) = &self.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(config_error(
                    "--ecs-endpoint",
                    format!("`{endpoint}` is not an http(s):// URL"),
                ));
            }
        }
        let name_ok = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&format!("{}x", self.service_prefix)) {
            return Err(config_error(
                "--ecs-service-prefix",
                format!(
                    "`{}` may hold only letters, digits, `-` and `_`",
                    self.service_prefix
                ),
            ));
        }
        if self.task_definitions == TaskDefinitionMode::Existing {
            return Ok(());
        }
        if self
            .image_prefix
            .as_deref()
            .is_none_or(|prefix| prefix.trim().is_empty())
        {
            return Err(config_error(
                "--ecs-image-prefix",
                "is required with --ecs-task-definitions register",
            ));
        }
        self.images().validate(WorkerImageFlags {
            backend: BACKEND,
            prefix: "--ecs-image-prefix",
            tag: "--ecs-image-tag",
        })?;
        let Some((min, max, step)) = fargate_memory_range(self.cpu) else {
            return Err(config_error(
                "--ecs-cpu",
                format!(
                    "{} is not a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, 16384)",
                    self.cpu
                ),
            ));
        };
        if self.memory < min || self.memory > max || !(self.memory - min).is_multiple_of(step) {
            return Err(config_error(
                "--ecs-memory",
                format!(
                    "{} MiB does not suit --ecs-cpu {} on Fargate: {min} to {max} MiB in steps of {step}",
                    self.memory, self.cpu
                ),
            ));
        }
        if self.subnets.iter().all(|subnet| subnet.trim().is_empty()) {
            return Err(config_error(
                "--ecs-subnets",
                "at least one subnet is required to create the worker services (awsvpc)",
            ));
        }
        parse_env_entries(BACKEND, "--ecs-env", &self.env)?;
        for (name, arn) in parse_env_entries(BACKEND, "--ecs-secret", &self.secrets)? {
            if !arn.starts_with("arn:") {
                return Err(config_error(
                    "--ecs-secret",
                    format!(
                        "{name}: `{arn}` is not an ARN (arn:aws:secretsmanager:… or arn:aws:ssm:…)"
                    ),
                ));
            }
        }
        for (field, arn) in [
            ("--ecs-execution-role-arn", &self.execution_role_arn),
            ("--ecs-task-role-arn", &self.task_role_arn),
        ] {
            if let Some(arn) = arn {
                if !arn.starts_with("arn:") {
                    return Err(config_error(field, format!("`{arn}` is not an ARN")));
                }
            }
        }
        let needs_execution_role = !self.secrets.is_empty() || self.log_group.is_some();
        if needs_execution_role && self.execution_role_arn.is_none() {
            return Err(config_error(
                "--ecs-execution-role-arn",
                "is required when --ecs-secret or --ecs-log-group is given (ECS reads secrets \
                 and writes logs as this role)",
            ));
        }
        if self.stop_timeout_secs == 0 || self.stop_timeout_secs > 120 {
            return Err(config_error(
                "--ecs-stop-timeout-secs",
                format!(
                    "{} is outside Fargate's 1..=120 seconds",
                    self.stop_timeout_secs
                ),
            ));
        }
        if self.log_stream_prefix.trim().is_empty() {
            return Err(config_error("--ecs-log-stream-prefix", "is empty"));
        }
        Ok(())
    }

    /// The worker images, `--ecs-image-prefix` (empty when not given) and `--ecs-image-tag`.
    pub fn images(&self) -> WorkerImage<'_> {
        WorkerImage {
            prefix: self.image_prefix.as_deref().unwrap_or_default(),
            tag: &self.image_tag,
        }
    }

    /// The ECS service (and task definition family) of `kind`.
    pub fn service_name(&self, kind: WorkerKind) -> String {
        format!("{}{}", self.service_prefix, kind.service())
    }

    fn cluster(&self) -> &str {
        self.cluster.as_deref().map(str::trim).unwrap_or_default()
    }
}

/// What a worker task definition holds, in a form two definitions can be compared by: the
/// one the flags ask for, and the latest registered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub family: String,
    pub image: String,
    pub cpu: String,
    pub memory: String,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    /// awslogs options (group, region, stream prefix), when logging is configured.
    pub log_options: Option<BTreeMap<String, String>>,
    pub stop_timeout: Option<i32>,
}

impl TaskSpec {
    /// What the flags and the manager's worker environment ask for `kind`.
    fn wanted(
        config: &EcsConfig,
        region: Option<&str>,
        env: &[(String, String)],
        kind: WorkerKind,
    ) -> Result<TaskSpec, ScalerError> {
        let secrets = parse_env_entries(BACKEND, "--ecs-secret", &config.secrets)?
            .into_iter()
            .collect();
        let log_options = match &config.log_group {
            None => None,
            Some(group) => {
                let region = region.ok_or_else(|| {
                    config_error(
                        "--ecs-region",
                        "the awslogs driver needs a region (give --ecs-region or AWS_REGION)",
                    )
                })?;
                Some(BTreeMap::from([
                    ("awslogs-group".to_string(), group.clone()),
                    ("awslogs-region".to_string(), region.to_string()),
                    (
                        "awslogs-stream-prefix".to_string(),
                        config.log_stream_prefix.clone(),
                    ),
                ]))
            }
        };
        Ok(TaskSpec {
            family: config.service_name(kind),
            image: config.images().of(kind),
            cpu: config.cpu.to_string(),
            memory: config.memory.to_string(),
            environment: env.iter().cloned().collect(),
            secrets,
            execution_role_arn: config.execution_role_arn.clone(),
            task_role_arn: config.task_role_arn.clone(),
            log_options,
            stop_timeout: Some(config.stop_timeout_secs as i32),
        })
    }

    /// A registered definition's spec (its first container is the worker's).
    fn registered(definition: &TaskDefinition, family: &str) -> Option<TaskSpec> {
        let container = definition.container_definitions().first()?;
        Some(TaskSpec {
            family: family.to_string(),
            image: container.image()?.to_string(),
            cpu: definition.cpu()?.to_string(),
            memory: definition.memory()?.to_string(),
            environment: container
                .environment()
                .iter()
                .filter_map(|pair| Some((pair.name()?.to_string(), pair.value()?.to_string())))
                .collect(),
            secrets: container
                .secrets()
                .iter()
                .map(|secret| (secret.name().to_string(), secret.value_from().to_string()))
                .collect(),
            execution_role_arn: definition.execution_role_arn().map(str::to_string),
            task_role_arn: definition.task_role_arn().map(str::to_string),
            log_options: container.log_configuration().map(|log| {
                log.options()
                    .map(|options| {
                        options
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default()
            }),
            stop_timeout: container.stop_timeout(),
        })
    }

    fn container_definition(&self) -> Result<ContainerDefinition, ScalerError> {
        let mut container = ContainerDefinition::builder()
            .name(CONTAINER_NAME)
            .image(&self.image)
            .essential(true)
            .set_stop_timeout(self.stop_timeout);
        for (name, value) in &self.environment {
            container =
                container.environment(KeyValuePair::builder().name(name).value(value).build());
        }
        for (name, value_from) in &self.secrets {
            let secret = Secret::builder()
                .name(name)
                .value_from(value_from)
                .build()
                .map_err(|error| config_error("--ecs-secret", error.to_string()))?;
            container = container.secrets(secret);
        }
        if let Some(options) = &self.log_options {
            let mut log = LogConfiguration::builder().log_driver(LogDriver::Awslogs);
            for (key, value) in options {
                log = log.options(key, value);
            }
            let log = log
                .build()
                .map_err(|error| config_error("--ecs-log-group", error.to_string()))?;
            container = container.log_configuration(log);
        }
        Ok(container.build())
    }
}

/// Workers as Fargate tasks of one ECS service per kind. See the module docs.
pub struct EcsScaler {
    client: Client,
    config: EcsConfig,
    region: Option<String>,
    /// Environment of every worker: the manager's, then `--ecs-env`.
    env: Vec<(String, String)>,
    /// Task definition ARN per kind, once registered (or found matching) by this scaler.
    task_definitions: tokio::sync::Mutex<HashMap<WorkerKind, String>>,
    /// Frees the wallet slots of liquidator tasks ECS reports stopped.
    stopped_liquidators: Option<StoppedTasks>,
}

impl std::fmt::Debug for EcsScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcsScaler")
            .field("cluster", &self.config.cluster())
            .field("region", &self.region)
            .field("env", &env::keys(&self.env))
            .finish()
    }
}

/// The HTTP client of the AWS SDK: hyper with rustls on ring (no aws-lc, no OpenSSL), which
/// speaks plain http:// to a local endpoint as well.
fn http_client() -> aws_sdk_ecs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl EcsScaler {
    /// Loads region and credentials from the standard AWS chain (`--ecs-region` overriding
    /// the region), points the client at `--ecs-endpoint` when given, and checks the cluster
    /// exists, so a bad region, credentials or cluster name fails at start. `worker_env` is the
    /// environment every worker gets; `--ecs-env` entries override it.
    pub async fn connect(
        config: EcsConfig,
        worker_env: Vec<(String, String)>,
    ) -> Result<Self, ScalerError> {
        config.validate()?;
        let (client, region) = client_for(&config).await?;
        Self::with_client(config, client, Some(region), worker_env).await
    }

    /// Like [`EcsScaler::connect`] with a ready client (its region is only used for the
    /// awslogs options).
    pub async fn with_client(
        config: EcsConfig,
        client: Client,
        region: Option<String>,
        worker_env: Vec<(String, String)>,
    ) -> Result<Self, ScalerError> {
        config.validate()?;
        let env = env::with_entries(BACKEND, "--ecs-env", worker_env, &config.env)?;
        let scaler = EcsScaler {
            client,
            config,
            region,
            env,
            task_definitions: tokio::sync::Mutex::new(HashMap::new()),
            stopped_liquidators: None,
        };
        scaler.check_cluster().await?;
        Ok(scaler)
    }

    /// Frees the wallet slots of each liquidator task as soon as ECS reports it stopped, for
    /// its replacement to take over at once, instead of after the lease's ttl.
    pub fn with_wallet_handoff(mut self, handoff: WalletHandoff) -> Self {
        self.stopped_liquidators = Some(StoppedTasks::new(handoff));
        self
    }

    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn check_cluster(&self) -> Result<(), ScalerError> {
        let cluster = self.config.cluster();
        let answer = self
            .client
            .describe_clusters()
            .clusters(cluster)
            .send()
            .await
            .map_err(|error| sdk_error(format!("DescribeClusters {cluster}"), error))?;
        let active = answer
            .clusters()
            .iter()
            .any(|found| found.status() == Some("ACTIVE"));
        if !active {
            let reason = answer
                .failures()
                .first()
                .and_then(|failure| failure.reason())
                .unwrap_or("not ACTIVE");
            return Err(config_error(
                "--ecs-cluster",
                format!("cluster `{cluster}`: {reason}"),
            ));
        }
        Ok(())
    }

    /// The service of `kind`, if it exists and is not being deleted.
    async fn describe(&self, kind: WorkerKind) -> Result<Option<Service>, ScalerError> {
        let name = self.config.service_name(kind);
        let answer = self
            .client
            .describe_services()
            .cluster(self.config.cluster())
            .services(&name)
            .send()
            .await
            .map_err(|error| sdk_error(format!("DescribeServices {name}"), error))?;
        Ok(answer
            .services()
            .iter()
            .find(|service| service.status() == Some("ACTIVE"))
            .cloned())
    }

    fn missing_service(&self, kind: WorkerKind) -> ScalerError {
        backend_error(
            format!("finding service {}", self.config.service_name(kind)),
            format!(
                "no ACTIVE service {} in cluster {}; deploy it (deploy/) or run with \
                 --ecs-task-definitions register",
                self.config.service_name(kind),
                self.config.cluster()
            ),
        )
    }

    /// The ARN of a task definition matching the flags: the family's latest revision when it
    /// matches, else a newly registered one. Done once per kind per scaler.
    pub async fn ensure_task_definition(&self, kind: WorkerKind) -> Result<String, ScalerError> {
        let mut known = self.task_definitions.lock().await;
        if let Some(arn) = known.get(&kind) {
            return Ok(arn.clone());
        }
        let wanted = TaskSpec::wanted(&self.config, self.region.as_deref(), &self.env, kind)?;
        let family = wanted.family.clone();
        let latest = match self
            .client
            .describe_task_definition()
            .task_definition(&family)
            .send()
            .await
        {
            Ok(answer) => answer.task_definition().cloned(),
            // ECS answers ClientException for a family with no active revision.
            Err(error) if error.code() == Some("ClientException") => {
                debug!(%family, "no registered task definition yet");
                None
            }
            Err(error) => return Err(sdk_error(format!("DescribeTaskDefinition {family}"), error)),
        };
        if let Some(latest) = latest {
            if TaskSpec::registered(&latest, &family).as_ref() == Some(&wanted) {
                if let Some(arn) = latest.task_definition_arn() {
                    debug!(%family, %arn, "the latest task definition matches the flags");
                    known.insert(kind, arn.to_string());
                    return Ok(arn.to_string());
                }
            }
        }
        let answer = self
            .client
            .register_task_definition()
            .family(&family)
            .requires_compatibilities(Compatibility::Fargate)
            .network_mode(NetworkMode::Awsvpc)
            .cpu(&wanted.cpu)
            .memory(&wanted.memory)
            .set_execution_role_arn(wanted.execution_role_arn.clone())
            .set_task_role_arn(wanted.task_role_arn.clone())
            .container_definitions(wanted.container_definition()?)
            .send()
            .await
            .map_err(|error| sdk_error(format!("RegisterTaskDefinition {family}"), error))?;
        let arn = answer
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .ok_or_else(|| {
                backend_error(
                    format!("RegisterTaskDefinition {family}"),
                    "the answer names no task definition ARN",
                )
            })?
            .to_string();
        info!(%family, %arn, image = %wanted.image, "registered a task definition");
        known.insert(kind, arn.clone());
        Ok(arn)
    }

    /// Sets the service's count, and moves it to `task_definition` when that is new to it.
    async fn update_service(
        &self,
        kind: WorkerKind,
        service: &Service,
        desired_count: i32,
        task_definition: Option<String>,
    ) -> Result<(), ScalerError> {
        let name = self.config.service_name(kind);
        let new_definition =
            task_definition.filter(|arn| service.task_definition() != Some(arn.as_str()));
        if service.desired_count() == desired_count && new_definition.is_none() {
            return Ok(());
        }
        self.client
            .update_service()
            .cluster(self.config.cluster())
            .service(&name)
            .desired_count(desired_count)
            .set_task_definition(new_definition.clone())
            .send()
            .await
            .map_err(|error| sdk_error(format!("UpdateService {name}"), error))?;
        info!(
            %kind,
            service = %name,
            from = service.desired_count(),
            to = desired_count,
            new_task_definition = ?new_definition,
            "set desiredCount"
        );
        Ok(())
    }

    /// Creates the Fargate service of `kind` (register mode's first scale-up).
    async fn create_service(
        &self,
        kind: WorkerKind,
        desired_count: i32,
        task_definition: &str,
    ) -> Result<(), ScalerError> {
        let name = self.config.service_name(kind);
        self.client
            .create_service()
            .cluster(self.config.cluster())
            .service_name(&name)
            .task_definition(task_definition)
            .desired_count(desired_count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(self.network_configuration()?)
            .send()
            .await
            .map_err(|error| sdk_error(format!("CreateService {name}"), error))?;
        info!(
            %kind,
            service = %name,
            %task_definition,
            desired = desired_count,
            "created the worker service"
        );
        Ok(())
    }

    fn network_configuration(&self) -> Result<NetworkConfiguration, ScalerError> {
        // The env twins are comma-separated: a stray space or trailing comma is no id.
        let ids = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|id| id.trim().to_string())
                .filter(|id| !id.is_empty())
                .collect()
        };
        let subnets = ids(&self.config.subnets);
        let security_groups = ids(&self.config.security_groups);
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(subnets))
            .set_security_groups((!security_groups.is_empty()).then_some(security_groups))
            .assign_public_ip(if self.config.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|error| config_error("--ecs-subnets", error.to_string()))?;
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build())
    }
}

/// An ECS client as [`EcsScaler::connect`] builds it (standard AWS chain, `--ecs-region`,
/// `--ecs-endpoint`), and the region it resolved.
pub async fn client_for(config: &EcsConfig) -> Result<(Client, String), ScalerError> {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client());
    if let Some(region) = &config.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk_config = loader.load().await;
    let Some(region) = sdk_config.region().map(|region| region.to_string()) else {
        return Err(config_error(
            "--ecs-region",
            "no AWS region: give --ecs-region, or set AWS_REGION or a profile's region",
        ));
    };
    let mut ecs_config = aws_sdk_ecs::config::Builder::from(&sdk_config);
    if let Some(endpoint) = &config.endpoint {
        ecs_config = ecs_config.endpoint_url(endpoint);
    }
    Ok((Client::from_conf(ecs_config.build()), region))
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

impl Scaler for EcsScaler {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn observe(&self, kind: WorkerKind) -> Result<WorkerCount, ScalerError> {
        match self.describe(kind).await? {
            Some(service) => Ok(WorkerCount {
                desired: count(service.desired_count()),
                running: count(service.running_count()),
                pending: count(service.pending_count()),
            }),
            // Register mode creates the service on the first scale-up: none yet means none.
            None if self.config.task_definitions == TaskDefinitionMode::Register => {
                Ok(WorkerCount::default())
            }
            None => Err(self.missing_service(kind)),
        }
    }

    async fn scale_to(&self, kind: WorkerKind, desired: u32) -> Result<(), ScalerError> {
        let name = self.config.service_name(kind);
        if let Some(stopped) = self
            .stopped_liquidators
            .as_ref()
            .filter(|_| kind == WorkerKind::Liquidator)
        {
            stopped
                .hand_off(&self.client, self.config.cluster(), &name)
                .await;
        }
        let desired_count = i32::try_from(desired)
            .map_err(|_| backend_error(format!("UpdateService {name}"), "count too large"))?;
        let service = self.describe(kind).await?;
        let task_definition = match self.config.task_definitions {
            TaskDefinitionMode::Register => Some(self.ensure_task_definition(kind).await?),
            TaskDefinitionMode::Existing => None,
        };
        match (service, task_definition) {
            (Some(service), task_definition) => {
                self.update_service(kind, &service, desired_count, task_definition)
                    .await
            }
            (None, Some(task_definition)) => {
                self.create_service(kind, desired_count, &task_definition)
                    .await
            }
            (None, None) => Err(self.missing_service(kind)),
        }
    }

    async fn shutdown(&self) -> Result<(), ScalerError> {
        if !self.config.scale_down_on_shutdown {
            info!(
                cluster = %self.config.cluster(),
                "leaving the worker services running (--ecs-scale-down-on-shutdown is off)"
            );
            return Ok(());
        }
        for kind in WorkerKind::ALL {
            if self.describe(kind).await?.is_some() {
                self.scale_to(kind, 0).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::testing::{config_field, parse};

    fn valid() -> EcsConfig {
        EcsConfig {
            cluster: Some("redline".into()),
            image_prefix: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/redline/".into()),
            subnets: vec!["subnet-1".into()],
            ..EcsConfig::default()
        }
    }

    #[test]
    fn clap_defaults_match_default() {
        let parsed: EcsConfig = parse(&[]);
        assert_eq!(format!("{parsed:?}"), format!("{:?}", EcsConfig::default()));
    }

    #[test]
    fn flags_parse_and_validate() {
        let parsed: EcsConfig = parse(&[
            "--ecs-cluster",
            "prod",
            "--ecs-image-prefix",
            "repo/",
            "--ecs-subnets",
            "subnet-a,subnet-b",
            "--ecs-secret",
            "MNEMONIC=arn:aws:secretsmanager:us-east-1:1:secret:m",
            "--ecs-env",
            "RUST_LOG=info;REDIS_URL=rediss://x:6379",
            "--ecs-execution-role-arn",
            "arn:aws:iam::1:role/exec",
            "--ecs-cpu",
            "512",
            "--ecs-memory",
            "2048",
        ]);
        assert_eq!(parsed.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(parsed.env, ["RUST_LOG=info", "REDIS_URL=rediss://x:6379"]);
        parsed.validate().unwrap();
        assert_eq!(
            parsed.service_name(WorkerKind::Liquidator),
            "redline-liquidator"
        );
    }

    #[test]
    fn validation_names_the_flag() {
        valid().validate().unwrap();
        let bad = |change: fn(&mut EcsConfig)| {
            let mut config = valid();
            change(&mut config);
            config_field(config.validate().unwrap_err())
        };
        assert_eq!(bad(|c| c.cluster = None), "--ecs-cluster");
        assert_eq!(
            bad(|c| c.endpoint = Some("localhost:5000".into())),
            "--ecs-endpoint"
        );
        assert_eq!(
            bad(|c| c.service_prefix = "a b".into()),
            "--ecs-service-prefix"
        );
        assert_eq!(bad(|c| c.image_prefix = None), "--ecs-image-prefix");
        assert_eq!(bad(|c| c.image_tag = "".into()), "--ecs-image-tag");
        assert_eq!(bad(|c| c.cpu = 300), "--ecs-cpu");
        assert_eq!(bad(|c| c.memory = 4096), "--ecs-memory");
        assert_eq!(bad(|c| (c.cpu, c.memory) = (1024, 2500)), "--ecs-memory");
        assert_eq!(bad(|c| c.subnets.clear()), "--ecs-subnets");
        assert_eq!(bad(|c| c.env = vec!["X".into()]), "--ecs-env");
        assert_eq!(
            bad(|c| {
                c.secrets = vec!["MNEMONIC=my-secret".into()];
                c.execution_role_arn = Some("arn:aws:iam::1:role/x".into());
            }),
            "--ecs-secret"
        );
        assert_eq!(
            bad(|c| c.secrets = vec!["MNEMONIC=arn:aws:secretsmanager:x".into()]),
            "--ecs-execution-role-arn"
        );
        assert_eq!(
            bad(|c| c.task_role_arn = Some("role".into())),
            "--ecs-task-role-arn"
        );
        assert_eq!(
            bad(|c| c.stop_timeout_secs = 121),
            "--ecs-stop-timeout-secs"
        );
    }

    #[test]
    fn existing_mode_needs_only_the_cluster() {
        let config = EcsConfig {
            cluster: Some("prod".into()),
            task_definitions: TaskDefinitionMode::Existing,
            ..EcsConfig::default()
        };
        config.validate().unwrap();
    }

    #[test]
    fn fargate_sizes() {
        assert!(fargate_memory_range(256).is_some());
        assert!(fargate_memory_range(128).is_none());
        let mut config = valid();
        for (cpu, memory) in [(256, 2048), (512, 1024), (4096, 30720), (16384, 122880)] {
            (config.cpu, config.memory) = (cpu, memory);
            config.validate().unwrap();
        }
    }

    #[test]
    fn a_registered_definition_round_trips_to_its_spec() {
        let config = EcsConfig {
            log_group: Some("/redline/workers".into()),
            execution_role_arn: Some("arn:aws:iam::1:role/exec".into()),
            secrets: vec!["MNEMONIC=arn:aws:secretsmanager:us-east-1:1:secret:m".into()],
            ..valid()
        };
        let env = vec![("REDIS_URL".to_string(), "redis://r:6379".to_string())];
        let spec =
            TaskSpec::wanted(&config, Some("us-east-1"), &env, WorkerKind::HealthChecker).unwrap();
        let definition = TaskDefinition::builder()
            .cpu(&spec.cpu)
            .memory(&spec.memory)
            .set_execution_role_arn(spec.execution_role_arn.clone())
            .container_definitions(spec.container_definition().unwrap())
            .build();
        assert_eq!(
            TaskSpec::registered(&definition, "redline-health-checker"),
            Some(spec.clone())
        );
        let other_image = TaskSpec {
            image: "x".into(),
            ..spec.clone()
        };
        assert_ne!(
            Some(other_image),
            TaskSpec::registered(&definition, &spec.family)
        );
        assert!(TaskSpec::wanted(&config, None, &env, WorkerKind::Liquidator).is_err());
    }
}
