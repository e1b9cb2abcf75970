//! The `liquidator` binary as an operator runs it: flags and a manifest file in, a candidate
//! liquidated and recorded (stream and CSV), a clean stop on SIGTERM that gives its wallet slot
//! back, and bad flags refused with the flag named.

mod support;

use support::{read_pipe, stop_with_sigterm, Harness, BINARY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_liquidates_records_and_stops_cleanly() {
    let h = Harness::start(300, 41, 3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("attempts.csv");

    let (mut child, account, _queue) = h
        .spawn_and_liquidate_first(
            h.liquidator_command(dir.path())
                .args(["--redis-url", &h.redis_server.url()])
                .arg("--csv")
                .arg(&csv)
                .args(["--metrics-addr", "off"]),
        )
        .await;
    // Its worker leased slot 1 (slot 0 is the master, also leased: it tops up).
    assert!(h.leases.is_held(&h.keys.wallet_slot(1)).await.unwrap());

    // SIGTERM: the worker finishes, the slots are given back, the process exits 0.
    stop_with_sigterm(&mut child).await;
    assert!(!h.leases.is_held(&h.keys.wallet_slot(1)).await.unwrap());
    assert!(!h.leases.is_held(&h.keys.wallet_slot(0)).await.unwrap());
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.lines().count() >= 2, "{rows}");
    assert!(rows.contains(&account));
    let stderr = read_pipe(child.stderr.take()).await;
    assert!(stderr.contains("liquidated"), "{stderr}");
    assert!(
        !stderr.contains(redline_devnet::scenario::DEFAULT_LIQUIDATOR_MNEMONIC),
        "the mnemonic must never be logged"
    );
}

#[tokio::test]
async fn bad_flags_are_refused_with_the_flag_named() {
    for (flags, named) in [
        (
            &["--max-liquidations-per-tx", "0"][..],
            "--max-liquidations-per-tx",
        ),
        (&["--gas-adjustment", "0.5"][..], "--gas-adjustment"),
        (&["--min-profit-usd", "lots"][..], "--min-profit-usd"),
    ] {
        let output = tokio::process::Command::new(BINARY)
            .args(flags)
            .args(["--rpc", "http://127.0.0.1:1"])
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{flags:?}: {stderr}");
    }
}
