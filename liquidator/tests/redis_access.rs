//! The `liquidator` binary against Redis as it runs in production: TLS (`rediss://`, a server
//! certificate from a private CA given with `REDIS_CA_CERT`) with a password read from
//! `REDIS_PASSWORD_FILE`, so the URL carries no secret; and a 3-node Redis Cluster over TLS with
//! a password, as ElastiCache runs (`REDIS_CLUSTER`, three seed URLs, a hash-tagged
//! `QUEUE_PREFIX`). Each time a
//! candidate pushed through that Redis is liquidated, recorded and acknowledged, the binary stops
//! cleanly, and the password never shows in its output.

mod support;

use std::process::Stdio;
use std::time::Duration;

use redline_pipeline::queue::Queue as _;
use support::{read_pipe, stop_with_sigterm, Harness, RedisSetup, BINARY};
use testkit::{wait_for, RedisOptions};

const PASSWORD: &str = "tls-and-auth-token-7f3a";

/// Starts the binary with `env` on top of the harness's manifest, has it liquidate one candidate
/// pushed through the harness's Redis, stops it with SIGTERM and returns its output.
async fn liquidate_one(h: &Harness, env: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _account, queue) = h
        .spawn_and_liquidate_first(
            h.liquidator_command(dir.path())
                .args(["--metrics-addr", "off"])
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::piped()),
        )
        .await;
    wait_for(
        || async { queue.pending_count().await.unwrap() == 0 },
        Duration::from_secs(30),
    )
    .await
    .expect("the job is acknowledged");

    stop_with_sigterm(&mut child).await;
    // The wallet slots were given back (lease scripts on the same Redis).
    assert!(!h.leases.is_held(&h.keys.wallet_slot(1)).await.unwrap());
    read_pipe(child.stderr.take()).await + &read_pipe(child.stdout.take()).await
}

/// A single server behind TLS that asks for the password.
fn tls_with_password() -> RedisOptions {
    RedisOptions {
        tls: true,
        password: Some(PASSWORD.into()),
        ..RedisOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_liquidates_on_a_tls_cluster() {
    // ElastiCache's setup: cluster mode, TLS in transit, an AUTH token.
    let h = Harness::start_with_redis(
        300,
        45,
        2,
        RedisSetup::Cluster(tls_with_password(), "{redline-e2e}".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        h.queue_config.redis.redis_url.matches("rediss://").count(),
        3
    );
    let ca = h.redis_server.ca_cert().unwrap();
    let output = liquidate_one(
        &h,
        &[
            ("REDIS_URL", h.queue_config.redis.redis_url.clone()),
            ("REDIS_CLUSTER", "true".into()),
            ("REDIS_CA_CERT", ca.display().to_string()),
            ("QUEUE_PREFIX", "{redline-e2e}".into()),
        ],
    )
    .await;
    assert!(
        !output.contains(PASSWORD),
        "the Redis password must never be logged"
    );
    // Everything the run wrote sits on the one node that owns the prefix's slot.
    let mut holding = Vec::new();
    for node in std::iter::once(&h.redis_server).chain(&h.cluster_nodes) {
        let keys: u64 = node
            .cli(&["DBSIZE".into()])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if keys > 0 {
            holding.push((node.port(), keys));
        }
    }
    assert_eq!(holding.len(), 1, "{holding:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_liquidates_through_tls_with_a_password_file() {
    let h = Harness::start_with_redis(300, 43, 2, RedisSetup::Server(tls_with_password()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("redis-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    // The URL the harness uses, minus its password: the binary gets it from the file.
    let url = h
        .redis_server
        .url()
        .replacen(&format!(":{PASSWORD}@"), "", 1);
    assert!(url.starts_with("rediss://127.0.0.1:"), "{url}");
    let ca = h.redis_server.ca_cert().unwrap();
    let output = liquidate_one(
        &h,
        &[
            ("REDIS_URL", url),
            ("REDIS_PASSWORD_FILE", password_file.display().to_string()),
            ("REDIS_CA_CERT", ca.display().to_string()),
        ],
    )
    .await;
    assert!(output.contains("rediss://127.0.0.1:"), "{output}");
    assert!(
        !output.contains(PASSWORD),
        "the Redis password must never be logged"
    );
}

#[tokio::test]
async fn a_wrong_password_stops_the_binary_with_the_url_redacted() {
    let h = Harness::start_with_redis(10, 44, 1, RedisSetup::Server(tls_with_password()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = h.write_manifest(dir.path());
    let url = h.redis_server.url().replacen(PASSWORD, "not-the-token", 1);
    let output = tokio::process::Command::new(BINARY)
        .arg("--manifest")
        .arg(&manifest)
        .args(["--metrics-addr", "off"])
        .env("REDIS_URL", &url)
        .env("REDIS_CA_CERT", h.redis_server.ca_cert().unwrap())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(text.contains("rediss://:***@127.0.0.1:"), "{text}");
    assert!(!text.contains("not-the-token"), "{text}");
}
