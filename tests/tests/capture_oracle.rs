//! The capture oracle can fail: right after a price drop, before anyone liquidates, it must
//! find accounts that are liquidatable at a profit (the benchmark's "nothing profitable left"
//! would pass vacuously with an oracle that finds nothing), and before the drop it must find
//! nobody below HF 1.

use std::collections::BTreeMap;

use anyhow::Context as _;
use cosmwasm_std::Decimal;
use redline_chain::{ChainClient, Wallet};
use redline_tests::capture::CaptureOracle;
use testkit::devnet::Devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_drop_the_oracle_finds_profitable_liquidations() -> anyhow::Result<()> {
    let scenario = Devnet::scenario(300, 5).start().await?;
    let client = scenario.client.clone();
    while client.latest_height().await? < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let manifest = &scenario.manifest;
    let mnemonic = manifest
        .liquidator_mnemonic
        .clone()
        .context("the devnet manifest names a liquidator mnemonic")?;
    let borrowers: Vec<String> = scenario
        .positions
        .iter()
        .filter(|p| !p.debt.is_empty())
        .map(|p| p.user.to_string())
        .collect();
    let master = Wallet::from_mnemonic(&mnemonic, &manifest.bech32_prefix, 0)?;
    let oracle = CaptureOracle::prepare(
        client.clone(),
        &scenario.chain_config(),
        (&manifest.contracts.red_bank, &manifest.contracts.oracle),
        &mnemonic,
        &master,
        &borrowers,
    )
    .await?;

    // Before the drop nobody is below HF 1.
    let before = oracle.judge(&borrowers).await?;
    assert_eq!(before.below_one, 0, "{before}");

    let height = scenario
        .node
        .chain()
        .set_prices(BTreeMap::from([(
            "uatom".to_string(),
            Decimal::percent(600),
        )]))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    while client.latest_height().await? < height {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = oracle.judge(&borrowers).await?;
    eprintln!("capture oracle after the drop: {after}");
    assert!(after.below_one > 0, "{after}");
    assert!(!after.profitable.is_empty(), "{after}");
    assert!(
        after.check().is_err(),
        "profitable accounts left must fail the check"
    );
    assert!(after.other.is_empty(), "{after}");
    scenario.shutdown().await;
    Ok(())
}
