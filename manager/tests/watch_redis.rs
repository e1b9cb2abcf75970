//! The queue watches against a real redis-server: every enqueue is seen by the tail even when
//! a consumer acknowledges (and deletes) the jobs at once; the oldest outstanding block and the
//! backlog per block come from the stream.

mod support;

use std::time::Duration;

use redline_manager::watch::{connect, HealthCheckWatch};
use redline_pipeline::jobs::{HealthCheckJob, HEALTH_CHECK_QUEUE};
use redline_pipeline::queue::{Queue, QueueConfig, RedisStreamQueue};
use support::job;
use testkit::RedisServer;

#[tokio::test]
async fn the_tail_sees_jobs_that_were_consumed_at_once() {
    let server = RedisServer::start().unwrap();
    let config = QueueConfig::with_url(server.url());
    let queue: RedisStreamQueue<HealthCheckJob> =
        RedisStreamQueue::connect(&config, HEALTH_CHECK_QUEUE)
            .await
            .unwrap();
    let stream = config.stream_key(HEALTH_CHECK_QUEUE);
    let watch = HealthCheckWatch::new(connect(&config).await.unwrap(), stream.clone(), 10_000);
    let (sender, mut enqueued) = tokio::sync::mpsc::channel(64);
    let tail = HealthCheckWatch::spawn_tail(&config, stream, sender).unwrap();
    // Let the tail start reading.
    tokio::time::sleep(Duration::from_millis(300)).await;

    queue
        .enqueue_batch(&[job(7, 0, 100), job(7, 1, 50)])
        .await
        .unwrap();
    // A consumer takes and acknowledges them straight away.
    let deliveries = queue.fetch(10, Duration::from_millis(500)).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    queue.ack_many(&deliveries).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), enqueued.recv())
        .await
        .expect("the tail reported the enqueue")
        .unwrap();
    assert_eq!((event.height, event.jobs, event.accounts), (7, 2, 150));
    assert_eq!(watch.oldest().await.unwrap(), (None, 0));

    // Two blocks outstanding: the oldest and the backlog per block.
    queue
        .enqueue_batch(&[job(8, 0, 10), job(8, 1, 20)])
        .await
        .unwrap();
    queue.enqueue_batch(&[job(9, 0, 30)]).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), enqueued.recv())
            .await
            .expect("the tail reported the enqueues")
            .unwrap();
        seen.push((event.height, event.jobs, event.accounts));
    }
    assert_eq!(seen, vec![(8, 2, 30), (9, 1, 30)]);
    assert_eq!(watch.oldest().await.unwrap(), (Some(8), 3));
    let backlog = watch.backlog().await.unwrap();
    assert_eq!((backlog.jobs, backlog.accounts), (3, 60));
    assert_eq!(backlog.of(8).accounts, 30);
    assert_eq!(backlog.up_to(8).jobs, 2);
    assert_eq!(backlog.up_to(9).accounts, 60);
    assert!(!backlog.truncated);
    tail.abort();
}
