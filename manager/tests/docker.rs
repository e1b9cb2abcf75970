//! The `docker` backend against this machine's real Docker engine, with the images
//! `make docker_build` makes (built here when missing). Workers run for real: each container
//! starts the service binary, which connects to a throwaway Redis and an in-process devnet on
//! the host's 127.0.0.1 (host network) and stays up.
//!
//! They gate on `testkit::docker_or_skip`: without a Docker engine they print
//! a loud SKIPPED line and pass, unless `CI=true` or `REDLINE_REQUIRE_DOCKER=1`, where they
//! fail; where an engine answers they must run.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, KillContainerOptionsBuilder};
use bollard::Docker;
use redline_manager::scaler::docker::{
    DockerConfig, DockerScaler, LABEL_DEPLOYMENT, LABEL_KIND, LABEL_MANAGED,
};
use redline_manager::scaler::{Scaler, ScalerError, WorkerCount, WorkerKind};
use testkit::{self, wait_for, RedisServer};

/// Services whose images these tests run.
const IMAGES_NEEDED: &str = "health-checker liquidator";

/// The Docker engine to test against, or `None` when `test` is skipped under the shared policy
/// ([`testkit::docker_or_skip`]). Once the CLI has reached an engine, an API client that
/// cannot is a failure, not a skip.
async fn docker_or_skip(test: &str) -> Option<Docker> {
    if !testkit::docker_or_skip(test) {
        return None;
    }
    let docker = Docker::connect_with_local_defaults().unwrap_or_else(|error| {
        panic!("{test}: the docker CLI reaches an engine, the API client cannot: {error}")
    });
    let docker = docker
        .negotiate_version()
        .await
        .unwrap_or_else(|error| panic!("{test}: negotiating the Docker API version: {error}"));
    if let Err(error) = docker.ping().await {
        panic!("{test}: the docker CLI reaches an engine, the API ping fails: {error}");
    }
    Some(docker)
}

/// The worker images, current with the sources (`testkit::docker_images`); one test binary
/// builds at most once.
async fn ensure_images(_docker: &Docker) {
    static BUILD: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILD
        .get_or_init(|| async {
            let services: Vec<&'static str> = IMAGES_NEEDED.split_whitespace().collect();
            tokio::task::spawn_blocking(move || testkit::docker_images(&services))
                .await
                .expect("the image build task")
                .expect("building the worker images");
        })
        .await;
}

/// The engine with the worker images built, and the Redis and devnet the workers use; `None`
/// when `test` is skipped ([`docker_or_skip`]).
async fn ready_to_run_workers(test: &str) -> Option<(Docker, Backends)> {
    let docker = docker_or_skip(test).await?;
    ensure_images(&docker).await;
    Some((docker, start_backends().await))
}

/// Kills container `name` (SIGKILL) and waits until `scaler` counts no running `kind` worker.
async fn kill_and_wait_gone(docker: &Docker, scaler: &DockerScaler, kind: WorkerKind, name: &str) {
    docker
        .kill_container(
            name,
            Some(
                KillContainerOptionsBuilder::default()
                    .signal("SIGKILL")
                    .build(),
            ),
        )
        .await
        .unwrap();
    wait_for(
        || async { scaler.observe(kind).await.unwrap().running == 0 },
        Duration::from_secs(30),
    )
    .await
    .expect("the killed worker stops");
}

/// A deployment name no other test (or earlier run) uses.
fn unique_deployment(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes every container of a deployment when dropped, so a failed test leaves none behind.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let listed = std::process::Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label={LABEL_DEPLOYMENT}={}", self.0),
            ])
            .output();
        if let Ok(output) = listed {
            let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .arg("rm")
                    .arg("-f")
                    .args(&ids)
                    .output();
            }
        }
    }
}

/// Redis and a devnet for the workers to connect to, and the manifest pointing at both.
struct Backends {
    redis: RedisServer,
    chain_id: String,
    node: redline_devnet::rpc::NodeHandle,
    _dir: tempfile::TempDir,
    manifest: PathBuf,
}

async fn start_backends() -> Backends {
    let redis = RedisServer::start().expect("starting redis-server");
    let node_config = redline_devnet::rpc::NodeConfig {
        chain: redline_devnet::chain::ChainConfig {
            block_time: Duration::from_millis(500),
            ..Default::default()
        },
        port: 0,
        ..Default::default()
    };
    let scenario = redline_devnet::scenario::ScenarioConfig {
        accounts: 20,
        seed: 7,
        ..Default::default()
    };
    let (node, _info, manifest) = redline_devnet::scenario::start(node_config, scenario)
        .await
        .expect("starting the devnet");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("manifest.json");
    manifest.write(&path).expect("writing the manifest");
    // The images run as nobody: the mounted file must be world-readable.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .expect("making the manifest readable");
    Backends {
        redis,
        chain_id: manifest.chain_id.clone(),
        node,
        _dir: dir,
        manifest: path,
    }
}

fn config(deployment: &str, manifest: &Path) -> DockerConfig {
    DockerConfig {
        deployment: deployment.to_string(),
        manifest: Some(manifest.to_path_buf()),
        network: "host".into(),
        stop_grace_secs: 3,
        ..DockerConfig::default()
    }
}

fn worker_env(backends: &Backends, deployment: &str) -> Vec<(String, String)> {
    vec![
        ("REDIS_URL".into(), backends.redis.url()),
        ("QUEUE_PREFIX".into(), deployment.to_string()),
        ("RUST_LOG".into(), "info".into()),
        ("LOG_FORMAT".into(), "json".into()),
    ]
}

async fn wait_for_count(scaler: &DockerScaler, kind: WorkerKind, want: WorkerCount) {
    let result = wait_for(
        || async { scaler.observe(kind).await.ok() == Some(want) },
        Duration::from_secs(60),
    )
    .await;
    if result.is_err() {
        panic!(
            "{kind}: wanted {want:?}, engine shows {:?}: {:?}",
            scaler.observe(kind).await,
            scaler.containers(kind).await
        );
    }
}

fn count(desired: u32, running: u32) -> WorkerCount {
    WorkerCount {
        desired,
        running,
        pending: 0,
    }
}

async fn logs(docker: &Docker, name: &str) -> String {
    use futures::StreamExt;
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text
}

/// Every container of `kind` is still running after `period`: the binary started, connected
/// to Redis and the devnet (it exits at start when either fails) and stays up.
async fn assert_stay_up(docker: &Docker, scaler: &DockerScaler, kind: WorkerKind) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let containers = scaler.containers(kind).await.unwrap();
    for (name, state) in &containers {
        let log = logs(docker, name).await;
        assert_eq!(state, "running", "{name} did not stay up; its logs:\n{log}");
        assert!(!log.trim().is_empty(), "{name} wrote no logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_adopts_and_removes_orphans() {
    let Some((docker, backends)) = ready_to_run_workers("scales_adopts_and_removes_orphans").await
    else {
        return;
    };
    let deployment = unique_deployment("scale");
    let _cleanup = Cleanup(deployment.clone());
    let kind = WorkerKind::HealthChecker;

    let scaler = DockerScaler::connect(
        config(&deployment, &backends.manifest),
        worker_env(&backends, &deployment),
    )
    .await
    .expect("connecting to the engine");
    assert_eq!(scaler.backend(), "docker");
    assert_eq!(scaler.observe(kind).await.unwrap(), WorkerCount::default());

    // 0 → 2: two containers run the health-checker binary and stay up.
    scaler.scale_to(kind, 2).await.unwrap();
    wait_for_count(&scaler, kind, count(2, 2)).await;
    assert_stay_up(&docker, &scaler, kind).await;
    let first_two = scaler.containers(kind).await.unwrap();
    assert_eq!(first_two.len(), 2);
    let log = logs(&docker, &first_two[0].0).await;
    eprintln!("{} logs:\n{log}", first_two[0].0);
    assert!(
        log.contains("health-checker") || log.contains("health_checker"),
        "the container runs the health-checker: {log}"
    );
    // Idempotent: asking again changes nothing.
    scaler.scale_to(kind, 2).await.unwrap();
    assert_eq!(scaler.containers(kind).await.unwrap(), first_two);

    // 2 → 1: one stopped and removed, not just stopped.
    scaler.scale_to(kind, 1).await.unwrap();
    wait_for_count(&scaler, kind, count(1, 1)).await;
    assert_eq!(scaler.containers(kind).await.unwrap().len(), 1);

    // A new scaler (a restarted manager) adopts the running container.
    let survivor = scaler.containers(kind).await.unwrap();
    drop(scaler);
    let scaler = DockerScaler::connect(
        config(&deployment, &backends.manifest),
        worker_env(&backends, &deployment),
    )
    .await
    .unwrap();
    assert_eq!(scaler.observe(kind).await.unwrap(), count(1, 1));
    scaler.scale_to(kind, 1).await.unwrap();
    assert_eq!(scaler.containers(kind).await.unwrap(), survivor);

    // An orphan (one of ours that exited: here a worker given a flag it rejects) is removed
    // by the next reconcile; the running worker is kept.
    let orphan = format!("redline-{deployment}-orphan");
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_DEPLOYMENT.to_string(), deployment.clone()),
        (LABEL_KIND.to_string(), kind.service().to_string()),
    ]);
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&orphan)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some("redline/health-checker:latest".into()),
                cmd: Some(vec!["--no-such-flag".into()]),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    docker.start_container(&orphan, None).await.unwrap();
    wait_for(
        || async {
            scaler
                .containers(kind)
                .await
                .unwrap()
                .iter()
                .any(|(name, state)| *name == orphan && state == "exited")
        },
        Duration::from_secs(30),
    )
    .await
    .expect("the orphan exits");
    assert_eq!(scaler.observe(kind).await.unwrap(), count(1, 1));
    scaler.scale_to(kind, 1).await.unwrap();
    assert_eq!(scaler.containers(kind).await.unwrap(), survivor);

    // A worker that dies is replaced: kill it, reconcile, and a new one runs.
    kill_and_wait_gone(&docker, &scaler, kind, &survivor[0].0).await;
    scaler.scale_to(kind, 1).await.unwrap();
    wait_for_count(&scaler, kind, count(1, 1)).await;
    let replacement = scaler.containers(kind).await.unwrap();
    assert_eq!(replacement.len(), 1);
    assert_ne!(replacement[0].0, survivor[0].0);

    // 1 → 0: nothing of ours is left.
    scaler.scale_to(kind, 0).await.unwrap();
    assert_eq!(scaler.observe(kind).await.unwrap(), count(0, 0));
    assert!(scaler.containers(kind).await.unwrap().is_empty());
    backends.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_kind_and_leaves_other_deployments() {
    let Some((docker, backends)) = ready_to_run_workers("shutdown_stops_every_kind").await else {
        return;
    };
    let ours = unique_deployment("shutdown");
    let theirs = unique_deployment("neighbour");
    let _cleanup = (Cleanup(ours.clone()), Cleanup(theirs.clone()));

    let scaler = DockerScaler::connect(
        config(&ours, &backends.manifest),
        worker_env(&backends, &ours),
    )
    .await
    .unwrap();
    let neighbour = DockerScaler::connect(
        config(&theirs, &backends.manifest),
        worker_env(&backends, &theirs),
    )
    .await
    .unwrap();
    scaler.scale_to(WorkerKind::HealthChecker, 1).await.unwrap();
    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    neighbour
        .scale_to(WorkerKind::HealthChecker, 1)
        .await
        .unwrap();
    wait_for_count(&scaler, WorkerKind::Liquidator, count(1, 1)).await;
    wait_for_count(&scaler, WorkerKind::HealthChecker, count(1, 1)).await;
    wait_for_count(&neighbour, WorkerKind::HealthChecker, count(1, 1)).await;
    // The liquidator binary runs too (its mnemonic comes from the devnet's manifest).
    assert_stay_up(&docker, &scaler, WorkerKind::Liquidator).await;

    scaler.shutdown().await.unwrap();
    for kind in WorkerKind::ALL {
        assert!(scaler.containers(kind).await.unwrap().is_empty());
        assert_eq!(scaler.observe(kind).await.unwrap(), WorkerCount::default());
    }
    assert_eq!(
        neighbour.observe(WorkerKind::HealthChecker).await.unwrap(),
        count(1, 1),
        "another deployment's workers are left alone"
    );
    neighbour.shutdown().await.unwrap();
    backends.node.shutdown().await;
}

/// A liquidator container killed with SIGKILL keeps its wallet slots leased until the leases
/// expire (ten minutes here). The scaler removes it as an orphan and frees its slots first, so
/// the replacement container leases the same slots: the same wallets, funded already. Without
/// the handoff it would lease the next free ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_liquidator_containers_wallet_slots_go_to_its_replacement() {
    use redline_manager::handoff::WalletHandoff;
    use redline_pipeline::redis_conn::{self, ConnectOptions};
    use std::collections::BTreeMap;

    let Some((docker, backends)) =
        ready_to_run_workers("a_dead_liquidator_containers_wallet_slots").await
    else {
        return;
    };
    let deployment = unique_deployment("handoff");
    let _cleanup = Cleanup(deployment.clone());
    let redis = redis_conn::connect(&backends.redis.queue_config(), ConnectOptions::default())
        .await
        .unwrap();
    let mut env = worker_env(&backends, &deployment);
    env.push(("WALLET_SLOT_TTL_MS".into(), "600000".into()));
    let scaler = DockerScaler::connect(config(&deployment, &backends.manifest), env)
        .await
        .unwrap()
        .with_wallet_handoff(WalletHandoff::new(
            redis.clone(),
            &deployment,
            &backends.chain_id,
        ));
    let holders_key = format!("{deployment}:liquidator:{}:slot-holders", backends.chain_id);
    let slots_of = |worker: String| {
        let (redis, key) = (redis.clone(), holders_key.clone());
        async move {
            let holders: BTreeMap<u32, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut redis.clone())
                .await
                .unwrap();
            holders
                .into_iter()
                .filter(|(_, holder)| *holder == worker)
                .map(|(slot, _)| slot)
                .collect::<Vec<u32>>()
        }
    };

    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    wait_for_count(&scaler, WorkerKind::Liquidator, count(1, 1)).await;
    let dead = scaler.containers(WorkerKind::Liquidator).await.unwrap()[0]
        .0
        .clone();
    wait_for(
        || async { !slots_of(dead.clone()).await.is_empty() },
        Duration::from_secs(60),
    )
    .await
    .expect("the liquidator leases its wallet slots");
    let slots = slots_of(dead.clone()).await;

    kill_and_wait_gone(&docker, &scaler, WorkerKind::Liquidator, &dead).await;
    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    wait_for_count(&scaler, WorkerKind::Liquidator, count(1, 1)).await;
    let replacement = scaler.containers(WorkerKind::Liquidator).await.unwrap()[0]
        .0
        .clone();
    assert_ne!(replacement, dead);
    let taken_over = wait_for(
        || async { slots_of(replacement.clone()).await == slots },
        Duration::from_secs(60),
    )
    .await;
    assert!(
        taken_over.is_ok(),
        "the replacement leased {:?}, the dead one held {slots:?}; its logs:\n{}",
        slots_of(replacement.clone()).await,
        logs(&docker, &replacement).await
    );
    scaler.shutdown().await.unwrap();
    backends.node.shutdown().await;
}

#[tokio::test]
async fn a_missing_image_names_the_build_target() {
    let Some(_docker) = docker_or_skip("a_missing_image_names_the_build_target").await else {
        return;
    };
    let deployment = unique_deployment("noimage");
    let _cleanup = Cleanup(deployment.clone());
    let scaler = DockerScaler::connect(
        DockerConfig {
            deployment: deployment.clone(),
            image_prefix: "redline-test-absent/".into(),
            ..DockerConfig::default()
        },
        Vec::new(),
    )
    .await
    .unwrap();
    let error = scaler
        .scale_to(WorkerKind::Liquidator, 1)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ScalerError::Backend { .. }), "{message}");
    assert!(
        message.contains("redline-test-absent/liquidator:latest")
            && message.contains("make docker_build"),
        "{message}"
    );
    assert!(scaler
        .containers(WorkerKind::Liquidator)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_bad_engine_address_names_the_flag() {
    let error = DockerScaler::connect(
        DockerConfig {
            host: Some("unix:///nonexistent/docker.sock".into()),
            ..DockerConfig::default()
        },
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            ScalerError::Config {
                field: "--docker-host",
                ..
            }
        ),
        "{error}"
    );
}
