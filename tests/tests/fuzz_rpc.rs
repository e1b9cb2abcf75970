//! Fuzzing the chain client's RPC decoding with real replies (proptest, bounded for `make test`).
//!
//! A fake node on loopback first forwards the client's calls to a devnet running the Mars
//! scenario and records each reply (status, block, block_results, abci_query for smart, raw and
//! all-state queries, account, balances and simulation, broadcast_tx_sync, tx). Then it answers
//! with those replies mutated: bytes flipped or cut, JSON nodes replaced or removed, the
//! protobuf inside `abci_query` values and transaction bytes damaged, HTTP errors. Each call of
//! the real `TendermintClient` must come back as a value or a `ChainError`, never a panic or a
//! hang; unmutated replies must still decode.
//!
//! Two more tests use a node that answers garbage on purpose (malformed JSON, an HTML 502 page,
//! wrong protobuf inside valid replies, a 48 MiB reply, 1 MiB of nesting): every client call
//! must fail with an error naming the endpoint, and the real `collector` binary must keep
//! running through each kind and catch up afterwards, while a service started against such a
//! node exits with a clear error (code 1, no panic).
//!
//! The output shows a few "panicked at .../subtle-encoding-.../base64.rs" lines: tendermint-rpc's
//! base64 decoder panics on values like `"AAAA="`, and the client catches that and returns an
//! error of the endpoint (see `TendermintClient::call`). A panic that escaped would fail the test.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cosmwasm_std::coin;
use mars::msg::red_bank::{self, namespace, MarketV2Response, PaginationResponse};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use redline_chain::{
    bank_send_msg, sign_with_simulated_gas, ChainClient, ChainConfig, ChainError, ScanOptions,
    SequenceTracker, TendermintClient, TxBuilder, TxHash,
};
use serde_json::Value;
use testkit::devnet::Devnet;
use testkit::fuzz::{bytes, json_value, mutated, mutations, Mutation};

const SMART: &str = "abci_query /cosmwasm.wasm.v1.Query/SmartContractState";
const RAW: &str = "abci_query /cosmwasm.wasm.v1.Query/RawContractState";
const ALL_STATE: &str = "abci_query /cosmwasm.wasm.v1.Query/AllContractState";
const ACCOUNT: &str = "abci_query /cosmos.auth.v1beta1.Query/Account";
const BALANCES: &str = "abci_query /cosmos.bank.v1beta1.Query/AllBalances";
const SIMULATE: &str = "abci_query /cosmos.tx.v1beta1.Service/Simulate";

/// Longest any one client call may take before the case counts as a hang.
const CALL_LIMIT: Duration = Duration::from_secs(5);

/// Which recorded reply a request wants: its JSON-RPC method, with the gRPC path for
/// `abci_query`.
fn request_key(body: &[u8]) -> String {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let method = request["method"].as_str().unwrap_or("?");
    if method == "abci_query" {
        format!(
            "abci_query {}",
            request["params"]["path"].as_str().unwrap_or("?")
        )
    } else {
        method.to_string()
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Json(Vec<u8>),
    Http { status: u16, body: Vec<u8> },
}

struct FakeState {
    /// While set, requests go to this node and its replies are recorded.
    upstream: Mutex<Option<String>>,
    http: reqwest::Client,
    recorded: Mutex<BTreeMap<String, Vec<u8>>>,
    answers: Mutex<HashMap<String, Answer>>,
}

async fn fake_node(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    let key = request_key(&body);
    let upstream = state.upstream.lock().unwrap().clone();
    if let Some(upstream) = upstream {
        let reply = state
            .http
            .post(upstream)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the devnet answers");
        let status = reply.status().as_u16();
        let reply = reply
            .bytes()
            .await
            .expect("the devnet's reply body")
            .to_vec();
        // The last reply per key: for polled methods (`tx`), the one that ended the polling.
        state.recorded.lock().unwrap().insert(key, reply.clone());
        return (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            reply,
        )
            .into_response();
    }
    let answer = state.answers.lock().unwrap().get(&key).cloned();
    match answer {
        Some(Answer::Json(body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Some(Answer::Http { status, body }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no answer for {key}"),
        )
            .into_response(),
    }
}

/// What the calls need, learned while recording.
struct Fixture {
    state: Arc<FakeState>,
    client: TendermintClient,
    red_bank: String,
    address: String,
    raw_key: Vec<u8>,
    colls_prefix: Vec<u8>,
    tx_bytes: Vec<u8>,
    tx_hash: TxHash,
    tx_height: u64,
    /// The scenario's node, kept running for the life of the test process.
    _scenario: Devnet,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Starts the devnet and the fake node, and records one real reply per key through the client.
/// Runs once per test process (the first case), in the child process proptest forks.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| runtime().block_on(record()))
}

async fn record() -> Fixture {
    let scenario = Devnet::scenario(3, 7)
        .start()
        .await
        .expect("the devnet starts");
    let state = Arc::new(FakeState {
        upstream: Mutex::new(Some(scenario.node.rpc_http_url())),
        http: reqwest::Client::new(),
        recorded: Mutex::new(BTreeMap::new()),
        answers: Mutex::new(HashMap::new()),
    });
    let app = axum::Router::new()
        .fallback(fake_node)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let manifest = &scenario.manifest;
    let config = ChainConfig::new(
        &manifest.chain_id,
        &manifest.bech32_prefix,
        &[format!("http://{addr}")],
        &[format!("ws://{addr}/websocket")],
        &manifest.fee.denom,
        &manifest.fee.gas_price,
        Duration::from_millis(manifest.block_time_ms),
    )
    .unwrap()
    .with_request_timeout(Duration::from_secs(2))
    .unwrap();
    let client = TendermintClient::new(config).unwrap();
    let red_bank = manifest.contracts.red_bank.clone();

    client.latest_height().await.unwrap();
    let sender = scenario.liquidator(0);
    let receiver = scenario.liquidator(1);
    let address = sender.address().to_string();
    client.balances(&address).await.unwrap();
    let tracker = SequenceTracker::load(&client, &address).await.unwrap();
    let builder = TxBuilder::new(client.config());
    let msg = bank_send_msg(
        sender.address(),
        receiver.address().as_ref(),
        &[coin(1, &manifest.fee.denom)],
    )
    .unwrap();
    let signed = sign_with_simulated_gas(
        &client,
        &builder,
        &sender,
        tracker.account_number(),
        tracker.next(),
        vec![msg],
        "",
    )
    .await
    .unwrap();
    let tx_hash = client.broadcast_sync(signed.bytes.clone()).await.unwrap();
    let outcome = client
        .wait_for_tx(tx_hash, Duration::from_secs(20))
        .await
        .unwrap();
    client.block_results(outcome.height).await.unwrap();

    let _: PaginationResponse<MarketV2Response> = client
        .query_smart(&red_bank, &markets_query(), None)
        .await
        .unwrap();
    let mut colls_prefix = (namespace::COLLATERALS.len() as u16).to_be_bytes().to_vec();
    colls_prefix.extend_from_slice(namespace::COLLATERALS.as_bytes());
    let entries = client
        .scan_raw_prefix(&red_bank, &colls_prefix, 1_000)
        .await
        .unwrap();
    let raw_key = entries.first().expect("seeded collateral").key.clone();
    assert!(client
        .query_raw(&red_bank, &raw_key, None)
        .await
        .unwrap()
        .is_some());

    *state.upstream.lock().unwrap() = None;
    let recorded: Vec<String> = state.recorded.lock().unwrap().keys().cloned().collect();
    for key in [
        "status",
        "block",
        "block_results",
        "broadcast_tx_sync",
        "tx",
        SMART,
        RAW,
        ALL_STATE,
        ACCOUNT,
        BALANCES,
        SIMULATE,
    ] {
        assert!(
            recorded.iter().any(|k| k == key),
            "{key} not recorded: {recorded:?}"
        );
    }
    Fixture {
        state,
        client,
        red_bank,
        address,
        raw_key,
        colls_prefix,
        tx_bytes: signed.bytes,
        tx_hash,
        tx_height: outcome.height,
        _scenario: scenario,
    }
}

fn markets_query() -> red_bank::QueryMsg {
    red_bank::QueryMsg::MarketsV2 {
        start_after: None,
        limit: Some(10),
    }
}

/// One client call and the replies it reads.
#[derive(Debug, Clone, Copy)]
enum Call {
    LatestHeight,
    Block,
    BlockResults,
    Smart,
    Raw,
    Scan,
    ScanConcurrent,
    Account,
    Balances,
    Simulate,
    Broadcast,
    WaitForTx,
}

impl Call {
    const ALL: [Call; 12] = [
        Call::LatestHeight,
        Call::Block,
        Call::BlockResults,
        Call::Smart,
        Call::Raw,
        Call::Scan,
        Call::ScanConcurrent,
        Call::Account,
        Call::Balances,
        Call::Simulate,
        Call::Broadcast,
        Call::WaitForTx,
    ];

    fn keys(self) -> &'static [&'static str] {
        match self {
            Call::LatestHeight => &["status"],
            Call::Block => &["block"],
            Call::BlockResults => &["block", "block_results"],
            Call::Smart => &[SMART],
            Call::Raw => &[RAW],
            Call::Scan | Call::ScanConcurrent => &[ALL_STATE],
            Call::Account => &[ACCOUNT],
            Call::Balances => &[BALANCES],
            Call::Simulate => &[SIMULATE],
            Call::Broadcast => &["broadcast_tx_sync"],
            Call::WaitForTx => &["tx"],
        }
    }

    async fn run(self, f: &Fixture) -> Result<(), ChainError> {
        let c = &f.client;
        match self {
            Call::LatestHeight => c.latest_height().await.map(drop),
            Call::Block => c.block(Some(f.tx_height)).await.map(drop),
            Call::BlockResults => c.block_results(f.tx_height).await.map(drop),
            Call::Smart => c
                .query_smart::<_, PaginationResponse<MarketV2Response>>(
                    &f.red_bank,
                    &markets_query(),
                    None,
                )
                .await
                .map(drop),
            Call::Raw => c.query_raw(&f.red_bank, &f.raw_key, None).await.map(drop),
            Call::Scan => c
                .scan_raw_prefix(&f.red_bank, &f.colls_prefix, 1_000)
                .await
                .map(drop),
            Call::ScanConcurrent => c
                .scan_raw_prefix_concurrent(
                    &f.red_bank,
                    &f.colls_prefix,
                    ScanOptions {
                        page_size: 2,
                        concurrency: 3,
                        height: Some(f.tx_height),
                    },
                )
                .await
                .map(drop),
            Call::Account => c.account(&f.address).await.map(drop),
            Call::Balances => c.balances(&f.address).await.map(drop),
            Call::Simulate => c.simulate(f.tx_bytes.clone()).await.map(drop),
            Call::Broadcast => c.broadcast_sync(f.tx_bytes.clone()).await.map(drop),
            // Short: an answer that reads as "not indexed yet" keeps the client polling.
            Call::WaitForTx => c
                .wait_for_tx(f.tx_hash, Duration::from_millis(100))
                .await
                .map(drop),
        }
    }
}

/// How the reply is damaged.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// Byte edits of the JSON text.
    Bytes(Vec<Mutation>),
    /// The `at`-th JSON node (pre-order) replaced by `with`, or removed when `None`.
    Node {
        at: usize,
        with: Option<Value>,
    },
    /// Byte edits of the `at`-th base64 string decoded (an `abci_query` value, a tx).
    Payload {
        at: usize,
        edits: Vec<Mutation>,
    },
    /// An HTTP error or a body that is not JSON-RPC at all.
    Http {
        status: u16,
        body: Vec<u8>,
    },
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        1 => Just(Fault::None),
        4 => mutations(5).prop_map(Fault::Bytes),
        4 => (any::<usize>(), prop::option::of(json_value(&[
            "code", "value", "height", "result", "response", "block", "header", "data", "txs",
            "txs_results", "tx_result", "hash", "events", "attributes", "log", "gas_used",
            "sync_info", "latest_block_height", "earliest_block_height", "time", "last_commit",
        ]))).prop_map(|(at, with)| Fault::Node { at, with }),
        4 => (any::<usize>(), mutations(4)).prop_map(|(at, edits)| Fault::Payload { at, edits }),
        1 => (prop::sample::select(vec![200u16, 204, 400, 404, 429, 500, 502, 503]), bytes(64))
            .prop_map(|(status, body)| Fault::Http { status, body }),
    ]
}

/// Pointers (RFC 6901) of every node below the root, in pre-order.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{at}/{i}");
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        _ => {}
    }
}

fn damage(original: &[u8], fault: &Fault) -> Answer {
    let json = || serde_json::from_slice::<Value>(original).expect("recorded replies are JSON");
    match fault {
        Fault::None => Answer::Json(original.to_vec()),
        Fault::Bytes(edits) => Answer::Json(mutated(original, edits)),
        Fault::Node { at, with } => {
            let mut reply = json();
            let mut all = Vec::new();
            pointers(&reply, String::new(), &mut all);
            if let Some(path) = all.get(at % all.len().max(1)) {
                match with {
                    Some(with) => *reply.pointer_mut(path).unwrap() = with.clone(),
                    None => {
                        let (parent, last) = path.rsplit_once('/').unwrap();
                        match reply.pointer_mut(parent).unwrap() {
                            Value::Object(map) => {
                                map.remove(&last.replace("~1", "/").replace("~0", "~"));
                            }
                            Value::Array(items) => {
                                items.remove(last.parse::<usize>().unwrap());
                            }
                            _ => unreachable!("a parent is a container"),
                        }
                    }
                }
            }
            Answer::Json(serde_json::to_vec(&reply).unwrap())
        }
        Fault::Payload { at, edits } => {
            let engine = base64::engine::general_purpose::STANDARD;
            let mut reply = json();
            let mut all = Vec::new();
            pointers(&reply, String::new(), &mut all);
            let payloads: Vec<&String> = all
                .iter()
                .filter(|p| {
                    reply.pointer(p).and_then(Value::as_str).is_some_and(|s| {
                        s.len() >= 4
                            && !s.bytes().all(|b| b.is_ascii_digit())
                            && engine.decode(s).is_ok()
                    })
                })
                .collect();
            if let Some(path) = payloads.get(at % payloads.len().max(1)) {
                let node = reply.pointer_mut(path).unwrap();
                let decoded = engine.decode(node.as_str().unwrap()).unwrap();
                *node = Value::String(engine.encode(mutated(&decoded, edits)));
            }
            Answer::Json(serde_json::to_vec(&reply).unwrap())
        }
        Fault::Http { status, body } => Answer::Http {
            status: *status,
            body: body.clone(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1_000,
        // The first case starts the devnet and records; later ones take milliseconds.
        timeout: 120_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn client_decodes_damaged_replies_into_errors_never_panics(
        call in prop::sample::select(Call::ALL.to_vec()),
        which in any::<usize>(),
        fault in fault(),
    ) {
        let f = fixture();
        let keys = call.keys();
        let damaged_key = keys[which % keys.len()];
        {
            let recorded = f.state.recorded.lock().unwrap();
            let mut answers = f.state.answers.lock().unwrap();
            answers.clear();
            for key in keys {
                let original = &recorded[*key];
                let answer = if *key == damaged_key {
                    damage(original, &fault)
                } else {
                    Answer::Json(original.clone())
                };
                answers.insert(key.to_string(), answer);
            }
        }
        let result = runtime().block_on(async {
            tokio::time::timeout(CALL_LIMIT, call.run(f)).await
        });
        let result = result.map_err(|_| {
            TestCaseError::fail(format!("{call:?} hung on a damaged {damaged_key} reply"))
        })?;
        match (&fault, result) {
            (Fault::None, Err(error)) => {
                return Err(TestCaseError::fail(format!(
                    "{call:?} failed on the recorded replies: {error}"
                )))
            }
            (_, Err(error)) => prop_assert!(!error.to_string().is_empty()),
            (_, Ok(())) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A node that answers garbage on purpose: malformed JSON, an HTML error page, wrong protobuf
// inside valid JSON-RPC replies, a huge reply, deeply nested JSON. The client must turn each into
// an error naming the endpoint (no panic, no hang), and a running service binary must keep
// running through it and recover when the node answers properly again.
// ---------------------------------------------------------------------------------------------

/// What the garbage node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Garbage {
    /// Forwards to the devnet (a healthy node).
    Forward,
    /// `{"jsonrpc":"2.0","id":` and nothing more.
    MalformedJson,
    /// A proxy's HTML error page with status 502.
    HtmlError,
    /// The devnet's real reply with every base64 `value` replaced by bytes that are no protobuf.
    WrongProtobuf,
    /// 48 MiB: one JSON string.
    Huge,
    /// 1 MiB of `[`: deeper than any decoder should recurse.
    Nested,
}

const GARBAGE: [Garbage; 5] = [
    Garbage::MalformedJson,
    Garbage::HtmlError,
    Garbage::WrongProtobuf,
    Garbage::Huge,
    Garbage::Nested,
];

struct GarbageNode {
    upstream: String,
    http: reqwest::Client,
    mode: Mutex<Garbage>,
}

impl GarbageNode {
    /// Serves on a free loopback port; returns the node and its URL.
    async fn start(upstream: String) -> (Arc<GarbageNode>, String) {
        let node = Arc::new(GarbageNode {
            upstream,
            http: reqwest::Client::new(),
            mode: Mutex::new(Garbage::Forward),
        });
        let app = axum::Router::new()
            .fallback(garbage_node)
            .with_state(node.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (node, format!("http://{addr}"))
    }

    fn set(&self, mode: Garbage) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Replaces every base64 string under a `value` key with base64 of bytes that no protobuf
/// message decodes from (a field tag with wire type 7, which does not exist).
fn break_protobuf(value: &mut Value) {
    let engine = base64::engine::general_purpose::STANDARD;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let replace = key == "value"
                    && child
                        .as_str()
                        .is_some_and(|s| !s.is_empty() && engine.decode(s).is_ok());
                if replace {
                    *child = Value::String(engine.encode([0x0f, 0xff, 0xff, 0xff, 0x07, 0x0f]));
                } else {
                    break_protobuf(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(break_protobuf),
        _ => {}
    }
}

async fn garbage_node(State(node): State<Arc<GarbageNode>>, body: Bytes) -> Response {
    let mode = *node.mode.lock().unwrap();
    let json = |body: Vec<u8>| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    match mode {
        Garbage::MalformedJson => json(br#"{"jsonrpc":"2.0","id":"#.to_vec()),
        Garbage::HtmlError => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Garbage::Huge => {
            let mut body = Vec::with_capacity(48 << 20);
            body.push(b'"');
            body.resize(48 << 20, b'x');
            body.push(b'"');
            json(body)
        }
        Garbage::Nested => json(vec![b'['; 1 << 20]),
        Garbage::Forward | Garbage::WrongProtobuf => {
            let reply = match node
                .http
                .post(&node.upstream)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
            {
                Ok(reply) => reply.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
            };
            if mode == Garbage::Forward {
                return json(reply);
            }
            match serde_json::from_slice::<Value>(&reply) {
                Ok(mut value) => {
                    break_protobuf(&mut value);
                    json(serde_json::to_vec(&value).unwrap())
                }
                Err(_) => json(reply),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_become_errors_naming_the_endpoint() -> anyhow::Result<()> {
    let scenario = Devnet::scenario(3, 7).start().await?;
    let (node, url) = GarbageNode::start(scenario.node.rpc_http_url()).await;
    let manifest = &scenario.manifest;
    let config = ChainConfig::new(
        &manifest.chain_id,
        &manifest.bech32_prefix,
        std::slice::from_ref(&url),
        &[scenario.node.rpc_ws_url()],
        &manifest.fee.denom,
        &manifest.fee.gas_price,
        Duration::from_millis(manifest.block_time_ms),
    )?
    .with_request_timeout(Duration::from_secs(10))?;
    let client = TendermintClient::new(config)?;
    let red_bank = manifest.contracts.red_bank.clone();
    let address = scenario.liquidator(0).address().to_string();
    let mut colls_prefix = (namespace::COLLATERALS.len() as u16).to_be_bytes().to_vec();
    colls_prefix.extend_from_slice(namespace::COLLATERALS.as_bytes());

    for mode in GARBAGE {
        node.set(mode);
        // Each call: its name, whether it reads protobuf from `abci_query`, and its result.
        let calls: Vec<(&str, bool, Result<(), ChainError>)> = vec![
            ("status", false, client.latest_height().await.map(drop)),
            ("block", false, client.block(None).await.map(drop)),
            ("balances", true, client.balances(&address).await.map(drop)),
            (
                "smart query",
                true,
                client
                    .query_smart::<_, PaginationResponse<MarketV2Response>>(
                        &red_bank,
                        &markets_query(),
                        None,
                    )
                    .await
                    .map(drop),
            ),
            (
                "raw scan",
                true,
                client
                    .scan_raw_prefix(&red_bank, &colls_prefix, 100)
                    .await
                    .map(drop),
            ),
        ];
        for (call, reads_protobuf, result) in calls {
            // Without protobuf inside, a call may still decode (the mutation only touched a
            // `value` it does not read); the others must fail.
            if mode == Garbage::WrongProtobuf && !reads_protobuf && result.is_ok() {
                continue;
            }
            let error = match result {
                Ok(()) => anyhow::bail!("{call} accepted {mode:?}"),
                Err(error) => error.to_string(),
            };
            anyhow::ensure!(
                error.contains(url.trim_start_matches("http://")),
                "{call} on {mode:?}: the error does not name the endpoint {url}: {error}"
            );
            // An error quoting a whole huge reply would flood every log line it reaches.
            anyhow::ensure!(
                error.len() <= 4_096,
                "{call} on {mode:?}: a {} byte error: {}…",
                error.len(),
                &error[..200]
            );
            eprintln!("{mode:?} / {call}: {}", &error[..error.len().min(200)]);
        }
    }
    node.set(Garbage::Forward);
    client.latest_height().await?;
    scenario.shutdown().await;
    Ok(())
}

/// The collector keeps running while its HTTP endpoint answers each kind of garbage in turn
/// (blocks still arrive over the devnet's websocket, so it keeps trying to read them), logs
/// errors naming the endpoint, and catches up once the endpoint answers properly again. A
/// health checker started against a node that only answers garbage exits at once with an
/// error naming the endpoint (exit code 1, not a panic's 101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_keeps_running_through_garbage_and_recovers() -> anyhow::Result<()> {
    use redline_tests::chaos::wait_until;
    use redline_tests::{bin_dir, SERVICES};
    use testkit::http::http_get;
    let bin = bin_dir(&SERVICES)?;
    let dir = tempfile::Builder::new().prefix("garbage-node").tempdir()?;
    let scenario = Devnet::scenario(200, 7).start().await?;
    let (node, url) = GarbageNode::start(scenario.node.rpc_http_url()).await;
    let redis = testkit::RedisServer::start()?;
    let mut manifest = scenario.manifest.clone();
    manifest.rpc_http = vec![url.clone()];
    manifest.rpc_ws = vec![scenario.node.rpc_ws_url()];
    let manifest_path = dir.path().join("manifest.json");
    manifest.write(&manifest_path)?;
    let metrics = format!("127.0.0.1:{}", testkit::free_port()?);
    let log_path = dir.path().join("collector.log");
    let log = std::fs::File::create(&log_path)?;
    let mut collector = tokio::process::Command::new(bin.join("collector"))
        .args(["--manifest", &manifest_path.display().to_string()])
        .args(["--redis-url", &redis.url(), "--metrics-addr", &metrics])
        .args(["--log-format", "json", "--no-progress-bar"])
        .args(["--max-retry-delay-ms", "2000"])
        .env_remove("RUST_LOG")
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let client = scenario.client.clone();
    let indexed = || async {
        let (_, body) = http_get(&metrics, "/health").await?;
        let health: Value = serde_json::from_str(&body)?;
        Ok::<u64, anyhow::Error>(health["last_indexed_height"].as_u64().unwrap_or(0))
    };
    let caught_up = |what: String| {
        let client = client.clone();
        async move {
            let tip = client.latest_height().await?;
            wait_until(&what, Duration::from_secs(120), || async {
                Ok(indexed().await? >= tip)
            })
            .await
        }
    };
    caught_up("the collector to index the chain".into()).await?;
    for mode in GARBAGE {
        node.set(mode);
        let from = client.latest_height().await?;
        wait_until(
            "five blocks of garbage",
            Duration::from_secs(60),
            || async { Ok(client.latest_height().await? >= from + 5) },
        )
        .await?;
        anyhow::ensure!(
            collector.try_wait()?.is_none(),
            "the collector exited on {mode:?}: {}",
            redline_tests::chaos::tail(&log_path, 20)
        );
        node.set(Garbage::Forward);
        caught_up(format!("the collector to catch up after {mode:?}")).await?;
    }
    let text = std::fs::read_to_string(&log_path)?;
    anyhow::ensure!(!text.contains("panicked"), "a panic in the collector's log");
    // Errors quote garbage only in part: a 48 MiB answer must not become 48 MiB log lines.
    anyhow::ensure!(
        text.len() < 8 << 20,
        "the collector's log grew to {} bytes",
        text.len()
    );
    let naming = text
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .filter(|l| l.contains(url.trim_start_matches("http://")))
        .count();
    anyhow::ensure!(naming > 0, "no warning names the garbage endpoint {url}");
    redline_tests::chaos::signal(collector.id().unwrap(), "TERM")?;
    let status = tokio::time::timeout(Duration::from_secs(30), collector.wait()).await??;
    anyhow::ensure!(status.success(), "the collector exited with {status}");
    eprintln!("collector: {naming} warnings naming {url}, caught up after each kind of garbage");

    // At start: a clear error, exit code 1.
    node.set(Garbage::MalformedJson);
    let output = tokio::process::Command::new(bin.join("health-checker"))
        .args(["--manifest", &manifest_path.display().to_string()])
        .args(["--redis-url", &redis.url(), "--log-format", "json"])
        .env_remove("RUST_LOG")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.code() == Some(1),
        "health-checker on a garbage node exited with {} (want 1): {stderr}",
        output.status
    );
    anyhow::ensure!(
        stderr.contains(url.trim_start_matches("http://")) && !stderr.contains("panicked"),
        "health-checker's start error does not name {url}: {stderr}"
    );
    eprintln!("health-checker at start: {}", stderr.trim());
    scenario.shutdown().await;
    Ok(())
}
