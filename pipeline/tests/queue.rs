//! The Redis Streams job queue against real, throwaway redis-server processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redline_pipeline::queue::{
    Delivery, Job, Queue, QueueConfig, QueueError, RedisStreamQueue, JOB_FIELD,
};
use serde::{Deserialize, Serialize};
use testkit::{wait_for, RedisServer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CheckAccount {
    account: String,
    n: u64,
}

impl Job for CheckAccount {
    const KIND: &'static str = "check-account";
}

fn job(n: u64) -> CheckAccount {
    CheckAccount {
        account: format!("osmo1account{n}"),
        n,
    }
}

const VISIBILITY_MS: u64 = 200;
const QUEUE: &str = "checks";

fn config(server: &RedisServer, consumer: &str) -> QueueConfig {
    QueueConfig {
        queue_consumer: Some(consumer.to_owned()),
        queue_visibility_timeout_ms: VISIBILITY_MS,
        queue_block_ms: 50,
        ..QueueConfig::with_url(server.url())
    }
}

async fn queue(server: &RedisServer, consumer: &str) -> RedisStreamQueue<CheckAccount> {
    queue_with(server, consumer, |_| {}).await
}

/// [`queue`] with `change` applied to the test config first.
async fn queue_with(
    server: &RedisServer,
    consumer: &str,
    change: impl FnOnce(&mut QueueConfig),
) -> RedisStreamQueue<CheckAccount> {
    let mut config = config(server, consumer);
    change(&mut config);
    RedisStreamQueue::connect(&config, QUEUE)
        .await
        .expect("connect to the test redis")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn raw_connection(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn enqueue_fetch_ack_leaves_nothing_pending() {
    let server = RedisServer::start().unwrap();
    let queue = queue(&server, "worker-1").await;

    let id = queue.enqueue(&job(1)).await.unwrap();
    let deliveries = queue.fetch(10, ms(100)).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.id, id);
    assert_eq!(delivery.job, job(1));
    assert_eq!(delivery.deliveries, 1);
    assert_eq!(delivery.version, 1);
    assert!(delivery.enqueued_at_ms > 0);

    let backlog = queue.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.lag), (1, 0));

    assert!(queue.ack(delivery).await.unwrap());
    assert!(
        !queue.ack(delivery).await.unwrap(),
        "a second ack finds nothing"
    );
    assert_eq!(queue.pending_count().await.unwrap(), 0);
    assert_eq!(queue.lag().await.unwrap(), 0);
    assert!(queue.fetch(10, ms(50)).await.unwrap().is_empty());

    // Acknowledged entries are deleted: the stream holds only its backlog.
    let mut raw = raw_connection(&server).await;
    let length: u64 = redis::cmd("XLEN")
        .arg(queue.stream())
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(length, 0);

    let counters = queue.counters();
    assert_eq!(
        (counters.enqueued, counters.delivered, counters.acked),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn backlog_counts_pending_and_unread_jobs() {
    let server = RedisServer::start().unwrap();
    let producer = queue(&server, "producer").await;
    let consumer = queue(&server, "worker-1").await;

    let ids = producer
        .enqueue_batch(&(0..5).map(job).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids keep batch order");
    assert_eq!(producer.lag().await.unwrap(), 5);

    let taken = consumer.fetch(2, ms(50)).await.unwrap();
    let taken_n: Vec<u64> = taken.iter().map(|d| d.job.n).collect();
    assert_eq!(taken_n, vec![0, 1], "jobs come out in enqueue order");
    let backlog = producer.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.lag, backlog.dead_letters),
        (2, 3, 0)
    );

    assert_eq!(consumer.ack_many(&taken).await.unwrap(), 2);
    let backlog = producer.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.lag), (0, 3));
}

/// The heart of the queue: a consumer killed between fetch and ack loses nothing; a live
/// consumer takes the job over after the visibility timeout, and it is processed once.
#[tokio::test]
async fn job_of_a_killed_consumer_is_reclaimed_and_processed_once() {
    let server = RedisServer::start().unwrap();
    let producer = queue(&server, "producer").await;
    let id = producer.enqueue(&job(7)).await.unwrap();

    // The doomed consumer takes the job and is killed in the middle of its work.
    let doomed = queue(&server, "doomed").await;
    let (fetched_tx, fetched_rx) = tokio::sync::oneshot::channel();
    let doomed_task = tokio::spawn(async move {
        // No earlier than this can the job have been handed out.
        let asked_at = std::time::Instant::now();
        let deliveries = doomed.fetch(1, ms(1000)).await.unwrap();
        fetched_tx.send((deliveries.len(), asked_at)).unwrap();
        // "Working" forever; the effect never happens and there is no ack.
        std::future::pending::<()>().await;
    });
    let (fetched, fetched_at) = fetched_rx.await.unwrap();
    assert_eq!(fetched, 1);
    doomed_task.abort();
    assert!(doomed_task.await.unwrap_err().is_cancelled());

    let survivor = queue(&server, "survivor").await;
    assert_eq!(survivor.pending_count().await.unwrap(), 1);

    let mut processed: HashMap<String, u32> = HashMap::new();
    while fetched_at.elapsed() < ms(VISIBILITY_MS * 5) {
        for delivery in survivor.fetch(10, ms(50)).await.unwrap() {
            // Redis counts idle time in whole milliseconds: allow for the rounding.
            assert!(
                fetched_at.elapsed() >= ms(VISIBILITY_MS - 2),
                "reclaimed within the visibility timeout"
            );
            assert_eq!(delivery.job, job(7));
            assert_eq!(
                delivery.deliveries, 2,
                "second delivery, after the dead one"
            );
            *processed.entry(delivery.id.to_string()).or_default() += 1;
            survivor.ack(&delivery).await.unwrap();
        }
    }
    assert_eq!(processed, HashMap::from([(id.to_string(), 1)]));
    assert_eq!(survivor.pending_count().await.unwrap(), 0);
    assert_eq!(survivor.counters().reclaimed, 1);
    assert_eq!(survivor.backlog().await.unwrap().dead_letters, 0);
}

#[tokio::test]
async fn job_failing_max_deliveries_times_lands_in_dead_letter() {
    let server = RedisServer::start().unwrap();
    let queue = queue_with(&server, "worker-1", |c| c.queue_max_deliveries = 3).await;
    let id = queue.enqueue(&job(3)).await.unwrap();

    // The worker fails every time: it never acknowledges.
    let mut attempts = Vec::new();
    let started = std::time::Instant::now();
    while queue.backlog().await.unwrap().dead_letters == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never dead-lettered"
        );
        for delivery in queue.fetch(10, ms(50)).await.unwrap() {
            attempts.push(delivery.deliveries);
        }
    }
    assert_eq!(attempts, vec![1, 2, 3]);

    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.source_id, id.to_string());
    assert_eq!(
        letter.reason,
        "not acknowledged after 3 deliveries (limit 3)"
    );
    assert_eq!(letter.deliveries, 4);
    assert_eq!(letter.consumer, "worker-1");
    let original: serde_json::Value =
        serde_json::from_slice(letter.original(JOB_FIELD).unwrap()).unwrap();
    assert_eq!(original["kind"], "check-account");
    assert_eq!(original["payload"]["n"], 3);

    // Gone from the queue for good.
    assert_eq!(queue.pending_count().await.unwrap(), 0);
    assert!(queue
        .fetch(10, ms(VISIBILITY_MS * 2))
        .await
        .unwrap()
        .is_empty());
    assert!(queue.fetch(10, ms(50)).await.unwrap().is_empty());
    assert_eq!(queue.counters().dead_lettered, 1);
}

#[tokio::test]
async fn released_job_comes_back_at_once_and_counts_as_a_delivery() {
    let server = RedisServer::start().unwrap();
    let queue = queue_with(&server, "worker-1", |c| {
        c.queue_visibility_timeout_ms = 60_000;
    })
    .await;
    queue.enqueue(&job(1)).await.unwrap();

    let first = queue.fetch(1, ms(50)).await.unwrap().remove(0);
    queue.release(&first).await.unwrap();
    let second = queue.fetch(1, ms(50)).await.unwrap();
    assert_eq!(second.len(), 1, "no need to wait out the 60 s timeout");
    assert_eq!(second[0].id, first.id);
    assert_eq!(second[0].deliveries, 2);
    assert!(queue.ack(&second[0]).await.unwrap());
}

#[tokio::test]
async fn extended_job_is_not_reclaimed() {
    // Longer than the other tests' timeout, so a loaded machine's late wake-ups cannot make a
    // heartbeat miss it.
    const VISIBILITY_MS: u64 = 600;
    let server = RedisServer::start().unwrap();
    let visibility = |c: &mut QueueConfig| c.queue_visibility_timeout_ms = VISIBILITY_MS;
    let slow = queue_with(&server, "slow", visibility).await;
    let other = queue_with(&server, "other", visibility).await;
    slow.enqueue(&job(1)).await.unwrap();
    let delivery = slow.fetch(1, ms(50)).await.unwrap().remove(0);

    // Work that takes twice the visibility timeout, with a heartbeat every quarter timeout.
    for _ in 0..8 {
        tokio::time::sleep(ms(VISIBILITY_MS / 4)).await;
        assert!(slow.extend_visibility(&delivery).await.unwrap());
        assert!(other.reclaim_stale(10).await.unwrap().is_empty());
    }
    assert!(slow.ack(&delivery).await.unwrap());
    assert_eq!(other.pending_count().await.unwrap(), 0);
}

#[tokio::test]
async fn caller_can_dead_letter_a_hopeless_job() {
    let server = RedisServer::start().unwrap();
    let queue = queue(&server, "worker-1").await;
    queue.enqueue(&job(9)).await.unwrap();
    let delivery: Delivery<CheckAccount> = queue.fetch(1, ms(50)).await.unwrap().remove(0);
    queue
        .dead_letter(&delivery, "account does not exist")
        .await
        .unwrap();
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "account does not exist");
    assert_eq!(letters[0].deliveries, 1);
    assert_eq!(queue.pending_count().await.unwrap(), 0);
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_and_the_worker_carries_on() {
    let server = RedisServer::start().unwrap();
    let queue = queue(&server, "worker-1").await;
    let mut raw = raw_connection(&server).await;

    let garbage: [Vec<(Vec<u8>, Vec<u8>)>; 5] = [
        vec![(b"job".to_vec(), b"{not json".to_vec())],
        vec![(b"payload".to_vec(), b"{}".to_vec())],
        vec![(
            b"job".to_vec(),
            br#"{"kind":"check-account","version":1,"enqueued_at_ms":1,"payload":{"n":1}}"#
                .to_vec(),
        )],
        vec![(
            b"job".to_vec(),
            br#"{"kind":"swap","version":1,"enqueued_at_ms":1,"payload":{}}"#.to_vec(),
        )],
        vec![(vec![0xff, 0xfe], vec![0x00, 0x9f])],
    ];
    for fields in &garbage {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(queue.stream()).arg("*");
        for (name, value) in fields {
            cmd.arg(name.as_slice()).arg(value.as_slice());
        }
        let _: String = cmd.query_async(&mut raw).await.unwrap();
    }
    let good = queue.enqueue(&job(42)).await.unwrap();

    let deliveries = queue.fetch(10, ms(100)).await.unwrap();
    assert_eq!(deliveries.len(), 1, "only the good job comes out");
    assert_eq!(deliveries[0].id, good);
    assert_eq!(deliveries[0].job, job(42));
    assert!(queue.ack(&deliveries[0]).await.unwrap());

    let reasons: Vec<String> = queue
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|letter| letter.reason)
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    assert!(
        reasons[0].starts_with("`job` field is not a job envelope: key must be a string"),
        "{}",
        reasons[0]
    );
    assert_eq!(reasons[1], "message has no `job` field (fields: payload)");
    assert!(
        reasons[2].contains("payload does not decode: missing field `account`"),
        "{}",
        reasons[2]
    );
    assert_eq!(
        reasons[3],
        "job kind `swap` where `check-account` was expected"
    );
    assert!(
        reasons[4].starts_with("message has no `job` field"),
        "{}",
        reasons[4]
    );

    // The original bytes travel with the dead letter, non-UTF-8 ones included.
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters[0].original(JOB_FIELD), Some(&b"{not json"[..]));
    assert_eq!(letters[4].original_fields[0].1, vec![0x00, 0x9f]);

    assert_eq!(queue.pending_count().await.unwrap(), 0);
    let counters = queue.counters();
    assert_eq!((counters.dead_lettered, counters.malformed), (5, 5));
    assert!(queue.fetch(10, ms(50)).await.unwrap().is_empty());
}

#[tokio::test]
async fn three_consumers_process_every_job_exactly_once() {
    const JOBS: u64 = 300;
    let server = RedisServer::start().unwrap();
    let producer = queue(&server, "producer").await;
    let processed: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let mut workers = Vec::new();
    for name in ["worker-a", "worker-b", "worker-c"] {
        let consumer = queue(&server, name).await;
        let processed = Arc::clone(&processed);
        let stop = stop_rx.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = 0u64;
            while !*stop.borrow() {
                for delivery in consumer.fetch(7, ms(50)).await.unwrap() {
                    *processed.lock().unwrap().entry(delivery.job.n).or_default() += 1;
                    assert!(consumer.ack(&delivery).await.unwrap());
                    mine += 1;
                }
            }
            mine
        }));
    }

    // Jobs arrive while the consumers run, in batches and one by one.
    producer
        .enqueue_batch(&(0..JOBS / 2).map(job).collect::<Vec<_>>())
        .await
        .unwrap();
    for n in JOBS / 2..JOBS {
        producer.enqueue(&job(n)).await.unwrap();
    }

    wait_for(
        || {
            let done = processed.lock().unwrap().len() as u64;
            async move { done == JOBS }
        },
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    // Linger a little: a duplicate delivery would show up now.
    tokio::time::sleep(ms(VISIBILITY_MS * 2)).await;
    stop_tx.send(true).unwrap();
    let mut per_worker = Vec::new();
    for worker in workers {
        per_worker.push(worker.await.unwrap());
    }

    let processed = processed.lock().unwrap().clone();
    assert_eq!(processed.len() as u64, JOBS);
    assert!(
        processed.values().all(|&times| times == 1),
        "a job ran twice"
    );
    assert_eq!(per_worker.iter().sum::<u64>(), JOBS, "{per_worker:?}");
    let backlog = producer.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.lag, backlog.dead_letters),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn queue_recovers_when_redis_restarts_empty() {
    let mut server = RedisServer::start().unwrap();
    let queue = queue(&server, "worker-1").await;
    queue.enqueue(&job(1)).await.unwrap();
    let before = queue.fetch(1, ms(50)).await.unwrap();
    queue.ack(&before[0]).await.unwrap();

    // A crash without persistence: stream and consumer group are gone.
    server.restart().unwrap();

    // The connection comes back on its own; the group is re-created on first use. Until then
    // calls fail, as they would in a worker loop that logs and retries.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        match queue.enqueue(&job(2)).await {
            Ok(id) => break id,
            Err(error) if std::time::Instant::now() < deadline => {
                eprintln!("enqueue while redis restarts: {error}");
                tokio::time::sleep(ms(50)).await;
            }
            Err(error) => panic!("queue did not recover: {error}"),
        }
    };
    let got = loop {
        match queue.fetch(1, ms(50)).await {
            Ok(deliveries) if !deliveries.is_empty() => break deliveries,
            Ok(_) => {}
            Err(error) => eprintln!("fetch while redis restarts: {error}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fetch did not recover"
        );
        tokio::time::sleep(ms(50)).await;
    };
    assert_eq!(got[0].job, job(2));
    assert_eq!(got[0].id, fresh);
    assert!(queue.ack(&got[0]).await.unwrap());
}

#[tokio::test]
async fn config_validation_names_the_flag() {
    type BreakConfig = fn(&mut QueueConfig);
    let cases: [(&str, BreakConfig); 9] = [
        ("--redis-url", |c| c.redis.redis_url = "not a url".into()),
        ("--redis-url", |c| {
            c.redis.redis_url = "http://127.0.0.1:6379".into()
        }),
        ("--redis-url", |c| {
            c.redis.redis_url = "redis://127.0.0.1:6379/zero".into()
        }),
        ("--queue-visibility-timeout-ms", |c| {
            c.queue_visibility_timeout_ms = 0
        }),
        ("--queue-block-ms", |c| c.queue_block_ms = 0),
        ("--queue-max-deliveries", |c| c.queue_max_deliveries = 0),
        ("--queue-group", |c| c.queue_group = String::new()),
        ("--queue-consumer", |c| {
            c.queue_consumer = Some("two words".into())
        }),
        ("--queue-max-len", |c| c.queue_max_len = Some(0)),
    ];
    for (flag, break_it) in cases {
        let mut config = QueueConfig::default();
        break_it(&mut config);
        let error = config.validate().unwrap_err();
        assert_eq!(error.flag, flag, "{error}");
        assert!(error.to_string().starts_with(flag), "{error}");
        // connect() validates before it touches the network.
        match RedisStreamQueue::<CheckAccount>::connect(&config, QUEUE).await {
            Err(QueueError::Config(e)) => assert_eq!(e.flag, flag),
            other => panic!("expected a config error for {flag}, got {other:?}"),
        }
    }

    match RedisStreamQueue::<CheckAccount>::connect(&QueueConfig::default(), "two words").await {
        Err(QueueError::InvalidName { name }) => assert_eq!(name, "two words"),
        other => panic!("expected an invalid-name error, got {other:?}"),
    }

    for good in [
        "redis://127.0.0.1:6379",
        "redis://:s3cret@cache.internal:6380/2",
        "redis://user:s3cret@cache.internal",
        "rediss://:s3cret@cache.example.com:6380",
    ] {
        QueueConfig::with_url(good).validate().unwrap();
    }
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error_without_the_password() {
    let port = testkit::free_port().unwrap();
    let config = QueueConfig::with_url(format!("redis://:hunter2@127.0.0.1:{port}"));
    let error = RedisStreamQueue::<CheckAccount>::connect(&config, QUEUE)
        .await
        .unwrap_err();
    let text = error.to_string();
    eprintln!("{text}");
    assert!(matches!(error, QueueError::Connect { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
