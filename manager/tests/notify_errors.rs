//! The manager's errors reach the operator's `--notify-errors` target: a block feed that goes
//! silent (the alarm) and a backend that cannot start workers, each posted to a webhook (a local
//! HTTP receiver standing in for Slack), against a real redis-server and the process backend.

mod support;

use std::time::Duration;

use cosmwasm_std::Timestamp;
use redline_chain::NewBlock;
use redline_pipeline::queue::QueueConfig;
use redline_service::notify::NotifyArgs;
use support::{idle_process_backend, policy, run_manager, settings, Running};
use testkit::http::WebhookReceiver;
use testkit::{wait_for, RedisServer};

/// The Slack webhook's path (a credential in production).
const SLACK_PATH: &str = "/services/T0/B0/SECRET";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_feed_and_a_failing_backend_are_notified() {
    let server = RedisServer::start().unwrap();
    let queue_config = QueueConfig::with_url(server.url());
    // Health checkers can start; the liquidator binary is missing, so the one liquidator the
    // policy asks for cannot.
    let (_bin_dir, scaler) = idle_process_backend(&["health-checker"]);
    let receiver = WebhookReceiver::start().await.unwrap();
    let texts = || receiver.texts_to(SLACK_PATH, "text");
    let notifier = NotifyArgs {
        notify_errors: vec![format!("slack:{}", receiver.url(SLACK_PATH))],
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
    let waited = wait_for(
        || async {
            let seen = texts();
            let alarm = seen
                .iter()
                .any(|t| t == "[redline] manager error: ALARM: no new block after height 7; the block feed keeps reconnecting");
            let scaling = seen.iter().any(|t| {
                t.starts_with("[redline] manager error: scaling the liquidator workers fails")
            });
            alarm && scaling
        },
        Duration::from_secs(30),
    )
    .await;
    assert!(
        waited.is_ok(),
        "expected the alarm and the scaling error, got {:?}",
        texts()
    );
    let _ = stop_tx.send(());
    run.await.unwrap().unwrap();
    assert!(notifier.flush(Duration::from_secs(10)).await);
    // Each error once: the alarm repeats in the log every second, not in the channel.
    let seen = texts();
    assert_eq!(
        seen.iter().filter(|t| t.contains("ALARM")).count(),
        1,
        "{seen:?}"
    );
}
