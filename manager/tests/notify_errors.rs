//! The manager's errors reach the operator's `--notify-errors` target: a block feed that goes
//! silent (the alarm) and a backend that cannot start workers, each posted to a webhook (a local
//! HTTP receiver standing in for Slack), against a real redis-server and the process backend.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cosmwasm_std::Timestamp;
use redline_chain::NewBlock;
use redline_pipeline::queue::QueueConfig;
use redline_service::notify::NotifyArgs;
use support::{policy, process_scaler, run_manager, settings, write_service, Running};
use testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_feed_and_a_failing_backend_are_notified() {
    let server = RedisServer::start().unwrap();
    let queue_config = QueueConfig::with_url(server.url());
    let dir = tempfile::tempdir().unwrap();
    // Health checkers can start; the liquidator binary is missing, so the one liquidator the
    // policy asks for cannot.
    write_service(dir.path(), "health-checker");
    let scaler = process_scaler(dir.path());
    let (addr, texts) = receiver().await;
    let notifier = NotifyArgs {
        notify_errors: vec![format!("slack:http://{addr}/services/T0/B0/SECRET")],
        notify_timeout_ms: 2_000,
        notify_backoff_ms: 50,
        ..NotifyArgs::default()
    }
    .start()
    .unwrap();
    let settings = settings(&queue_config, policy(0, 2), policy(1, 2));
    let Running {
        blocks: blocks_tx,
        stop: stop_tx,
        run,
        ..
    } = run_manager(settings, scaler, notifier.clone()).await;
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
