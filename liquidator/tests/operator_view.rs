//! What an operator sees of a running `liquidator` binary: its wallets' balances in `/health`,
//! in the `redline_liquidator_wallet_balance` gauge and in the Redis hash the manager's
//! dashboard reads, each equal to the chain's balances once its txs settled; and each
//! liquidation it makes posted to a webhook (a local HTTP receiver standing in for Discord) and
//! written to a `csvfile:` target.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use redline_liquidator::balances::{read_wallets, wallets_key};
use redline_liquidator::record::Outcome;
use support::{read_pipe, stop_with_sigterm, Harness};
use testkit::http::{http_get, http_get_json, WebhookReceiver};
use testkit::{free_port, wait_for};

/// The Discord webhook's path (a credential in production).
const WEBHOOK_PATH: &str = "/webhook/SECRETPATH";

/// Every coin of `address` on chain: denom → amount, as the published balances write it.
async fn chain_balances(h: &Harness, address: &str) -> BTreeMap<String, String> {
    h.balances(address)
        .await
        .into_iter()
        .map(|(denom, amount)| (denom, amount.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_are_published_and_liquidations_notified() {
    let h = Harness::start(300, 47, 3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let csv = dir.path().join("notified.csv");
    let metrics_addr = format!("127.0.0.1:{}", free_port().unwrap());

    let (mut child, account, _queue) = h
        .spawn_and_liquidate_first(
            h.liquidator_command(dir.path())
                .args(["--redis-url", &h.redis_server.url()])
                .args(["--balance-interval-ms", "500"])
                .args(["--metrics-addr", &metrics_addr])
                .arg(format!(
                    "--notify-liquidations=discord:{}",
                    receiver.url(WEBHOOK_PATH)
                ))
                .arg(format!(
                    "--notify-successful-liquidations=csvfile:{}",
                    csv.display()
                )),
        )
        .await;
    let record = h
        .records()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.outcome == Outcome::Liquidated && r.account == account)
        .unwrap();
    let worker_wallet = h.wallet(1).address().to_string();
    assert_eq!(record.wallet, worker_wallet);

    // The Redis hash, `/health` and the gauge all follow the chain (the wallet is read again
    // after its liquidation, and every 500 ms). The master may still top the wallet up, so
    // each round compares against the chain's balances of that moment.
    let key = wallets_key(&h.queue_config.queue_prefix, &h.manifest.chain_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (health, metrics, on_chain) = loop {
        let on_chain = chain_balances(&h, &worker_wallet).await;
        let mut redis = h.redis.clone();
        let published = read_wallets(&mut redis, &key).await.unwrap();
        let in_redis = published
            .iter()
            .any(|w| w.address == worker_wallet && w.slot == 1 && w.balances == on_chain);
        let health = http_get_json(&metrics_addr, "/health")
            .await
            .unwrap_or_default();
        let in_health = health["wallets"].as_array().is_some_and(|wallets| {
            wallets.iter().any(|w| {
                w["address"] == worker_wallet.as_str()
                    && w["balances"] == serde_json::to_value(&on_chain).unwrap()
            })
        });
        let metrics = http_get(&metrics_addr, "/metrics")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default();
        let gauge = format!(
            "redline_liquidator_wallet_balance{{denom=\"uusdc\",slot=\"1\",wallet=\"{worker_wallet}\",chain_id=\"{}\"}} {}",
            h.manifest.chain_id,
            on_chain.get("uusdc").map(String::as_str).unwrap_or("?")
        );
        if in_redis && in_health && metrics.contains(&gauge) {
            break (health, metrics, on_chain);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "balances never published: chain {on_chain:?}, Redis {published:?} ({in_redis}), \
             /health {health} ({in_health}), gauge `{gauge}` in /metrics: {}\n{}",
            metrics.contains(&gauge),
            metrics
                .lines()
                .filter(|l| l.starts_with("redline_liquidator_wallet_balance"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(on_chain.contains_key("uusdc"), "{on_chain:?}");
    // The master wallet (slot 0, it runs the top-ups) is followed too.
    let master = h.wallet(0).address().to_string();
    assert!(
        health["wallets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["address"] == master.as_str() && w["slot"] == 0),
        "{health}"
    );
    assert!(metrics.contains("redline_notifications_total"), "{metrics}");

    // The liquidation was notified: one webhook post, one CSV row.
    wait_for(
        || async { !receiver.requests().is_empty() && std::fs::read_to_string(&csv).is_ok() },
        Duration::from_secs(30),
    )
    .await
    .expect("the liquidation is notified");
    let posts = receiver.requests();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, WEBHOOK_PATH);
    let text = posts[0].body["content"].as_str().unwrap_or_default();
    assert!(text.contains("Liquidation succeeded"), "{text}");
    assert!(
        text.contains(&account) && text.contains(&record.tx_hash),
        "{text}"
    );
    assert!(
        text.contains(&format!("at height {}", record.height)),
        "{text}"
    );
    let rows = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2, "{rows}");
    assert!(lines[0].starts_with("timestamp,chain_id,protocol,account"));
    assert!(
        lines[1].contains(&account) && lines[1].contains(",succeeded,"),
        "{rows}"
    );
    assert!(lines[1].contains(&record.tx_hash));

    stop_with_sigterm(&mut child).await;
    let stderr = read_pipe(child.stderr.take()).await;
    // The webhook's path is a credential: never in the logs.
    assert!(!stderr.contains("SECRETPATH"), "{stderr}");
}
