//! The devnet node through unmodified tendermint-rpc clients: queries, signed txs and their SDK
//! error codes, blocks over websocket, contract state paging, and malformed requests.

use std::time::Duration;

use cosmrs::bank::MsgSend;
use cosmrs::cosmwasm::MsgExecuteContract;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
use cosmrs::proto::cosmos::base::query::v1beta1::PageRequest;
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QueryAllContractStateRequest, QueryAllContractStateResponse, QueryRawContractStateRequest,
    QueryRawContractStateResponse,
};
use cosmrs::tx::Msg;
use cosmrs::{AccountId, Any};
use cosmwasm_std::{
    to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdError, StdResult,
};
use cw_multi_test::{ContractWrapper, Executor};
use cw_storage_plus::Map;
use futures::StreamExt;
use prost::Message;
use redline_devnet::chain::ChainConfig;
use redline_devnet::rpc::{self, NodeConfig, NodeHandle};
use redline_tests::abci::{self, TxParams};
use serde::{Deserialize, Serialize};
use tendermint_rpc::event::EventData;
use tendermint_rpc::query::EventType;
use tendermint_rpc::{Client, HttpClient, SubscriptionClient, WebSocketClient};

const CHAIN_ID: &str = "devnet-test";
const PREFIX: &str = "osmo";
const ITEMS_IN_CONTRACT: u32 = 257;

// ----- a small contract to exercise wasm paths -----

const ITEMS: Map<u32, String> = Map::new("items");

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
struct InitMsg {
    count: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ExecMsg {
    Put { key: u32, value: String },
    Fail { reason: String },
    Panic {},
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum QueryMsg {
    Get { key: u32 },
    Fail { reason: String },
    Panic {},
}

fn instantiate(deps: DepsMut, _env: Env, _info: MessageInfo, msg: InitMsg) -> StdResult<Response> {
    for i in 0..msg.count {
        ITEMS.save(deps.storage, i, &format!("value {i}"))?;
    }
    Ok(Response::new())
}

fn execute(deps: DepsMut, _env: Env, _info: MessageInfo, msg: ExecMsg) -> StdResult<Response> {
    match msg {
        ExecMsg::Put { key, value } => {
            ITEMS.save(deps.storage, key, &value)?;
            Ok(Response::new()
                .add_attribute("action", "put")
                .add_attribute("key", key.to_string())
                .set_data(Binary::from(b"stored".to_vec())))
        }
        ExecMsg::Fail { reason } => Err(StdError::msg(reason)),
        ExecMsg::Panic {} => panic!("contract bug"),
    }
}

fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Get { key } => to_json_binary(&ITEMS.may_load(deps.storage, key)?),
        QueryMsg::Fail { reason } => Err(StdError::msg(reason)),
        QueryMsg::Panic {} => panic!("query bug"),
    }
}

// ----- node and wallets -----

struct Wallet {
    key: SigningKey,
    address: AccountId,
}

fn wallet(seed: u8) -> Wallet {
    let key = SigningKey::from_slice(&[seed; 32]).unwrap();
    let address = key.public_key().account_id(PREFIX).unwrap();
    Wallet { key, address }
}

struct TestNode {
    node: NodeHandle,
    http: HttpClient,
    contract: String,
}

async fn start_node() -> TestNode {
    start_node_with_blocks_every(Duration::from_millis(200)).await
}

async fn start_node_with_blocks_every(block_time: Duration) -> TestNode {
    start_node_with(ChainConfig {
        block_time,
        ..ChainConfig::default()
    })
    .await
}

/// A chain whose blocks, every `block_time`, take one tx each.
fn one_tx_a_block(block_time: Duration) -> ChainConfig {
    ChainConfig {
        block_time,
        max_block_txs: 1,
        ..ChainConfig::default()
    }
}

/// A node on `chain` (its chain id and prefix replaced by the tests' own).
async fn start_node_with(chain: ChainConfig) -> TestNode {
    let config = NodeConfig {
        chain: ChainConfig {
            chain_id: CHAIN_ID.into(),
            bech32_prefix: PREFIX.into(),
            ..chain
        },
        port: 0,
        ..NodeConfig::default()
    };
    let funded: Vec<String> = (1..=6).map(|i| wallet(i).address.to_string()).collect();
    let (node, contract) = rpc::start(config, move |state| {
        for address in &funded {
            state.fund(
                address,
                vec![
                    cosmwasm_std::coin(1_000_000_000, "uosmo"),
                    cosmwasm_std::coin(5_000_000, "uatom"),
                ],
            )?;
        }
        // A poor account: can pay a small fee, not a big one.
        state.fund(
            wallet(9).address.as_ref(),
            vec![cosmwasm_std::coin(10_000, "uosmo")],
        )?;
        let code =
            state
                .app
                .store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
        let admin = state.app.api().addr_make("admin");
        let contract = state
            .app
            .instantiate_contract(
                code,
                admin,
                &InitMsg {
                    count: ITEMS_IN_CONTRACT,
                },
                &[],
                "items",
                None,
            )
            .map_err(|e| anyhow::anyhow!("instantiate: {e}"))?;
        Ok(contract.to_string())
    })
    .await
    .expect("node starts");
    let http = HttpClient::new(node.rpc_http_url().as_str()).unwrap();
    TestNode {
        node,
        http,
        contract,
    }
}

async fn balance(http: &HttpClient, address: &AccountId, denom: &str) -> u128 {
    let (_, resp): (u64, QueryBalanceResponse) = abci::query(
        http,
        "/cosmos.bank.v1beta1.Query/Balance",
        QueryBalanceRequest {
            address: address.to_string(),
            denom: denom.into(),
        },
    )
    .await
    .unwrap();
    resp.balance.unwrap().amount.parse().unwrap()
}

fn sign(wallet: &Wallet, msgs: Vec<Any>, params: &TxParams) -> Vec<u8> {
    abci::sign(&wallet.key, msgs, params)
}

/// Signs `msgs` with `signer`'s current account number and sequence and waits for the block.
async fn commit(
    http: &HttpClient,
    signer: &Wallet,
    msgs: Vec<Any>,
) -> tendermint_rpc::endpoint::broadcast::tx_commit::Response {
    let params = params_for(http, signer).await;
    http.broadcast_tx_commit(sign(signer, msgs, &params))
        .await
        .unwrap()
}

/// The committed tx failed with `code` and a log naming `reason`.
fn assert_tx_failed(
    committed: &tendermint_rpc::endpoint::broadcast::tx_commit::Response,
    code: u32,
    reason: &str,
) {
    let result = &committed.tx_result;
    assert_eq!(result.code.value(), code, "{result:?}");
    assert!(result.log.contains(reason), "{}", result.log);
}

/// `msg` executed on `contract` by `sender`, without funds.
fn execute_msg(sender: &Wallet, contract: AccountId, msg: &impl Serialize) -> Any {
    MsgExecuteContract {
        sender: sender.address.clone(),
        contract,
        msg: serde_json::to_vec(msg).unwrap(),
        funds: vec![],
    }
    .to_any()
    .unwrap()
}

async fn params_for(http: &HttpClient, wallet: &Wallet) -> TxParams {
    let acc = abci::account(http, &wallet.address).await;
    TxParams {
        account_number: acc.account_number,
        sequence: acc.sequence,
        fee_amount: 5_000,
        gas_limit: 200_000,
        chain_id: CHAIN_ID.into(),
        memo: "redline test".into(),
    }
}

/// A send of `amount` uatom from `from` to `to`, signed under `params`, broadcast (sync).
async fn broadcast_send(
    http: &HttpClient,
    from: &Wallet,
    to: &AccountId,
    amount: u128,
    params: &TxParams,
) -> tendermint_rpc::endpoint::broadcast::tx_sync::Response {
    http.broadcast_tx_sync(sign(from, vec![send_msg(from, to, amount)], params))
        .await
        .unwrap()
}

/// A send of 1 uatom from `from` to `to`, signed under `params`.
fn send_tx(from: &Wallet, to: &AccountId, params: &TxParams) -> Vec<u8> {
    sign(from, vec![send_msg(from, to, 1)], params)
}

/// The contract's smart query `msg`: its raw JSON answer, or the code and log of a refusal.
async fn smart_query(t: &TestNode, msg: &QueryMsg) -> Result<Vec<u8>, (u32, String)> {
    let (_, data) = abci::smart_raw(&t.http, &t.contract, msg).await?;
    Ok(data)
}

/// One page of the whole state of the contract at `address`.
async fn state_page(
    http: &HttpClient,
    address: String,
    pagination: Option<PageRequest>,
) -> Result<QueryAllContractStateResponse, (u32, String)> {
    let request = QueryAllContractStateRequest {
        address,
        pagination,
    };
    let (_, page) = abci::query(http, "/cosmwasm.wasm.v1.Query/AllContractState", request).await?;
    Ok(page)
}

fn send_msg(from: &Wallet, to: &AccountId, amount: u128) -> Any {
    MsgSend {
        from_address: from.address.clone(),
        to_address: to.clone(),
        amount: vec![cosmrs::Coin {
            denom: "uatom".parse().unwrap(),
            amount,
        }],
    }
    .to_any()
    .unwrap()
}

async fn wait_for_tx(
    http: &HttpClient,
    hash: tendermint::Hash,
) -> tendermint_rpc::endpoint::tx::Response {
    for _ in 0..100 {
        if let Ok(found) = http.tx(hash, false).await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tx {hash} never included");
}

// ----- tests -----

#[tokio::test]
async fn node_status_block_and_balance_query() {
    let t = start_node().await;
    let status = t.http.status().await.unwrap();
    assert_eq!(status.node_info.network.as_str(), CHAIN_ID);
    assert!(status.node_info.version.to_string().starts_with("0.38."));
    assert!(!status.sync_info.catching_up);
    abci::wait_for_height(&t.http, 2, Duration::from_secs(5)).await;

    let latest = t.http.latest_block().await.unwrap();
    let h = latest.block.header.height.value();
    let previous = t
        .http
        .block(tendermint::block::Height::try_from(h - 1).unwrap())
        .await
        .unwrap();
    assert_eq!(latest.block.header.last_block_id, Some(previous.block_id));
    assert_eq!(latest.block.header.chain_id.as_str(), CHAIN_ID);
    let results = t
        .http
        .block_results(latest.block.header.height)
        .await
        .unwrap();
    assert_eq!(results.height, latest.block.header.height);
    let info = t.http.abci_info().await.unwrap();
    assert!(info.last_block_height.value() >= h);

    let alice = wallet(1);
    assert_eq!(balance(&t.http, &alice.address, "uatom").await, 5_000_000);
    assert_eq!(balance(&t.http, &alice.address, "unknown").await, 0);
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_signed_send_moves_coins_and_bumps_sequence() {
    let t = start_node().await;
    let alice = wallet(1);
    let bob = wallet(2);
    let params = params_for(&t.http, &alice).await;
    assert_eq!(params.sequence, 0);
    let tx = sign(&alice, vec![send_msg(&alice, &bob.address, 1_234)], &params);

    let committed = t.http.broadcast_tx_commit(tx).await.unwrap();
    assert!(committed.check_tx.code.is_ok(), "{:?}", committed.check_tx);
    assert!(
        committed.tx_result.code.is_ok(),
        "{:?}",
        committed.tx_result
    );
    assert!(committed.height.value() > 0);
    assert!(committed.tx_result.gas_used > 0 && committed.tx_result.gas_used <= 200_000);
    let kinds: Vec<&str> = committed
        .tx_result
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"transfer") && kinds.contains(&"message") && kinds.contains(&"tx"),
        "{kinds:?}"
    );

    assert_eq!(
        balance(&t.http, &bob.address, "uatom").await,
        5_000_000 + 1_234
    );
    assert_eq!(
        balance(&t.http, &alice.address, "uatom").await,
        5_000_000 - 1_234
    );
    assert_eq!(
        balance(&t.http, &alice.address, "uosmo").await,
        1_000_000_000 - 5_000
    );
    let acc = abci::account(&t.http, &alice.address).await;
    assert_eq!(acc.sequence, 1);
    assert!(acc.pub_key.is_some());

    // The tx is found by hash, with the same result.
    let found = t.http.tx(committed.hash, false).await.unwrap();
    assert_eq!(found.height, committed.height);
    assert_eq!(found.tx_result.gas_used, committed.tx_result.gas_used);

    // Two txs from one account in one block: the mempool tracks sequences.
    let mut next = params_for(&t.http, &alice).await;
    let a = broadcast_send(&t.http, &alice, &bob.address, 1, &next).await;
    next.sequence += 1;
    let b = broadcast_send(&t.http, &alice, &bob.address, 2, &next).await;
    assert!(a.code.is_ok() && b.code.is_ok(), "{a:?} {b:?}");
    let b_result = wait_for_tx(&t.http, b.hash).await;
    assert!(b_result.tx_result.code.is_ok());
    assert_eq!(abci::account(&t.http, &alice.address).await.sequence, 3);
    t.node.shutdown().await;
}

/// CheckTx runs no messages, so it admits a tx whose fee the payer's earlier tx in the
/// mempool will have spent, and the payer's next tx behind it. After the block, CometBFT's
/// recheck runs CheckTx again on the committed state and evicts both: neither reaches a block
/// (where one would fail to pay its fee, the other on a wrong sequence, both burning a slot).
#[tokio::test]
async fn recheck_evicts_a_tx_whose_fee_the_block_spent_and_the_sequence_gap_behind_it() {
    // One tx a block, so the three wait in the mempool across a commit.
    let t = start_node_with(one_tx_a_block(Duration::from_millis(700))).await;
    let payer = wallet(5);
    let bob = wallet(4);
    let mut params = params_for(&t.http, &payer).await;
    let sequence = params.sequence;
    let fee = params.fee_amount;
    let uosmo = balance(&t.http, &payer.address, "uosmo").await;
    // Sends all but half a fee of the payer's uosmo.
    let drain = MsgSend {
        from_address: payer.address.clone(),
        to_address: bob.address.clone(),
        amount: vec![cosmrs::Coin {
            denom: "uosmo".parse().unwrap(),
            amount: uosmo - fee - fee / 2,
        }],
    }
    .to_any()
    .unwrap();
    let first = t
        .http
        .broadcast_tx_sync(sign(&payer, vec![drain], &params))
        .await
        .unwrap();
    assert_eq!(first.code.value(), 0, "{first:?}");
    let mut behind = Vec::new();
    for _ in 0..2 {
        params.sequence += 1;
        let answer = broadcast_send(&t.http, &payer, &bob.address, 1, &params).await;
        behind.push(answer.hash);
    }
    wait_for_tx(&t.http, first.hash).await;
    // Blocks enough for both to have been delivered, had they stayed in the mempool.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for hash in behind {
        assert!(
            t.http.tx(hash, false).await.is_err(),
            "tx {hash} reached a block"
        );
    }
    let account = abci::account(&t.http, &payer.address).await;
    assert_eq!(account.sequence, sequence + 1);
    assert_eq!(
        balance(&t.http, &payer.address, "uosmo").await,
        fee / 2,
        "only the first tx paid a fee"
    );
    t.node.shutdown().await;
}

/// Broadcasts `txs` (sync) right after a block, so one block's reaping sees them all, and
/// waits for each: the heights they landed at.
async fn inclusion_heights(http: &HttpClient, txs: Vec<Vec<u8>>) -> Vec<u64> {
    let height = |http: &HttpClient| {
        let http = http.clone();
        async move { http.status().await.unwrap().sync_info.latest_block_height }
    };
    let start = height(http).await;
    while height(http).await == start {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut hashes = Vec::new();
    for tx in txs {
        let answer = http.broadcast_tx_sync(tx).await.unwrap();
        assert!(answer.code.is_ok(), "{answer:?}");
        hashes.push(answer.hash);
    }
    let mut heights = Vec::new();
    for hash in hashes {
        heights.push(wait_for_tx(http, hash).await.height.value());
    }
    heights
}

/// The mempool orders by fee priority: with room for one tx a block, a tx paying 0.1 uosmo a
/// gas sent after two paying 0.025 lands first, and the two cheaper ones follow in arrival
/// order. With a block gas limit of 450,000 and 200,000-gas txs, a block takes two of three.
#[tokio::test]
async fn the_best_paying_tx_lands_first_and_a_full_block_defers_the_rest() {
    let t = start_node_with(one_tx_a_block(Duration::from_millis(1_500))).await;
    let bob = wallet(4);
    // Two at the minimum (5,000 uosmo for 200,000 gas = 0.025), then one at 0.1.
    let mut signed = Vec::new();
    for (slot, fee) in [(1, 5_000), (2, 5_000), (6, 20_000)] {
        let mut params = params_for(&t.http, &wallet(slot)).await;
        params.fee_amount = fee;
        signed.push(send_tx(&wallet(slot), &bob.address, &params));
    }
    let heights = inclusion_heights(&t.http, signed).await;
    assert!(
        heights[2] < heights[0] && heights[0] < heights[1],
        "inclusion heights (cheap, cheap, dear): {heights:?}"
    );
    t.node.shutdown().await;

    let t = start_node_with(ChainConfig {
        block_time: Duration::from_millis(1_500),
        max_block_gas: Some(450_000),
        ..ChainConfig::default()
    })
    .await;
    let mut signed = Vec::new();
    for slot in [1, 2, 6] {
        let params = params_for(&t.http, &wallet(slot)).await;
        signed.push(send_tx(&wallet(slot), &bob.address, &params));
    }
    let heights = inclusion_heights(&t.http, signed).await;
    assert!(
        heights[0] == heights[1] && heights[2] == heights[0] + 1,
        "inclusion heights of three 200,000-gas txs under a 450,000 block gas limit: {heights:?}"
    );
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_rejects_wrong_sequence_bad_signature_poor_payer_and_low_gas() {
    let t = start_node().await;
    let alice = wallet(3);
    let bob = wallet(4);
    let mut params = params_for(&t.http, &alice).await;

    // Wrong sequence: 32.
    params.sequence = 7;
    let answer = broadcast_send(&t.http, &alice, &bob.address, 1, &params).await;
    assert_eq!(answer.code.value(), 32, "{answer:?}");
    assert_eq!(answer.codespace, "sdk");
    assert!(
        answer
            .log
            .contains("account sequence mismatch, expected 0, got 7"),
        "{}",
        answer.log
    );
    params.sequence = 0;

    // Bad signature: signed for another chain id (4), or by another key (4 / 8).
    let wrong_chain = TxParams {
        chain_id: "other-chain".into(),
        ..params_for(&t.http, &alice).await
    };
    let answer = broadcast_send(&t.http, &alice, &bob.address, 1, &wrong_chain).await;
    assert_eq!(answer.code.value(), 4, "{answer:?}");
    assert!(
        answer.log.contains("signature verification failed"),
        "{}",
        answer.log
    );
    let mut tampered = sign(&alice, vec![send_msg(&alice, &bob.address, 1)], &params);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let answer = t.http.broadcast_tx_sync(tampered).await.unwrap();
    assert_eq!(answer.code.value(), 4, "{answer:?}");

    // Fee above the payer's balance: 5.
    let poor = wallet(9);
    let mut poor_params = params_for(&t.http, &poor).await;
    poor_params.fee_amount = 50_000;
    let answer = broadcast_send(&t.http, &poor, &bob.address, 1, &poor_params).await;
    assert_eq!(answer.code.value(), 5, "{answer:?}");
    assert!(answer.log.contains("insufficient funds"), "{}", answer.log);

    // Fee below the minimum gas price: 13.
    let mut cheap = params_for(&t.http, &alice).await;
    cheap.fee_amount = 1;
    let answer = broadcast_send(&t.http, &alice, &bob.address, 1, &cheap).await;
    assert_eq!(answer.code.value(), 13, "{answer:?}");

    // Gas limit below what the tx size alone costs: rejected at CheckTx with 11.
    let mut tiny = params_for(&t.http, &alice).await;
    tiny.gas_limit = 1_000;
    tiny.fee_amount = 25;
    let answer = broadcast_send(&t.http, &alice, &bob.address, 1, &tiny).await;
    assert_eq!(answer.code.value(), 11, "{answer:?}");

    // Gas limit one below what the tx needs: admitted, fails in the block with 11, fee paid,
    // sequence bumped, coins not moved.
    let simulated = simulate(&t.http, &alice, vec![send_msg(&alice, &bob.address, 1)]).await;
    let mut short = params_for(&t.http, &alice).await;
    short.gas_limit = simulated.gas_info.unwrap().gas_used - 1;
    let uosmo_before = balance(&t.http, &alice.address, "uosmo").await;
    let uatom_before = balance(&t.http, &alice.address, "uatom").await;
    let committed = t
        .http
        .broadcast_tx_commit(sign(
            &alice,
            vec![send_msg(&alice, &bob.address, 1)],
            &short,
        ))
        .await
        .unwrap();
    assert!(committed.check_tx.code.is_ok(), "{:?}", committed.check_tx);
    assert_tx_failed(&committed, 11, "out of gas");
    assert_eq!(
        balance(&t.http, &alice.address, "uosmo").await,
        uosmo_before - 5_000
    );
    assert_eq!(
        balance(&t.http, &alice.address, "uatom").await,
        uatom_before
    );
    assert_eq!(abci::account(&t.http, &alice.address).await.sequence, 1);
    t.node.shutdown().await;
}

async fn simulate(http: &HttpClient, wallet: &Wallet, msgs: Vec<Any>) -> SimulateResponse {
    let params = params_for(http, wallet).await;
    simulate_at(http, wallet, msgs, params.sequence)
        .await
        .unwrap()
}

/// Simulates `msgs` signed (unsigned, as clients simulate) with `sequence`.
async fn simulate_at(
    http: &HttpClient,
    wallet: &Wallet,
    msgs: Vec<Any>,
    sequence: u64,
) -> Result<SimulateResponse, (u32, String)> {
    let mut params = params_for(http, wallet).await;
    params.sequence = sequence;
    // An unsigned tx, as clients simulate: one empty signature.
    let raw = cosmrs::proto::cosmos::tx::v1beta1::TxRaw {
        body_bytes: abci::body(msgs, &params).into_bytes().unwrap(),
        auth_info_bytes: abci::auth_info(&wallet.key, &params).into_bytes().unwrap(),
        signatures: vec![vec![]],
    };
    let (_, simulated) = abci::query(
        http,
        "/cosmos.tx.v1beta1.Service/Simulate",
        SimulateRequest {
            tx_bytes: raw.encode_to_vec(),
            ..Default::default()
        },
    )
    .await?;
    Ok(simulated)
}

#[tokio::test]
async fn node_simulation_sees_txs_waiting_in_the_mempool() {
    // Blocks far apart, so the first tx surely waits in the mempool while the second is
    // simulated and broadcast.
    let t = start_node_with_blocks_every(Duration::from_secs(3)).await;
    let alice = wallet(6);
    let bob = wallet(2);
    let params = params_for(&t.http, &alice).await;
    let committed = params.sequence;
    let height = t.http.status().await.unwrap().sync_info.latest_block_height;
    let first = broadcast_send(&t.http, &alice, &bob.address, 1, &params).await;
    assert!(first.code.is_ok(), "{first:?}");

    // As in the SDK, simulation runs on the CheckTx state: the next sequence is the one after
    // the tx waiting in the mempool, and the committed one is taken.
    let next = simulate_at(
        &t.http,
        &alice,
        vec![send_msg(&alice, &bob.address, 2)],
        committed + 1,
    )
    .await
    .expect("sequence N + 1 simulates while N waits in the mempool");
    assert!(next.gas_info.unwrap().gas_used > 0);
    let (code, log) = simulate_at(
        &t.http,
        &alice,
        vec![send_msg(&alice, &bob.address, 2)],
        committed,
    )
    .await
    .expect_err("sequence N is taken by the tx in the mempool");
    assert_eq!(code, 32, "{log}");
    assert!(
        log.contains(&format!("expected {}, got {committed}", committed + 1)),
        "{log}"
    );
    // Nothing was committed meanwhile: the answers above came from the mempool's view.
    assert_eq!(
        abci::account(&t.http, &alice.address).await.sequence,
        committed
    );
    assert_eq!(
        t.http.status().await.unwrap().sync_info.latest_block_height,
        height
    );

    let mut second_params = params_for(&t.http, &alice).await;
    second_params.sequence = committed + 1;
    let second = broadcast_send(&t.http, &alice, &bob.address, 2, &second_params).await;
    assert!(second.code.is_ok(), "{second:?}");
    let (a, b) = (
        wait_for_tx(&t.http, first.hash).await,
        wait_for_tx(&t.http, second.hash).await,
    );
    assert!(a.tx_result.code.is_ok() && b.tx_result.code.is_ok());
    assert_eq!(a.height, b.height, "both txs in the next block");
    assert!(a.index < b.index);
    assert_eq!(
        abci::account(&t.http, &alice.address).await.sequence,
        committed + 2
    );
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_simulation_predicts_delivery_gas_and_contract_errors_surface() {
    let t = start_node().await;
    let alice = wallet(5);
    let contract: AccountId = t.contract.parse().unwrap();
    let put = execute_msg(
        &alice,
        contract.clone(),
        &ExecMsg::Put {
            key: 9_999,
            value: "hello".into(),
        },
    );
    let simulated = simulate(&t.http, &alice, vec![put.clone()]).await;
    let gas = simulated.gas_info.unwrap().gas_used;
    let result = simulated.result.unwrap();
    assert!(
        result.events.iter().any(|e| e.r#type == "wasm"),
        "{:?}",
        result.events
    );
    // Simulation wrote nothing.
    let (_, raw): (u64, QueryRawContractStateResponse) = abci::query(
        &t.http,
        "/cosmwasm.wasm.v1.Query/RawContractState",
        QueryRawContractStateRequest {
            address: t.contract.clone(),
            query_data: key_of(9_999),
        },
    )
    .await
    .unwrap();
    assert!(raw.data.is_empty());

    let committed = commit(&t.http, &alice, vec![put]).await;
    assert!(
        committed.tx_result.code.is_ok(),
        "{:?}",
        committed.tx_result
    );
    assert_eq!(committed.tx_result.gas_used as u64, gas);
    let wasm = committed
        .tx_result
        .events
        .iter()
        .find(|e| e.kind == "wasm")
        .expect("a wasm event");
    assert_eq!(wasm.attributes[0].key_str().unwrap(), "_contract_address");
    assert_eq!(wasm.attributes[0].value_str().unwrap(), t.contract);

    let smart = smart_query(&t, &QueryMsg::Get { key: 9_999 })
        .await
        .unwrap();
    assert_eq!(smart, br#""hello""#);

    // A contract error: code 5 in codespace wasm, with the contract's message.
    let fail = execute_msg(
        &alice,
        contract.clone(),
        &ExecMsg::Fail {
            reason: "health factor would drop".into(),
        },
    );
    let committed = commit(&t.http, &alice, vec![fail]).await;
    assert_tx_failed(&committed, 5, "health factor would drop");
    assert_eq!(committed.tx_result.codespace, "wasm");
    // A failing query: non-zero code with the contract's message.
    let err = smart_query(
        &t,
        &QueryMsg::Fail {
            reason: "no such market".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(err.0 != 0 && err.1.contains("no such market"), "{err:?}");
    t.node.shutdown().await;
}

fn key_of(i: u32) -> Vec<u8> {
    // cw-storage-plus: length-prefixed namespace, then the big-endian key.
    let mut key = vec![0, 5];
    key.extend_from_slice(b"items");
    key.extend_from_slice(&i.to_be_bytes());
    key
}

#[tokio::test]
async fn node_all_contract_state_pages_cover_every_key_once() {
    let t = start_node().await;
    let mut seen = Vec::new();
    let mut next_key = Vec::new();
    loop {
        let page = state_page(
            &t.http,
            t.contract.clone(),
            Some(PageRequest {
                key: next_key.clone(),
                limit: 50,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        seen.extend(page.models.into_iter().map(|m| m.key));
        next_key = page.pagination.unwrap().next_key;
        if next_key.is_empty() {
            break;
        }
    }
    let expected: Vec<Vec<u8>> = (0..ITEMS_IN_CONTRACT).map(key_of).collect();
    let items: Vec<Vec<u8>> = seen
        .iter()
        .filter(|k| k.starts_with(&[0, 5]))
        .cloned()
        .collect();
    assert_eq!(items, expected);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len());

    // Offset paging with a total gives the same keys.
    let mut by_offset = Vec::new();
    let mut offset = 0;
    loop {
        let page = state_page(
            &t.http,
            t.contract.clone(),
            Some(PageRequest {
                offset,
                limit: 100,
                count_total: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        let pagination = page.pagination.unwrap();
        assert_eq!(pagination.total, seen.len() as u64);
        offset += page.models.len() as u64;
        by_offset.extend(page.models.into_iter().map(|m| m.key));
        if pagination.next_key.is_empty() {
            break;
        }
    }
    assert_eq!(by_offset, seen);

    // Unknown contract: a proper error, not a panic.
    let err = state_page(&t.http, wallet(1).address.to_string(), None)
        .await
        .unwrap_err();
    assert!(err.0 != 0, "{err:?}");
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_websocket_streams_consecutive_blocks_and_txs() {
    let t = start_node().await;
    let (client, driver) = WebSocketClient::new(t.node.rpc_ws_url().as_str())
        .await
        .unwrap();
    let driver = tokio::spawn(async move { driver.run().await });
    let mut blocks = client.subscribe(EventType::NewBlock.into()).await.unwrap();
    let mut heights = Vec::new();
    while heights.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), blocks.next())
            .await
            .expect("a block within 5 s")
            .unwrap()
            .unwrap();
        match event.data {
            EventData::NewBlock {
                block: Some(block),
                result_finalize_block: Some(_),
                ..
            } => heights.push(block.header.height.value()),
            other => panic!("not a 0.38 NewBlock event: {other:?}"),
        }
    }
    assert_eq!(heights[1], heights[0] + 1);
    assert_eq!(heights[2], heights[1] + 1);

    let mut txs = client.subscribe(EventType::Tx.into()).await.unwrap();
    let alice = wallet(6);
    let params = params_for(&t.http, &alice).await;
    let sent = broadcast_send(&t.http, &alice, &wallet(1).address, 7, &params).await;
    assert!(sent.code.is_ok());
    let event = tokio::time::timeout(Duration::from_secs(5), txs.next())
        .await
        .expect("a tx event within 5 s")
        .unwrap()
        .unwrap();
    let EventData::Tx { tx_result } = event.data else {
        panic!("not a tx event");
    };
    assert!(tx_result.height > 0);
    assert!(tx_result.result.events.iter().any(|e| e.kind == "transfer"));
    let events = event.events.unwrap();
    assert_eq!(events["tx.hash"], vec![sent.hash.to_string()]);

    // Plain requests work over the websocket too.
    let status = client.status().await.unwrap();
    assert_eq!(status.node_info.network.as_str(), CHAIN_ID);
    client.close().unwrap();
    let _ = driver.await;
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_garbage_requests_get_json_rpc_errors() {
    let t = start_node().await;
    let addr = t.node.addr().to_string();
    // Each request and the error code its answer must carry.
    let refused = [
        ("{not json", "-32700"),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"no_such_method","params":{}}"#,
            "-32601",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"block","params":{"height":"abc"}}"#,
            "-32602",
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"broadcast_tx_sync","params":{"tx":"AAAA"}}"#,
            r#""code":2"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"abci_query","params":{"path":"/nope","data":"zz"}}"#,
            "-32602",
        ),
    ];
    for (request, code) in refused {
        let response = abci::raw_post(&addr, "/", request).await;
        assert!(response.contains(code), "{request}: {response}");
    }
    let response = abci::raw_post(&addr, "/", r#"[{"jsonrpc":"2.0","id":5,"method":"health"},{"jsonrpc":"2.0","id":6,"method":"abci_query","params":{"path":"/nope","data":""}}]"#).await;
    assert!(
        response.contains(r#""id":5"#) && response.contains(r#""code":6"#),
        "{response}"
    );
    // Far-future heights and unknown txs are errors, not panics.
    assert!(t
        .http
        .block(tendermint::block::Height::from(1_000_000u32))
        .await
        .is_err());
    assert!(t
        .http
        .tx(tendermint::Hash::Sha256([7; 32]), false)
        .await
        .is_err());
    // And the node still answers.
    assert!(t.http.health().await.is_ok());
    t.node.shutdown().await;
}

#[tokio::test]
async fn node_survives_contract_panics() {
    let t = start_node().await;
    let alice = wallet(2);
    let panic_msg = execute_msg(&alice, t.contract.parse().unwrap(), &ExecMsg::Panic {});
    let committed = commit(&t.http, &alice, vec![panic_msg]).await;
    assert_tx_failed(&committed, 111222, "contract bug");
    let err = smart_query(&t, &QueryMsg::Panic {}).await.unwrap_err();
    assert_eq!(err.0, 111222, "{err:?}");
    // Blocks keep coming and txs still work.
    let height = t
        .http
        .status()
        .await
        .unwrap()
        .sync_info
        .latest_block_height
        .value();
    abci::wait_for_height(&t.http, height + 2, Duration::from_secs(5)).await;
    let params = params_for(&t.http, &alice).await;
    assert_eq!(params.sequence, 1);
    let ok = t
        .http
        .broadcast_tx_commit(sign(
            &alice,
            vec![send_msg(&alice, &wallet(3).address, 5)],
            &params,
        ))
        .await
        .unwrap();
    assert!(ok.tx_result.code.is_ok(), "{:?}", ok.tx_result);
    t.node.shutdown().await;
}
