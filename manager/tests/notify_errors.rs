//! The manager's errors reach the operator's `--notify-errors` target: a block feed that goes
//! silent (the alarm) and a backend that cannot start workers, each posted to a webhook (a local
//! HTTP receiver standing in for Slack), against a real redis-server and the process backend.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cosmwasm_std::Timestamp;
use redline_chain::{BlockStream, NewBlock};
use redline_manager::autoscale::ScalingPolicy;
use redline_manager::control::{Manager, Settings};
use redline_manager::metrics::ManagerMetrics;
use redline_manager::scaler::process::{ProcessConfig, ProcessScaler};
use redline_pipeline::index::IndexNamespace;
use redline_pipeline::jobs::ProtocolKind;
use redline_pipeline::queue::QueueConfig;
use redline_service::metrics::HealthReport;
use redline_service::notify::NotifyArgs;
use testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IDLE_WORKER: &str = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile true; do sleep 0.05; done\n";

fn write_service(dir: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, IDLE_WORKER).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A loopback HTTP server that answers 200 and keeps each JSON body's `text`.
async fn receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let texts: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = texts.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                    seen.lock()
                        .unwrap()
                        .push(json["text"].as_str().unwrap_or_default().to_string());
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (addr, texts)
}

fn policy(min: u32) -> ScalingPolicy {
    ScalingPolicy {
        min_workers: min,
        max_workers: 2,
        initial_block_time_s: 0.4,
        ..ScalingPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_feed_and_a_failing_backend_are_notified() {
    let server = RedisServer::start().unwrap();
    let queue_config = QueueConfig::with_url(server.url());
    let dir = tempfile::tempdir().unwrap();
    // Health checkers can start; the liquidator binary is missing, so the one liquidator the
    // policy asks for cannot.
    write_service(dir.path(), "health-checker");
    let scaler = Arc::new(ProcessScaler::new(ProcessConfig {
        bin_dir: dir.path().to_path_buf(),
        env: Vec::new(),
        args: BTreeMap::new(),
        stop_grace: Duration::from_secs(5),
    }));
    let (addr, texts) = receiver().await;
    let notifier = NotifyArgs {
        notify_errors: vec![format!("slack:http://{addr}/services/T0/B0/SECRET")],
        notify_timeout_ms: 2_000,
        notify_backoff_ms: 50,
        ..NotifyArgs::default()
    }
    .start()
    .unwrap();
    let registry = prometheus::Registry::new();
    let metrics = ManagerMetrics::register(&registry).unwrap();
    let health: HealthReport = Arc::new(tokio::sync::RwLock::new(serde_json::json!({})));
    let settings = Settings {
        queue: queue_config.clone(),
        index: IndexNamespace::new("redline", "test-1", ProtocolKind::RedBank),
        block_time: Duration::from_millis(400),
        deadline_blocks: 1,
        poll: Duration::from_millis(20),
        block_alarm: Duration::from_secs(1),
        blocks_stream_max_len: 1_000,
        backlog_scan_cap: 10_000,
        attempts_stream: "redline:liquidator:test-1:attempts".into(),
        capital_key: "redline:liquidator:test-1:capital".into(),
        print_liquidations: true,
        health_checker_policy: policy(0),
        liquidator_policy: policy(1),
    };
    let manager = Manager::start_notifying(settings, scaler, metrics, health, notifier.clone())
        .await
        .unwrap();
    let (blocks_tx, blocks_rx) = tokio::sync::mpsc::channel(16);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(
        manager.run(BlockStream::from_channel(blocks_rx, None), async move {
            let _ = stop_rx.await;
        }),
    );
    blocks_tx
        .send(NewBlock {
            height: 7,
            time: Timestamp::from_seconds(1_700_000_007),
            txs: Vec::new(),
        })
        .await
        .unwrap();

    // No block after 7: the alarm. And no liquidator can start: the scaler's error.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = texts.lock().unwrap().clone();
        let alarm = seen
            .iter()
            .any(|t| t == "[redline] manager error: ALARM: no new block after height 7; the block feed keeps reconnecting");
        let scaling = seen.iter().any(|t| {
            t.starts_with("[redline] manager error: scaling the liquidator workers fails")
        });
        if alarm && scaling {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected the alarm and the scaling error, got {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    run.await.unwrap().unwrap();
    assert!(notifier.flush(Duration::from_secs(10)).await);
    // Each error once: the alarm repeats in the log every second, not in the channel.
    let seen = texts.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|t| t.contains("ALARM")).count(),
        1,
        "{seen:?}"
    );
}
