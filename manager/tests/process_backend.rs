//! The `process` backend with real child processes: small shell-script "services" in a temp
//! directory stand in for the service binaries (the end-to-end test runs the real ones).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use redline_manager::scaler::process::{ProcessConfig, ProcessScaler};
use redline_manager::scaler::{Scaler, ScalerError, WorkerKind};

/// A worker that records its environment, then idles until SIGTERM.
const POLITE: &str = r#"#!/bin/sh
env > "$DUMP_DIR/env-$$"
echo "worker $$ up"
trap 'echo "worker $$ got SIGTERM"; exit 0' TERM
while true; do sleep 0.05; done
"#;

/// A worker that ignores SIGTERM.
const STUBBORN: &str = r#"#!/bin/sh
trap '' TERM
while true; do sleep 0.05; done
"#;

fn write_service(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

fn config(dir: &Path, grace: Duration) -> ProcessConfig {
    ProcessConfig {
        bin_dir: dir.to_path_buf(),
        env: vec![
            ("DUMP_DIR".into(), dir.display().to_string()),
            ("REDIS_URL".into(), "redis://127.0.0.1:1".into()),
        ],
        args: BTreeMap::new(),
        stop_grace: grace,
    }
}

async fn wait_until<F: Fn() -> bool>(what: &str, timeout: Duration, check: F) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn scales_replaces_and_stops_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    write_service(dir.path(), "health-checker", POLITE);
    write_service(dir.path(), "liquidator", POLITE);
    let config = config(dir.path(), Duration::from_secs(5));
    config.validate(&["health-checker", "liquidator"]).unwrap();
    let scaler = ProcessScaler::new(config);
    assert_eq!(scaler.backend(), "process");

    scaler.scale_to(WorkerKind::HealthChecker, 3).await.unwrap();
    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    let count = scaler.observe(WorkerKind::HealthChecker).await.unwrap();
    assert_eq!((count.desired, count.running), (3, 3));
    let pids = scaler.pids("health-checker").await;
    assert_eq!(pids.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(pids.values().all(|&pid| alive(pid)));
    // Idempotent: asking again changes nothing.
    scaler.scale_to(WorkerKind::HealthChecker, 3).await.unwrap();
    assert_eq!(scaler.pids("health-checker").await, pids);

    // The worker sees the manager's settings, and no queue consumer name of the manager's.
    let first = pids[&0];
    let dump = dir.path().join(format!("env-{first}"));
    wait_until("the env dump", Duration::from_secs(5), || dump.exists()).await;
    wait_until("the env dump to fill", Duration::from_secs(5), || {
        std::fs::read_to_string(&dump).is_ok_and(|env| env.contains("METRICS_ADDR"))
    })
    .await;
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(env.contains("REDIS_URL=redis://127.0.0.1:1"), "{env}");
    assert!(env.contains("METRICS_ADDR=127.0.0.1:0"), "{env}");
    assert!(!env.contains("QUEUE_CONSUMER="), "{env}");

    // kill -9 one: reported as gone, then replaced under the same number.
    let victim = pids[&1];
    // SAFETY: a pid of our own child.
    unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = scaler.observe(WorkerKind::HealthChecker).await.unwrap();
        if count.running == 2 {
            assert_eq!(count.desired, 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed worker was never reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(scaler.unexpected_exits("health-checker").await, 1);
    // It ran for less than 10 s, so its replacement waits out the first backoff step.
    let deadline = Instant::now() + Duration::from_secs(5);
    let replaced = loop {
        scaler.scale_to(WorkerKind::HealthChecker, 3).await.unwrap();
        let pids = scaler.pids("health-checker").await;
        if pids.len() == 3 {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "the killed worker was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(replaced[&0], pids[&0]);
    assert_ne!(replaced[&1], victim);
    assert!(alive(replaced[&1]));

    // Scale down: the highest numbers go, by SIGTERM; they are no longer counted at once.
    scaler.scale_to(WorkerKind::HealthChecker, 1).await.unwrap();
    let count = scaler.observe(WorkerKind::HealthChecker).await.unwrap();
    assert_eq!((count.desired, count.running), (1, 1));
    assert_eq!(
        scaler
            .pids("health-checker")
            .await
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![0]
    );
    for number in [1, 2] {
        let pid = replaced[&number];
        wait_until("a stopped worker to exit", Duration::from_secs(5), || {
            !alive(pid)
        })
        .await;
    }
    // Stopping is not an unexpected exit.
    assert_eq!(scaler.unexpected_exits("health-checker").await, 1);

    // Shutdown leaves no process behind and refuses new workers.
    let mut all: Vec<u32> = scaler.pids("health-checker").await.into_values().collect();
    all.extend(scaler.pids("liquidator").await.into_values());
    assert_eq!(all.len(), 2);
    scaler.shutdown().await.unwrap();
    for pid in all {
        assert!(!alive(pid), "worker {pid} outlived shutdown");
    }
    assert_eq!(
        scaler
            .observe(WorkerKind::Liquidator)
            .await
            .unwrap()
            .running,
        0
    );
    let refused = scaler
        .scale_to(WorkerKind::Liquidator, 1)
        .await
        .unwrap_err();
    assert!(matches!(refused, ScalerError::Backend { .. }), "{refused}");
}

#[tokio::test]
async fn a_worker_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    write_service(dir.path(), "liquidator", STUBBORN);
    let scaler = ProcessScaler::new(config(dir.path(), Duration::from_millis(500)));
    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    let pid = scaler.pids("liquidator").await[&0];
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    scaler.shutdown().await.unwrap();
    assert!(!alive(pid));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "it should have taken the grace period, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn runs_any_service_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_service(dir.path(), "collector", POLITE);
    let scaler = ProcessScaler::new(config(dir.path(), Duration::from_secs(5)));
    scaler.scale_service("collector", 1).await.unwrap();
    let count = scaler.observe_service("collector").await;
    assert_eq!((count.desired, count.running), (1, 1));
    let pid = scaler.pids("collector").await[&0];
    scaler.shutdown().await.unwrap();
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_crash_loop_is_restarted_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    write_service(
        dir.path(),
        "health-checker",
        &format!("#!/bin/sh\necho start >> {}\nexit 3\n", starts.display()),
    );
    let scaler = ProcessScaler::new(config(dir.path(), Duration::from_secs(1)));
    let began = Instant::now();
    while began.elapsed() < Duration::from_millis(2_500) {
        scaler.scale_to(WorkerKind::HealthChecker, 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let started = std::fs::read_to_string(&starts).unwrap().lines().count();
    // Restarts after 0.5 s, then 1 s more (t ≈ 1.5 s), then 2 s more (t ≈ 3.5 s): 3 starts in
    // 2.5 s, where restarting at once would have made about a hundred.
    assert!((2..=4).contains(&started), "{started} starts");
    assert!(scaler.unexpected_exits("health-checker").await >= 2);
    scaler.shutdown().await.unwrap();
}

#[test]
fn a_missing_binary_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), Duration::from_secs(1));
    let error = config
        .validate(&["health-checker"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--bin-dir"), "{error}");
    assert!(error.contains("health-checker"), "{error}");
    let mut config = config;
    config.bin_dir = dir.path().join("nowhere");
    let error = config.validate(&[]).unwrap_err().to_string();
    assert!(error.contains("is not a directory"), "{error}");
}

/// A liquidator stand-in that leases the first free wallet slot the way the liquidator does
/// (`SET … NX PX`, token `<host>-<pid>:<random>`, then notes itself in the holders hash), writes
/// the slot it got to `slot-<pid>`, then idles until SIGTERM. Its lease lasts ten minutes.
const SLOT_LEASING: &str = r#"#!/bin/sh
owner="$(cat /proc/sys/kernel/hostname)-$$"
base="redline:liquidator:devnet-1"
for slot in 1 2 3 4; do
  if [ "$(redis-cli -p "$SLOT_REDIS_PORT" SET "$base:slot:$slot" "$owner:00000000000000aa" NX PX 600000)" = "OK" ]; then
    redis-cli -p "$SLOT_REDIS_PORT" HSET "$base:slot-holders" "$slot" "$owner" > /dev/null
    echo "$slot" > "$DUMP_DIR/slot-$$"
    break
  fi
done
trap 'exit 0' TERM
while true; do sleep 0.05; done
"#;

/// A liquidator killed with SIGKILL leaves its wallet slot leased for the lease's ttl (ten
/// minutes here). The scaler knows it died: it frees the slot before starting the
/// replacement, which leases the same slot (the same, funded wallet) within the restart
/// backoff. Without the handoff the replacement would lease slot 3, a wallet nobody funded.
#[tokio::test]
async fn a_dead_liquidators_wallet_slot_goes_to_its_replacement() {
    use redline_manager::handoff::WalletHandoff;
    use redline_pipeline::redis_conn::{self, ConnectOptions};

    let server = testkit::RedisServer::start().unwrap();
    let redis = redis_conn::connect(&server.queue_config(), ConnectOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_service(dir.path(), "liquidator", SLOT_LEASING);
    let mut config = config(dir.path(), Duration::from_secs(5));
    config
        .env
        .push(("SLOT_REDIS_PORT".into(), server.port().to_string()));
    let scaler = ProcessScaler::new(config).with_wallet_handoff(WalletHandoff::new(
        redis.clone(),
        "redline",
        "devnet-1",
    ));
    let slot_of = |pid: u32| {
        let file = dir.path().join(format!("slot-{pid}"));
        std::fs::read_to_string(file)
            .ok()
            .and_then(|slot| slot.trim().parse::<u32>().ok())
    };

    scaler.scale_to(WorkerKind::Liquidator, 1).await.unwrap();
    let first = scaler.pids("liquidator").await[&0];
    wait_until("the first slot lease", Duration::from_secs(5), || {
        slot_of(first).is_some()
    })
    .await;
    scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
    let second = scaler.pids("liquidator").await[&1];
    wait_until("the second slot lease", Duration::from_secs(5), || {
        slot_of(second).is_some()
    })
    .await;
    assert_eq!((slot_of(first), slot_of(second)), (Some(1), Some(2)));

    // SAFETY: a pid of our own child.
    unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let replacement = loop {
        scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
        let pids = scaler.pids("liquidator").await;
        if let Some(&pid) = pids.get(&0).filter(|&&pid| pid != first) {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the killed liquidator was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    wait_until(
        "the replacement's slot lease",
        Duration::from_secs(5),
        || slot_of(replacement).is_some(),
    )
    .await;
    assert_eq!(
        slot_of(replacement),
        Some(1),
        "the replacement took the dead one's slot"
    );
    let holder: String = redis::cmd("GET")
        .arg("redline:liquidator:devnet-1:slot:1")
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert!(
        holder.starts_with(&format!(
            "{}:",
            redline_pipeline::queue::consumer_name_of(replacement)
        )),
        "{holder}"
    );
    scaler.shutdown().await.unwrap();
}
