//! Credit-account health computed off-chain against the chain's health contract: for every
//! seeded credit account (5,000 on the Osmosis flavor, 1,000 on the Neutron one, whose health
//! contract takes no `kind` and answers with perps fields), the health checker's figures from the account's stored form
//! (as the collector reads it from raw state) equal the health contract's `health_values`
//! exactly, all four values and both health factors, at default and liquidation prices, before
//! and after a 30 % ATOM drop, with interest brought to the answering block's time.
//!
//! What the equality shows: the wiring, not the formulas. Both sides run
//! `mars::math::credit_account` (the devnet's health contract calls the same health computer),
//! so a mistake in the formulas would cancel out. What it does prove: the raw-state reads of
//! `coin_balance`, `debt_shares`, `account_types`, the Red Bank's `colls` under the credit
//! manager and the credit manager's own debt give what the contracts hold; debt shares become
//! the amounts the credit manager computes (its total debt at the accrued borrow index, the
//! account's share rounded up); lends accrue to the block time; the snapshot's prices of each
//! kind and params reach the right computation. A control an hour late must differ for some
//! accounts, or the comparison would say nothing about interest. The formulas themselves are
//! checked against hand-worked numbers in `mars/src/math/credit_account.rs` and the devnet's
//! credit-account liquidation fixture.

use std::time::Duration;

use cosmwasm_std::Decimal;
use futures::stream::{self, StreamExt as _};
use mars::msg::health::{HealthValuesResponse, PerpsHealth};
use mars::msg::oracle::ActionKind;
use mars::types::StoredCreditAccount;
use redline_chain::ChainClient as _;
use redline_devnet::flavor::Flavor;
use redline_health_checker::credit::CreditContext;
use redline_pipeline::index::credit::CreditSnapshot;
use redline_protocol::rover::{Rover, RoverContracts};
use redline_tests::abci;
use tendermint_rpc::HttpClient;
use testkit::devnet::Devnet;
use testkit::rover::RoverQueries;

const CREDIT_ACCOUNTS: usize = 5_000;
const NEUTRON_CREDIT_ACCOUNTS: usize = 1_000;
const CONCURRENCY: usize = 16;

struct Chain {
    devnet: Devnet,
    http: HttpClient,
    rover: Rover<redline_chain::TendermintClient>,
    health: String,
    ids: Vec<u64>,
}

impl Chain {
    async fn start(flavor: Flavor, credit_accounts: usize) -> Self {
        let devnet = Devnet::scenario(50, 11)
            .flavor(flavor)
            .credit_accounts(credit_accounts)
            .start()
            .await
            .unwrap();
        let contracts = RoverContracts::from_manifest(&devnet.manifest.contracts).unwrap();
        let queries = RoverQueries::of(devnet.client.clone(), &contracts.credit_manager).await;
        // Account 1 is the rewards collector's; the seeded ones follow.
        let ids = queries.seeded_ids().await;
        assert!(
            ids.len() >= credit_accounts,
            "{} accounts minted",
            ids.len()
        );
        let http = HttpClient::new(devnet.manifest.rpc_http[0].as_str()).unwrap();
        Chain {
            rover: Rover::new(devnet.client.clone(), contracts),
            devnet,
            http,
            health: queries.health,
            ids,
        }
    }

    /// The block's credit snapshot, read by the test kit's plain queries plus the credit
    /// manager's totals; valid while no transaction lands.
    async fn snapshot(&self) -> CreditSnapshot {
        let height = self.devnet.client.latest_height().await.unwrap();
        CreditSnapshot {
            block: self.devnet.snapshot(height).await.unwrap(),
            manager_debts: self.rover.read_manager_debts(None).await.unwrap(),
        }
    }

    async fn accounts(&self) -> Vec<StoredCreditAccount> {
        stream::iter(&self.ids)
            .map(|id| async move { self.rover.read_account(*id, None).await.unwrap().unwrap() })
            .buffered(CONCURRENCY)
            .collect()
            .await
    }

    /// `health_values` of `account` with `action`, and the height that answered.
    async fn health_values(
        &self,
        account: &StoredCreditAccount,
        action: ActionKind,
    ) -> (u64, HealthValuesResponse) {
        let msg = self.devnet.manifest.health_query.health_values(
            &account.account_id.to_string(),
            account.kind.clone(),
            action,
        );
        let (height, data) = abci::smart_raw(&self.http, &self.health, &msg)
            .await
            .unwrap_or_else(|(_, log)| panic!("account {}: {log}", account.account_id));
        (height, serde_json::from_slice(&data).unwrap())
    }

    /// Compares every account with both price kinds; returns (compared, with debt, liquidatable,
    /// changed an hour later).
    async fn compare(&self, round: &str) -> (usize, usize, usize, usize) {
        let snapshot = self.snapshot().await;
        let accounts = self.accounts().await;
        let ctx = CreditContext::new(snapshot.clone());
        let (mut with_debt, mut liquidatable, mut changed) = (0, 0, 0);
        let mut times = std::collections::HashMap::new();
        for action in [ActionKind::Default, ActionKind::Liquidation] {
            let liquidation = action == ActionKind::Liquidation;
            let answers: Vec<_> = stream::iter(&accounts)
                .map(|account| self.health_values(account, action))
                .buffered(CONCURRENCY)
                .collect()
                .await;
            for (account, (height, answer)) in accounts.iter().zip(answers) {
                let time = match times.get(&height) {
                    Some(time) => *time,
                    None => {
                        let time = self.devnet.block_time(height).await.unwrap();
                        *times.entry(height).or_insert(time)
                    }
                };
                let ours = ctx.health_at(account, liquidation, time).unwrap();
                assert_eq!(
                    ours.health, answer.health,
                    "{round}: credit account {} ({action:?} prices) at height {height}",
                    account.account_id
                );
                assert_eq!(ours.health.is_liquidatable(), answer.liquidatable);
                if liquidation {
                    with_debt += usize::from(account.has_debt());
                    liquidatable += usize::from(answer.liquidatable);
                    let later = time.plus_seconds(3_600);
                    changed += usize::from(ctx.health_at(account, true, later).unwrap() != ours);
                }
            }
        }
        // Nothing moved under the round: its snapshot still holds.
        let after = self.snapshot().await;
        assert_eq!(after.manager_debts, snapshot.manager_debts);
        assert_eq!(after.block.markets, snapshot.block.markets);
        assert_eq!(
            after.block.liquidation_prices,
            snapshot.block.liquidation_prices
        );
        (accounts.len(), with_debt, liquidatable, changed)
    }
}

/// Compares before and after a 30 % ATOM drop.
async fn equal_before_and_after_a_drop(chain: Chain) {
    let (compared, with_debt, liquidatable, changed) = chain.compare("before the drop").await;
    assert_eq!(compared, chain.ids.len());
    assert!(with_debt > compared / 2, "{with_debt} of {compared} owe");
    assert!(
        changed > 0,
        "an hour of interest changed no account's health"
    );

    let atom = chain.snapshot().await.block.prices["uatom"];
    let dropped = atom * Decimal::percent(70);
    chain
        .devnet
        .move_prices(&[("uatom", &dropped.to_string())])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, _, liquidatable_after, _) = chain.compare("after a 30% ATOM drop").await;
    assert!(
        liquidatable_after > liquidatable,
        "the drop made no more accounts liquidatable ({liquidatable} → {liquidatable_after})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn off_chain_credit_health_equals_the_health_contract() {
    equal_before_and_after_a_drop(Chain::start(Flavor::Osmosis, CREDIT_ACCOUNTS).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn off_chain_credit_health_equals_the_neutron_health_contract() {
    let chain = Chain::start(Flavor::Neutron, NEUTRON_CREDIT_ACCOUNTS).await;
    // core-contracts' answer: perps fields, none held.
    let first = chain
        .rover
        .read_account(chain.ids[0], None)
        .await
        .unwrap()
        .unwrap();
    let (_, values) = chain.health_values(&first, ActionKind::Liquidation).await;
    assert_eq!(values.perps, Some(PerpsHealth::none_held()));
    equal_before_and_after_a_drop(chain).await;
}
