//! Credit accounts in the collector: discovery puts every seeded credit account with debt in
//! the credit book exactly as the chain's own smart queries describe it, a credit account
//! opened and borrowed against after start joins the book, leaves it once repaid, and every
//! published block gets a credit snapshot and one credit-account health-check job.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cosmwasm_std::{Coin, Uint128};
use mars::msg::credit_manager::{self, Action, ActionCoin, ExecuteMsg, Positions};
use mars::msg::health::AccountKind;
use mars::msg::red_bank::{self, UserCollateralResponse};
use mars::types::StoredCreditAccount;
use redline_chain::{ChainClient, TendermintClient};
use redline_pipeline::index::credit::CreditBook;
use redline_pipeline::index::IndexArgs;
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};
use redline_pipeline::queue::{Queue, RedisStreamQueue};
use support::{coin, shutdown, start_following, test_config, Devnet};
use testkit::eventually;
use testkit::rover::RoverQueries;

const WAIT: Duration = Duration::from_secs(60);
const CREDIT_ACCOUNTS: usize = 120;

async fn contracts(devnet: &Devnet) -> RoverQueries<TendermintClient> {
    let credit_manager = devnet.manifest.contracts.credit_manager.clone().unwrap();
    RoverQueries::of(devnet.client.clone(), &credit_manager).await
}

/// The account as the credit manager's `positions` and the Red Bank's `user_collateral`
/// answer it (smart queries, not the raw reads the collector makes).
async fn by_smart_queries(devnet: &Devnet, cm: &str, id: u64) -> Option<StoredCreditAccount> {
    let client = &devnet.client;
    let msg = credit_manager::QueryMsg::Positions {
        account_id: id.to_string(),
        action: None,
    };
    let positions: Positions = client.query_smart(cm, &msg, None).await.unwrap();
    if positions.debts.is_empty() {
        return None;
    }
    let mut lends_scaled = BTreeMap::new();
    for lend in &positions.lends {
        let msg = red_bank::QueryMsg::UserCollateral {
            user: cm.to_string(),
            account_id: Some(id.to_string()),
            denom: lend.denom.clone(),
        };
        let answer: UserCollateralResponse = client
            .query_smart(devnet.red_bank(), &msg, None)
            .await
            .unwrap();
        lends_scaled.insert(lend.denom.clone(), answer.amount_scaled);
    }
    Some(StoredCreditAccount {
        account_id: id,
        kind: positions.account_kind,
        coin_balances: positions
            .deposits
            .iter()
            .map(|c| (c.denom.clone(), Uint128::try_from(c.amount).unwrap()))
            .collect(),
        debt_shares: positions
            .debts
            .iter()
            .map(|d| (d.denom.clone(), d.shares))
            .collect(),
        lends_scaled,
    })
}

fn book(conn: redline_pipeline::redis_conn::RedisConn) -> CreditBook {
    CreditBook::new(
        conn,
        IndexArgs::default().namespace("devnet-1", ProtocolKind::Rover),
    )
}

async fn book_accounts(book: &CreditBook) -> BTreeMap<u64, StoredCreditAccount> {
    let (accounts, errors) = book.accounts().await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    accounts.into_iter().map(|a| (a.account_id, a)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_accounts_are_discovered_followed_and_published() {
    support::init_logs();
    let devnet = Devnet::scenario(40, 5)
        .credit_accounts(CREDIT_ACCOUNTS)
        .start()
        .await
        .unwrap();
    let contracts = contracts(&devnet).await;
    let (harness, running) = start_following(&devnet, test_config(8)).await;
    let start = running.discovered(WAIT).await;
    running.wait_until_at_tip(&devnet, start, WAIT).await;
    let conn = redline_pipeline::redis_conn::connect(
        &harness.queue_config(),
        redline_pipeline::redis_conn::ConnectOptions::default(),
    )
    .await
    .unwrap();
    let book = book(conn);

    // Discovery: every seeded account with debt, as the smart queries describe it.
    let mut expected = BTreeMap::new();
    for id in 2..=(CREDIT_ACCOUNTS as u64 + 1) {
        if let Some(account) = by_smart_queries(&devnet, &contracts.credit_manager, id).await {
            expected.insert(id, account);
        }
    }
    assert!(
        expected.len() > CREDIT_ACCOUNTS / 2,
        "{} owe",
        expected.len()
    );
    assert_eq!(book_accounts(&book).await, expected);

    // A new account opened, funded and borrowed against after start joins the book.
    let owner = devnet.liquidator(3);
    let cm = contracts.credit_manager.as_str();
    devnet
        .execute(
            &owner,
            cm,
            &ExecuteMsg::CreateCreditAccount(AccountKind::Default),
            &[],
        )
        .await
        .unwrap();
    let tokens = contracts.tokens(owner.address().as_ref()).await;
    let id = tokens[0].clone();
    let deposit = coin(50_000_000, "uatom");
    let actions = vec![
        Action::Deposit(deposit.clone()),
        Action::Borrow(Coin::new(10_000_000u128, "uusdc")),
    ];
    let update = ExecuteMsg::UpdateCreditAccount {
        account_id: Some(id.clone()),
        account_kind: None,
        actions,
    };
    devnet
        .execute(&owner, cm, &update, &[deposit])
        .await
        .unwrap();
    let numeric: u64 = id.parse().unwrap();
    let joined = eventually("the new credit account in the book", WAIT, || async {
        book_accounts(&book).await.remove(&numeric)
    })
    .await;
    assert_eq!(
        Some(joined),
        by_smart_queries(&devnet, cm, numeric).await,
        "the book holds what the chain holds"
    );

    // Repaid in full (a little more uusdc deposited first: the debt has grown with interest
    // since the borrow): it leaves the book.
    let top_up = coin(1_000_000, "uusdc");
    let repay = ExecuteMsg::UpdateCreditAccount {
        account_id: Some(id),
        account_kind: None,
        actions: vec![
            Action::Deposit(top_up.clone()),
            Action::Repay {
                recipient_account_id: None,
                coin: ActionCoin::account_balance("uusdc"),
            },
        ],
    };
    devnet.execute(&owner, cm, &repay, &[top_up]).await.unwrap();
    let repaid = by_smart_queries(&devnet, cm, numeric).await;
    assert_eq!(repaid, None, "the account owes nothing after the repay");
    eventually(
        "the repaid credit account to leave the book",
        WAIT,
        || async { (!book_accounts(&book).await.contains_key(&numeric)).then_some(()) },
    )
    .await;

    // Published blocks: a credit snapshot and one job each.
    let queue = RedisStreamQueue::<HealthCheckJob>::connect(
        &harness.queue_config(),
        redline_pipeline::jobs::HEALTH_CHECK_QUEUE,
    )
    .await
    .unwrap();
    let deliveries = queue
        .fetch(10_000, Duration::from_millis(200))
        .await
        .unwrap();
    let credit_jobs: Vec<_> = deliveries
        .iter()
        .filter(|d| d.job.protocol == ProtocolKind::Rover)
        .collect();
    assert!(!credit_jobs.is_empty());
    let newest = credit_jobs.iter().map(|d| d.job.height).max().unwrap();
    let snapshot = book.snapshot(newest).await.unwrap().expect("its snapshot");
    assert_eq!(snapshot.block.protocol, ProtocolKind::Rover);
    assert!(snapshot
        .manager_debts
        .total_debt_shares
        .contains_key("uusdc"));
    let heights: std::collections::BTreeSet<_> = credit_jobs.iter().map(|d| d.job.height).collect();
    assert_eq!(heights.len(), credit_jobs.len(), "one credit job per block");

    shutdown(running, devnet).await;
}

/// A credit account dropped from the book behind the collector's back (an event it missed) is
/// put back by the next periodic rediscovery, which reports it as drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediscovery_repairs_and_reports_what_the_book_missed() {
    support::init_logs();
    let devnet = Devnet::scenario(40, 6)
        .credit_accounts(40)
        .start()
        .await
        .unwrap();
    let mut config = test_config(8);
    config.credit.credit_rediscover_blocks = 3;
    let (harness, running) = start_following(&devnet, config).await;
    let start = running.discovered(WAIT).await;
    running.wait_until_at_tip(&devnet, start, WAIT).await;
    let mut conn = redline_pipeline::redis_conn::connect(
        &harness.queue_config(),
        redline_pipeline::redis_conn::ConnectOptions::default(),
    )
    .await
    .unwrap();
    let book = book(conn.clone());
    let (&dropped, _) = book_accounts(&book)
        .await
        .iter()
        .next()
        .expect("an account");
    let accounts_key = format!("{}:accounts", book.namespace().as_str());
    let removed: u64 = redis::cmd("HDEL")
        .arg(&accounts_key)
        .arg(dropped.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1);

    let missing = || {
        running
            .collector
            .metrics()
            .drift_repaired
            .with_label_values(&["credit_missing"])
            .get()
    };
    // The repair is written before it is counted, so the account can be back a moment before
    // the counter moves.
    eventually(
        "the dropped account back in the book and counted",
        WAIT,
        || async {
            let back = book_accounts(&book).await.contains_key(&dropped);
            (back && missing() > 0).then_some(())
        },
    )
    .await;
    assert_eq!(missing(), 1);
    shutdown(running, devnet).await;
}
