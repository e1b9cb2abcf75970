//! The control loop against a real redis-server and real child processes, with the block feed
//! driven by the test (so that blocks can stop coming): a block whose jobs are done before the
//! next one is on time, one whose jobs are still queued is late, work wakes a pool scaled to
//! zero at once, a silent feed raises the alarm and the next block clears it, and shutdown
//! stops every worker.

mod support;

use std::path::Path;
use std::time::Duration;

use cosmwasm_std::Timestamp;
use redline_chain::NewBlock;
use redline_manager::control::blocks_stream_key;
use redline_manager::scaler::{Scaler, WorkerKind};
use redline_pipeline::jobs::{HealthCheckJob, HEALTH_CHECK_QUEUE};
use redline_pipeline::queue::{Queue, QueueConfig, RedisStreamQueue};
use redline_service::metrics::HealthReport;
use redline_service::notify::Notifier;
use support::{idle_process_backend, policy, run_manager, settings, Running};
use testkit::{eventually, wait_for, RedisServer};

fn block(height: u64) -> NewBlock {
    NewBlock {
        height,
        time: Timestamp::from_seconds(1_700_000_000 + height),
        txs: Vec::new(),
    }
}

fn job(height: u64, bucket: u32) -> HealthCheckJob {
    support::job(height, bucket, 100)
}

/// Waits until the manager's health report says `status`.
async fn wait_for_status(health: &HealthReport, status: &str) {
    wait_for(
        || async { health.read().await["status"] == status },
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("waiting for status {status}: {e}"));
}

/// Every block record so far: (height, status, jobs_missed).
async fn records(conn: &mut redis::aio::ConnectionManager, key: &str) -> Vec<(u64, String, u64)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .ids
        .iter()
        .map(|entry| {
            let raw: String = entry.get("record").unwrap();
            let record: serde_json::Value = serde_json::from_str(&raw).unwrap();
            (
                record["height"].as_u64().unwrap(),
                record["status"].as_str().unwrap().to_owned(),
                record["jobs_missed"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_alarm_wake_and_shutdown() {
    let server = RedisServer::start().unwrap();
    let queue_config = QueueConfig::with_url(server.url());
    let (_bin_dir, scaler) = idle_process_backend(&["health-checker", "liquidator"]);
    let settings = settings(&queue_config, policy(0, 2), policy(0, 1));
    let Running {
        metrics,
        health,
        blocks: blocks_tx,
        stop: stop_tx,
        run,
    } = run_manager(settings, scaler.clone(), Notifier::disabled()).await;
    // The collector's side and the health checkers' side of the queue, played by the test.
    let producer: RedisStreamQueue<HealthCheckJob> =
        RedisStreamQueue::connect(&queue_config, HEALTH_CHECK_QUEUE)
            .await
            .unwrap();
    let consumer: RedisStreamQueue<HealthCheckJob> =
        RedisStreamQueue::connect(&queue_config, HEALTH_CHECK_QUEUE)
            .await
            .unwrap();
    // Let the manager's tail start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        scaler
            .observe(WorkerKind::HealthChecker)
            .await
            .unwrap()
            .running,
        0,
        "no worker before there is work"
    );

    // Block 1: queued and done within the block.
    blocks_tx.send(block(1)).await.unwrap();
    producer
        .enqueue_batch(&[job(1, 0), job(1, 1)])
        .await
        .unwrap();
    // The work wakes the pool at once, without waiting for a block.
    let woken = scaler.clone();
    wait_for(
        || async {
            woken
                .observe(WorkerKind::HealthChecker)
                .await
                .unwrap()
                .running
                == 1
        },
        Duration::from_secs(5),
    )
    .await
    .expect("a health checker");
    let done = consumer
        .fetch(10, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    consumer.ack_many(&done).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Block 2: queued, one job never done.
    blocks_tx.send(block(2)).await.unwrap();
    producer
        .enqueue_batch(&[job(2, 0), job(2, 1)])
        .await
        .unwrap();
    let mut half = consumer.fetch(1, Duration::from_millis(500)).await.unwrap();
    consumer.ack(&half.remove(0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    blocks_tx.send(block(3)).await.unwrap();

    let conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    let key = blocks_stream_key(&queue_config.queue_prefix);
    let seen = eventually("two block records", Duration::from_secs(5), || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            let seen = records(&mut conn, &key).await;
            (seen.len() >= 2).then_some(seen)
        }
    })
    .await;
    assert_eq!(
        seen,
        vec![(1, "on_time".to_owned(), 0), (2, "late".to_owned(), 1)]
    );

    // No block for over a second: the alarm.
    wait_for_status(&health, "alarm").await;
    assert_eq!(metrics.block_alarm.get(), 1);
    blocks_tx.send(block(4)).await.unwrap();
    wait_for_status(&health, "ok").await;
    assert_eq!(metrics.block_alarm.get(), 0);
    assert_eq!(metrics.last_block_height.get(), 4);
    assert_eq!(metrics.blocks.with_label_values(&["late"]).get(), 1);

    // Shutdown stops every worker.
    let pids: Vec<u32> = scaler.pids("health-checker").await.into_values().collect();
    assert!(!pids.is_empty());
    stop_tx.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the manager stops")
        .unwrap()
        .unwrap();
    assert_eq!((summary.on_time, summary.late), (1, 1));
    assert!(summary.scale_ups >= 1);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} outlived the manager"
        );
    }
}
