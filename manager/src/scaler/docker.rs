//! The `docker` backend: one container per worker on a Docker engine, from images
//! `<prefix><service>:<tag>` (by default `redline/health-checker:latest`, built by
//! `make docker_build`).
//!
//! The engine is the source of truth. Every container this backend creates carries labels
//! `redline.managed=true`, `redline.deployment=<--docker-deployment>` and
//! `redline.kind=<service>`, and every count comes from listing containers by those labels. So a
//! restarted manager adopts the fleet it left running (nothing is kept in the manager but the
//! last desired count), and two deployments on one engine never touch each other's workers.
//!
//! Each [`Scaler::scale_to`] reconciles: it removes orphans (our containers that exited or died,
//! after logging their exit code and last log lines), starts containers left in `created` (a
//! manager stopped between create and start), then creates the missing workers or stops the
//! extra ones. Scaling down stops containers that are not running yet first, then the newest
//! (SIGTERM, `--docker-stop-grace-secs` to drain, then SIGKILL) and removes them. Containers
//! have no restart policy: a crashed worker is replaced by the next reconcile, which also logs
//! why it died; with [`DockerScaler::with_wallet_handoff`] it also frees a dead liquidator's
//! wallet slots first, so that the replacement signs with the same (funded) wallet.
//!
//! Workers get their configuration through the environment: what the manager passes to
//! [`DockerScaler::connect`], then `--docker-env`, plus `QUEUE_CONSUMER=<container name>` (on
//! the host network every container would otherwise share the default `<hostname>-<pid>`
//! consumer name, as each is pid 1) and, with `--docker-manifest`, the chain manifest mounted
//! read-only at [`CONTAINER_MANIFEST_PATH`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, HostConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use clap::Args;
use futures::StreamExt;
use tracing::{info, warn};

use super::env::{self, parse_env_entries};
use super::{Scaler, ScalerError, WorkerCount, WorkerImage, WorkerImageFlags, WorkerKind};
use crate::handoff::WalletHandoff;

const BACKEND: &str = "docker";

/// Label every container of this backend carries.
pub const LABEL_MANAGED: &str = "redline.managed";
/// Label naming the deployment (`--docker-deployment`) a container belongs to.
pub const LABEL_DEPLOYMENT: &str = "redline.deployment";
/// Label naming the worker kind (its service name, e.g. `health-checker`).
pub const LABEL_KIND: &str = "redline.kind";
/// Where `--docker-manifest` appears inside worker containers.
pub const CONTAINER_MANIFEST_PATH: &str = "/etc/redline/manifest.json";

/// The engine's address when `--docker-host` is not given.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// How long one Docker API call may take before it counts as failed.
const API_TIMEOUT_SECS: u64 = 120;
/// Log lines shown when an orphan (a worker that exited) is removed.
const ORPHAN_LOG_LINES: &str = "20";

/// Flags of the `docker` backend. Every flag has an `env` twin.
///
/// Every argument has an explicit clap id `docker_<field>`: ids must be unique in the
/// manager's one command, and the ECS backend and the shared chain flags have fields of the
/// same names (`env`, `image_prefix`, `image_tag`, `manifest`).
#[derive(Debug, Clone, Args)]
pub struct DockerConfig {
    /// Docker engine address: `unix:///var/run/docker.sock`, `tcp://host:2375` or
    /// `http://host:2375`. Default: the local socket.
    #[arg(
        id = "docker_host",
        value_name = "HOST",
        long = "docker-host",
        env = "DOCKER_HOST"
    )]
    pub host: Option<String>,
    /// Image name prefix; workers run `<prefix><service>:<tag>`.
    #[arg(
        id = "docker_image_prefix",
        value_name = "IMAGE_PREFIX",
        long = "docker-image-prefix",
        env = "REDLINE_DOCKER_IMAGE_PREFIX",
        default_value = "redline/"
    )]
    pub image_prefix: String,
    /// Image tag of the worker images.
    #[arg(
        id = "docker_image_tag",
        value_name = "IMAGE_TAG",
        long = "docker-image-tag",
        env = "REDLINE_DOCKER_IMAGE_TAG",
        default_value = "latest"
    )]
    pub image_tag: String,
    /// Network of the worker containers: `host` (they reach Redis and the RPC on the host's
    /// 127.0.0.1, as `make run BACKEND=docker` needs), `bridge`, or a user network's name.
    #[arg(
        id = "docker_network",
        value_name = "NETWORK",
        long = "docker-network",
        env = "REDLINE_DOCKER_NETWORK",
        default_value = "host"
    )]
    pub network: String,
    /// Deployment name, written to every container's `redline.deployment` label and name:
    /// managers with different names on one engine leave each other's workers alone.
    #[arg(
        id = "docker_deployment",
        value_name = "DEPLOYMENT",
        long = "docker-deployment",
        env = "REDLINE_DOCKER_DEPLOYMENT",
        default_value = "redline"
    )]
    pub deployment: String,
    /// Chain manifest on the Docker host, mounted read-only into every worker at
    /// /etc/redline/manifest.json (and REDLINE_MANIFEST set to it). It must be world-readable:
    /// the images run as nobody.
    #[arg(
        id = "docker_manifest",
        value_name = "MANIFEST",
        long = "docker-manifest",
        env = "REDLINE_DOCKER_MANIFEST"
    )]
    pub manifest: Option<PathBuf>,
    /// Extra worker environment, `KEY=VALUE`; repeat the flag (`;`-separated in the env var).
    /// Overrides what the manager passes on.
    #[arg(
        id = "docker_env",
        value_name = "ENV",
        long = "docker-env",
        env = "REDLINE_DOCKER_ENV",
        value_delimiter = ';'
    )]
    pub env: Vec<String>,
    /// Extra bind mounts, `HOST_PATH:CONTAINER_PATH[:ro]`; repeat the flag (`,`-separated in
    /// the env var).
    #[arg(
        id = "docker_mounts",
        value_name = "MOUNTS",
        long = "docker-mount",
        env = "REDLINE_DOCKER_MOUNTS",
        value_delimiter = ','
    )]
    pub mounts: Vec<String>,
    /// Seconds a stopping worker gets between SIGTERM and SIGKILL to finish its jobs.
    #[arg(
        id = "docker_stop_grace_secs",
        value_name = "STOP_GRACE_SECS",
        long = "docker-stop-grace-secs",
        env = "REDLINE_DOCKER_STOP_GRACE_SECS",
        default_value_t = 10
    )]
    pub stop_grace_secs: u32,
    /// Memory limit of each worker container in MiB (default: none).
    #[arg(
        id = "docker_memory_mb",
        value_name = "MEMORY_MB",
        long = "docker-memory-mb",
        env = "REDLINE_DOCKER_MEMORY_MB"
    )]
    pub memory_mb: Option<u64>,
    /// CPU limit of each worker container in cores, e.g. `0.5` (default: none).
    #[arg(
        id = "docker_cpus",
        value_name = "CPUS",
        long = "docker-cpus",
        env = "REDLINE_DOCKER_CPUS"
    )]
    pub cpus: Option<f64>,
    /// Run Docker's init (tini) as pid 1 so signals reach the worker and zombies are reaped.
    #[arg(
        id = "docker_init",
        value_name = "INIT",
        long = "docker-init",
        env = "REDLINE_DOCKER_INIT",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub init: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            image_prefix: "redline/".into(),
            image_tag: "latest".into(),
            network: "host".into(),
            deployment: "redline".into(),
            manifest: None,
            env: Vec::new(),
            mounts: Vec::new(),
            stop_grace_secs: 10,
            memory_mb: None,
            cpus: None,
            init: true,
        }
    }
}

fn config_error(field: &'static str, problem: impl Into<String>) -> ScalerError {
    ScalerError::config(BACKEND, field, problem)
}

/// A Docker container name part: what the engine accepts (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn is_docker_name(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl DockerConfig {
    /// Checks every flag; errors name the flag.
    pub fn validate(&self) -> Result<(), ScalerError> {
        if !is_docker_name(&self.deployment) {
            return Err(config_error(
                "--docker-deployment",
                format!(
                    "`{}` must be letters, digits, `_`, `.` or `-`, starting with a letter or digit",
                    self.deployment
                ),
            ));
        }
        self.images().validate(WorkerImageFlags {
            backend: BACKEND,
            prefix: "--docker-image-prefix",
            tag: "--docker-image-tag",
        })?;
        if self.network.trim().is_empty() {
            return Err(config_error("--docker-network", "is empty"));
        }
        if let Some(path) = &self.manifest {
            if !path.is_absolute() {
                return Err(config_error(
                    "--docker-manifest",
                    format!(
                        "`{}` must be an absolute path (the engine resolves it on its host)",
                        path.display()
                    ),
                ));
            }
        }
        parse_env_entries(BACKEND, "--docker-env", &self.env)?;
        for mount in &self.mounts {
            let parts: Vec<&str> = mount.split(':').collect();
            let well_formed = match parts.as_slice() {
                [host, container] => host.starts_with('/') && container.starts_with('/'),
                [host, container, mode] => {
                    host.starts_with('/')
                        && container.starts_with('/')
                        && matches!(*mode, "ro" | "rw")
                }
                _ => false,
            };
            if !well_formed {
                return Err(config_error(
                    "--docker-mount",
                    format!(
                        "`{mount}` is not HOST_PATH:CONTAINER_PATH[:ro|rw] with absolute paths"
                    ),
                ));
            }
        }
        if self.memory_mb == Some(0) {
            return Err(config_error("--docker-memory-mb", "must be above 0"));
        }
        if let Some(cpus) = self.cpus {
            if !(cpus.is_finite() && cpus > 0.0) {
                return Err(config_error(
                    "--docker-cpus",
                    format!("{cpus} must be a number of cores above 0"),
                ));
            }
        }
        Ok(())
    }

    /// The worker images, `--docker-image-prefix` and `--docker-image-tag`.
    pub fn images(&self) -> WorkerImage<'_> {
        WorkerImage {
            prefix: &self.image_prefix,
            tag: &self.image_tag,
        }
    }

    /// The image workers of `kind` run.
    pub fn image(&self, kind: WorkerKind) -> String {
        self.images().of(kind)
    }
}

/// A container of ours, as a listing shows it.
#[derive(Debug, Clone)]
struct Worker {
    id: String,
    name: String,
    state: ContainerSummaryStateEnum,
    created: i64,
}

impl Worker {
    fn from_summary(summary: ContainerSummary) -> Option<Worker> {
        let id = summary.id?;
        let name = summary
            .names
            .and_then(|names| names.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_string())
            .unwrap_or_else(|| id.chars().take(12).collect());
        Some(Worker {
            id,
            name,
            state: summary.state.unwrap_or(ContainerSummaryStateEnum::EMPTY),
            created: summary.created.unwrap_or_default(),
        })
    }

    fn is_running(&self) -> bool {
        self.state == ContainerSummaryStateEnum::RUNNING
    }

    /// Alive but not (yet) doing work: created, restarting or paused.
    fn is_pending(&self) -> bool {
        matches!(
            self.state,
            ContainerSummaryStateEnum::CREATED
                | ContainerSummaryStateEnum::RESTARTING
                | ContainerSummaryStateEnum::PAUSED
        )
    }

    /// Exited or dead: its process is gone and the container only holds its logs.
    fn is_orphan(&self) -> bool {
        matches!(
            self.state,
            ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD
        )
    }
}

/// Workers as Docker containers. See the module docs.
pub struct DockerScaler {
    docker: Docker,
    config: DockerConfig,
    /// Environment of every worker: the manager's, then `--docker-env`.
    env: Vec<(String, String)>,
    /// The last count asked for per kind; before the first ask (a restarted manager), the
    /// live count.
    desired: Mutex<HashMap<WorkerKind, u32>>,
    /// One reconcile at a time, so two calls never both create the missing workers.
    reconcile: tokio::sync::Mutex<()>,
    /// Makes container names unique within this process.
    sequence: AtomicU64,
    handoff: Option<WalletHandoff>,
}

impl std::fmt::Debug for DockerScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerScaler")
            .field("config", &self.config.deployment)
            .field("env", &env::keys(&self.env))
            .finish()
    }
}

fn backend_error(operation: impl Into<String>, message: impl std::fmt::Display) -> ScalerError {
    ScalerError::backend(BACKEND, operation, message)
}

/// The engine's status code of a failed call, if it answered at all.
fn status_code(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl DockerScaler {
    /// Connects to the engine (`--docker-host`, else the local socket), agrees on an API
    /// version and checks it answers. `worker_env` is the environment every worker gets
    /// (`REDIS_URL`, queue settings, `RUST_LOG`, `MNEMONIC`…); `--docker-env` entries override
    /// it.
    pub async fn connect(
        config: DockerConfig,
        worker_env: Vec<(String, String)>,
    ) -> Result<Self, ScalerError> {
        config.validate()?;
        // A stop waits out the grace period inside one API call.
        let timeout = API_TIMEOUT_SECS.max(u64::from(config.stop_grace_secs) + 30);
        let host = config
            .host
            .as_deref()
            .filter(|host| !host.is_empty())
            .unwrap_or(DEFAULT_DOCKER_HOST);
        let docker = if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(host, timeout, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_socket(host, timeout, bollard::API_DEFAULT_VERSION)
        }
        .map_err(|error| {
            config_error(
                "--docker-host",
                format!("cannot reach the Docker engine at {host}: {error}"),
            )
        })?;
        // Older engines (this machine's speaks API 1.41) refuse a client that asks for a
        // newer API than theirs.
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|error| backend_error("negotiating the API version", error))?;
        docker
            .ping()
            .await
            .map_err(|error| backend_error("ping", error))?;
        let env = env::with_entries(BACKEND, "--docker-env", worker_env, &config.env)?;
        Ok(DockerScaler {
            docker,
            config,
            env,
            desired: Mutex::new(HashMap::new()),
            reconcile: tokio::sync::Mutex::new(()),
            sequence: AtomicU64::new(0),
            handoff: None,
        })
    }

    /// Frees an exited liquidator's wallet slots before its replacement starts.
    pub fn with_wallet_handoff(mut self, handoff: WalletHandoff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The engine client, for callers (tests, `make run`) that inspect containers.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    fn desired_counts(&self) -> MutexGuard<'_, HashMap<WorkerKind, u32>> {
        // Nothing panics while holding it.
        self.desired
            .lock()
            .expect("the desired-count lock is never poisoned")
    }

    /// Label filters selecting this deployment's containers, of one kind or all.
    fn filters(&self, kind: Option<WorkerKind>) -> HashMap<String, Vec<String>> {
        let mut labels = vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_DEPLOYMENT}={}", self.config.deployment),
        ];
        if let Some(kind) = kind {
            labels.push(format!("{LABEL_KIND}={}", kind.service()));
        }
        HashMap::from([("label".to_string(), labels)])
    }

    /// Every container of ours (of `kind`, or all kinds), whatever its state.
    async fn list(&self, kind: Option<WorkerKind>) -> Result<Vec<Worker>, ScalerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&self.filters(kind))
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| backend_error("listing containers", error))?;
        Ok(containers
            .into_iter()
            .filter_map(Worker::from_summary)
            .collect())
    }

    /// The containers of `kind` on the engine now, by name and state (for tests and logs).
    pub async fn containers(&self, kind: WorkerKind) -> Result<Vec<(String, String)>, ScalerError> {
        Ok(self
            .list(Some(kind))
            .await?
            .into_iter()
            .map(|worker| (worker.name, worker.state.to_string()))
            .collect())
    }

    /// Removes our containers that exited or died (of `kind`, or all kinds), logging each
    /// one's exit status and last log lines first. Returns how many it removed.
    pub async fn remove_orphans(&self, kind: Option<WorkerKind>) -> Result<usize, ScalerError> {
        let orphans: Vec<Worker> = self
            .list(kind)
            .await?
            .into_iter()
            .filter(Worker::is_orphan)
            .collect();
        for orphan in &orphans {
            self.remove_orphan(orphan).await?;
        }
        Ok(orphans.len())
    }

    async fn remove_orphan(&self, orphan: &Worker) -> Result<(), ScalerError> {
        let exit_code = self
            .docker
            .inspect_container(&orphan.id, None)
            .await
            .ok()
            .and_then(|inspect| inspect.state)
            .and_then(|state| state.exit_code);
        let tail = self.log_tail(&orphan.id).await;
        warn!(
            container = %orphan.name,
            state = %orphan.state,
            exit_code = ?exit_code,
            last_logs = %tail,
            "removing a worker container that exited"
        );
        self.remove(orphan).await
    }

    /// The last lines a container wrote, for the log line that explains its death.
    async fn log_tail(&self, id: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(ORPHAN_LOG_LINES)
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut tail = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            tail.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        tail.trim_end().to_string()
    }

    /// Removes a container, whatever its state; one already gone is fine.
    async fn remove(&self, worker: &Worker) -> Result<(), ScalerError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self
            .docker
            .remove_container(&worker.id, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            // 404: already gone; 409: removal already in progress.
            Err(error) if matches!(status_code(&error), Some(404 | 409)) => Ok(()),
            Err(error) => Err(backend_error(format!("removing {}", worker.name), error)),
        }
    }

    /// SIGTERM, the grace period, SIGKILL, then removal.
    async fn stop_and_remove(&self, worker: &Worker) -> Result<(), ScalerError> {
        let grace = i32::try_from(self.config.stop_grace_secs).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(grace).build();
        match self.docker.stop_container(&worker.id, Some(options)).await {
            // 304: not running; 404: gone already.
            Ok(()) => {}
            Err(error) if matches!(status_code(&error), Some(304 | 404)) => {}
            Err(error) => return Err(backend_error(format!("stopping {}", worker.name), error)),
        }
        self.remove(worker).await
    }

    /// A container name no other container has: deployment, service, time and a counter.
    fn container_name(&self, kind: WorkerKind) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos() as u64;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        // Mixing in the pid keeps two managers started in the same nanosecond apart.
        let unique = nanos ^ (u64::from(std::process::id()) << 40) ^ sequence;
        format!(
            "redline-{}-{}-{:x}",
            self.config.deployment,
            kind.service(),
            unique & 0xffff_ffff_ffff
        )
    }

    fn container_body(&self, kind: WorkerKind, name: &str) -> ContainerCreateBody {
        let mut env: Vec<String> = self
            .env
            .iter()
            .filter(|(key, _)| key != "QUEUE_CONSUMER")
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        env.push(format!("QUEUE_CONSUMER={name}"));
        let mut binds = self.config.mounts.clone();
        if let Some(manifest) = &self.config.manifest {
            binds.push(format!(
                "{}:{CONTAINER_MANIFEST_PATH}:ro",
                manifest.display()
            ));
            env.retain(|entry| !entry.starts_with("REDLINE_MANIFEST="));
            env.push(format!("REDLINE_MANIFEST={CONTAINER_MANIFEST_PATH}"));
        }
        let labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_DEPLOYMENT.to_string(), self.config.deployment.clone()),
            (LABEL_KIND.to_string(), kind.service().to_string()),
        ]);
        ContainerCreateBody {
            image: Some(self.config.image(kind)),
            env: Some(env),
            labels: Some(labels),
            stop_timeout: Some(i64::from(self.config.stop_grace_secs)),
            host_config: Some(HostConfig {
                network_mode: Some(self.config.network.clone()),
                binds: (!binds.is_empty()).then_some(binds),
                init: Some(self.config.init),
                memory: self
                    .config
                    .memory_mb
                    .map(|mb| i64::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)),
                nano_cpus: self.config.cpus.map(|cpus| (cpus * 1e9) as i64),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates and starts one worker of `kind`.
    async fn start_worker(&self, kind: WorkerKind) -> Result<String, ScalerError> {
        let name = self.container_name(kind);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), self.container_body(kind, &name))
            .await
            .map_err(|error| match status_code(&error) {
                Some(404) => backend_error(
                    format!("creating {name}"),
                    format!(
                        "image {} not found on the engine; build it with `make docker_build` \
                         (or set --docker-image-prefix/--docker-image-tag): {error}",
                        self.config.image(kind)
                    ),
                ),
                _ => backend_error(format!("creating {name}"), error),
            })?;
        if let Err(error) = self.docker.start_container(&created.id, None).await {
            // A container that cannot start (a bad mount, an unknown network) would only
            // become an orphan: remove it now and report why.
            let _ = self
                .remove(&Worker {
                    id: created.id.clone(),
                    name: name.clone(),
                    state: ContainerSummaryStateEnum::CREATED,
                    created: 0,
                })
                .await;
            return Err(backend_error(format!("starting {name}"), error));
        }
        Ok(name)
    }
}

impl Scaler for DockerScaler {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn observe(&self, kind: WorkerKind) -> Result<WorkerCount, ScalerError> {
        let workers = self.list(Some(kind)).await?;
        let running = workers.iter().filter(|w| w.is_running()).count() as u32;
        let pending = workers.iter().filter(|w| w.is_pending()).count() as u32;
        let desired = self
            .desired_counts()
            .get(&kind)
            .copied()
            .unwrap_or(running + pending);
        Ok(WorkerCount {
            desired,
            running,
            pending,
        })
    }

    async fn scale_to(&self, kind: WorkerKind, desired: u32) -> Result<(), ScalerError> {
        let _reconciling = self.reconcile.lock().await;
        self.desired_counts().insert(kind, desired);

        let mut live = Vec::new();
        for worker in self.list(Some(kind)).await? {
            if worker.is_orphan() {
                self.remove_orphan(&worker).await?;
                let liquidator = kind == WorkerKind::Liquidator;
                if let Some(handoff) = self.handoff.as_ref().filter(|_| liquidator) {
                    // Its name is its queue consumer name, the owner of its leases.
                    handoff.worker_exited(&worker.name).await;
                }
            } else if worker.is_running() || worker.is_pending() {
                live.push(worker);
            }
            // Removing or stopping: on its way out, counted by nobody.
        }

        // Created but never started: a manager stopped between the two calls. Adopt them.
        for worker in live
            .iter()
            .filter(|w| w.state == ContainerSummaryStateEnum::CREATED)
        {
            if let Err(error) = self.docker.start_container(&worker.id, None).await {
                warn!(container = %worker.name, %error, "cannot start an adopted container; removing it");
                self.remove(worker).await?;
            }
        }

        let current = live.len() as u32;
        if current < desired {
            let missing = desired - current;
            let started =
                futures::future::join_all((0..missing).map(|_| self.start_worker(kind))).await;
            let mut names = Vec::new();
            let mut first_error = None;
            for result in started {
                match result {
                    Ok(name) => names.push(name),
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
            info!(%kind, from = current, to = desired, started = ?names, "scaled up");
            if let Some(error) = first_error {
                return Err(error);
            }
        } else if current > desired {
            // Not-yet-running first (they hold no jobs), then the newest.
            live.sort_by_key(|w| (w.is_running(), std::cmp::Reverse(w.created)));
            let extra: Vec<Worker> = live
                .into_iter()
                .take((current - desired) as usize)
                .collect();
            let names: Vec<&str> = extra.iter().map(|w| w.name.as_str()).collect();
            info!(%kind, from = current, to = desired, stopping = ?names, "scaling down");
            let stopped =
                futures::future::join_all(extra.iter().map(|w| self.stop_and_remove(w))).await;
            stopped.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ScalerError> {
        let _reconciling = self.reconcile.lock().await;
        let workers = self.list(None).await?;
        info!(
            deployment = %self.config.deployment,
            containers = workers.len(),
            "stopping every worker container"
        );
        let stopped =
            futures::future::join_all(workers.iter().map(|w| self.stop_and_remove(w))).await;
        self.desired_counts().clear();
        stopped.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::testing::{config_field, parse};

    #[test]
    fn clap_defaults_match_default() {
        let parsed: DockerConfig = parse(&[]);
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", DockerConfig::default())
        );
        assert_eq!(
            parsed.image(WorkerKind::HealthChecker),
            "redline/health-checker:latest"
        );
    }

    #[test]
    fn flags_parse() {
        let parsed: DockerConfig = parse(&[
            "--docker-env",
            "RUST_LOG=debug",
            "--docker-env",
            "RPC_URLS=http://a,http://b",
            "--docker-mount",
            "/data:/data:ro",
            "--docker-init",
            "false",
        ]);
        assert_eq!(parsed.env, ["RUST_LOG=debug", "RPC_URLS=http://a,http://b"]);
        assert!(!parsed.init);
        parsed.validate().unwrap();
    }

    #[test]
    fn validation_names_the_flag() {
        let bad = |change: fn(&mut DockerConfig)| {
            let mut config = DockerConfig::default();
            change(&mut config);
            config_field(config.validate().unwrap_err())
        };
        assert_eq!(bad(|c| c.deployment = "-x".into()), "--docker-deployment");
        assert_eq!(bad(|c| c.deployment = "a b".into()), "--docker-deployment");
        assert_eq!(bad(|c| c.image_tag = "v1 2".into()), "--docker-image-tag");
        assert_eq!(
            bad(|c| c.image_prefix = "my repo/".into()),
            "--docker-image-prefix"
        );
        assert_eq!(bad(|c| c.network = " ".into()), "--docker-network");
        assert_eq!(
            bad(|c| c.manifest = Some("rel/m.json".into())),
            "--docker-manifest"
        );
        assert_eq!(bad(|c| c.env = vec!["NOVALUE".into()]), "--docker-env");
        assert_eq!(bad(|c| c.env = vec!["1X=2".into()]), "--docker-env");
        assert_eq!(
            bad(|c| c.mounts = vec!["data:/data".into()]),
            "--docker-mount"
        );
        assert_eq!(
            bad(|c| c.mounts = vec!["/a:/b:rx".into()]),
            "--docker-mount"
        );
        assert_eq!(bad(|c| c.memory_mb = Some(0)), "--docker-memory-mb");
        assert_eq!(bad(|c| c.cpus = Some(f64::NAN)), "--docker-cpus");
        assert_eq!(bad(|c| c.cpus = Some(0.0)), "--docker-cpus");
    }
}
