//! The devnet node: the chain thread behind a CometBFT-compatible RPC server.
//!
//! - `POST /` — JSON-RPC 2.0 (single or batch), as tendermint-rpc's `HttpClient` sends it;
//! - `GET /<method>?arg=value` — CometBFT's URI form, handy with curl;
//! - `GET /websocket` — JSON-RPC over websocket plus `subscribe`;
//! - `POST /admin/prices`, `GET /admin/info` — devnet controls.
//!
//! [`start`] runs genesis (contracts, seeding) first and serves once it is done.

pub mod jsonrpc;
pub mod render;
pub mod ws;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query as UrlQuery, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cosmwasm_std::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::chain::block::Validator;
use crate::chain::{self, ChainConfig, ChainHandle, ChainState, ChainThread};
use jsonrpc::RpcError;

/// Where and how the node listens, plus the chain's parameters.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub chain: ChainConfig,
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub moniker: String,
    /// How long `broadcast_tx_commit` waits for inclusion.
    pub commit_timeout: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            chain: ChainConfig::default(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 26657,
            moniker: "redline-devnet".into(),
            commit_timeout: jsonrpc::DEFAULT_COMMIT_TIMEOUT,
        }
    }
}

/// What every request handler needs.
pub struct NodeContext {
    pub chain: ChainHandle,
    pub identity: render::NodeIdentity,
    pub validator: Validator,
    pub commit_timeout: Duration,
}

/// A running node. Dropping it stops the server and the chain.
pub struct NodeHandle {
    addr: SocketAddr,
    chain: ChainHandle,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    chain_thread: Option<ChainThread>,
}

impl NodeHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://host:port`, for tendermint-rpc's `HttpClient`.
    pub fn rpc_http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://host:port/websocket`, for tendermint-rpc's `WebSocketClient`.
    pub fn rpc_ws_url(&self) -> String {
        format!("ws://{}/websocket", self.addr)
    }

    /// `http://host:port/admin`: `POST {admin}/prices`, `GET {admin}/info`.
    pub fn admin_url(&self) -> String {
        format!("http://{}/admin", self.addr)
    }

    pub fn chain(&self) -> &ChainHandle {
        &self.chain
    }

    /// Stops serving, then stops the chain thread.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(thread) = self.chain_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.stop()).await;
        }
    }

    /// Waits until the server stops (Ctrl-C handling is the caller's).
    pub async fn wait(&mut self) {
        if let Some(server) = self.server.as_mut() {
            let _ = server.await;
            self.server = None;
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
        // ChainThread's own Drop stops and joins the thread.
    }
}

/// Starts a node: runs `genesis` on the chain thread (deploy contracts, seed accounts), binds
/// the RPC server and starts producing blocks. Returns what genesis returned.
pub async fn start<G, T>(config: NodeConfig, genesis: G) -> anyhow::Result<(NodeHandle, T)>
where
    G: FnOnce(&mut ChainState) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    use anyhow::Context as _;
    // Bind first, so a taken port fails before a long genesis.
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (--host/--port)",
                config.host, config.port
            )
        })?;
    let addr = listener.local_addr().context("listener address")?;
    let (chain, chain_thread, output) = chain::spawn(config.chain.clone(), genesis).await?;

    let node_id: [u8; 20] = Sha256::digest(format!("{} {}", config.chain.chain_id, config.moniker))
        [..20]
        .try_into()
        .expect("20 bytes");
    let ctx = Arc::new(NodeContext {
        chain: chain.clone(),
        identity: render::NodeIdentity {
            chain_id: config.chain.chain_id.clone(),
            moniker: config.moniker.clone(),
            node_id,
            rpc_address: format!("tcp://{addr}"),
        },
        validator: Validator::devnet(),
        commit_timeout: config.commit_timeout,
    });
    let router = Router::new()
        .route("/", post(json_rpc).get(list_routes))
        .route("/websocket", get(websocket))
        .route("/admin/prices", post(admin_prices))
        .route("/admin/info", get(admin_info))
        .route("/{method}", get(uri_call))
        .with_state(ctx);
    let (stop, mut stopped) = watch::channel(false);
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "RPC server failed");
        }
    });
    tracing::info!(%addr, chain_id = %config.chain.chain_id, "devnet RPC listening");
    Ok((
        NodeHandle {
            addr,
            chain,
            stop,
            server: Some(server),
            chain_thread: Some(chain_thread),
        },
        output,
    ))
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (status, Json(value)).into_response()
}

async fn json_rpc(State(ctx): State<Arc<NodeContext>>, body: axum::body::Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                jsonrpc::failure(&Value::Null, &RpcError::parse(e.to_string())),
            )
        }
    };
    match value {
        Value::Array(requests) => {
            if requests.is_empty() {
                return json_response(
                    StatusCode::OK,
                    jsonrpc::failure(&Value::Null, &RpcError::invalid_request("empty batch")),
                );
            }
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers.push(jsonrpc::answer(&ctx, request).await);
            }
            json_response(StatusCode::OK, Value::Array(answers))
        }
        request => json_response(StatusCode::OK, jsonrpc::answer(&ctx, request).await),
    }
}

/// CometBFT's URI form: `GET /block?height=5`, arguments as strings (quotes optional).
async fn uri_call(
    State(ctx): State<Arc<NodeContext>>,
    Path(method): Path<String>,
    UrlQuery(args): UrlQuery<BTreeMap<String, String>>,
) -> Response {
    let params: serde_json::Map<String, Value> = args
        .into_iter()
        .map(|(k, v)| (k, Value::String(v.trim_matches('"').to_string())))
        .collect();
    let id = json!(-1);
    let answer = match jsonrpc::call(&ctx, &method, &params).await {
        Ok(result) => jsonrpc::success(&id, result),
        Err(error) => jsonrpc::failure(&id, &error),
    };
    json_response(StatusCode::OK, answer)
}

async fn list_routes() -> Response {
    let methods = [
        "abci_info",
        "abci_query?path=_&data=_&height=_&prove=_",
        "block?height=_",
        "block_results?height=_",
        "broadcast_tx_async?tx=_",
        "broadcast_tx_commit?tx=_",
        "broadcast_tx_sync?tx=_",
        "header?height=_",
        "health",
        "status",
        "tx?hash=_&prove=_",
    ];
    let body = format!(
        "redline devnet: CometBFT JSON-RPC at POST /, websocket at /websocket, admin at /admin/prices and /admin/info\nAvailable endpoints:\n{}\n",
        methods.iter().map(|m| format!("/{m}")).collect::<Vec<_>>().join("\n")
    );
    (StatusCode::OK, body).into_response()
}

async fn websocket(State(ctx): State<Arc<NodeContext>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| ws::serve(socket, ctx))
}

/// `POST /admin/prices` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricesRequest {
    /// Denom → price per smallest unit, in uusdc... as the oracle stores it (decimal string).
    pub prices: BTreeMap<String, String>,
}

/// `POST /admin/prices` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricesAnswer {
    /// The block whose execution applies the prices (visible once it is committed).
    pub height: u64,
    pub prices: BTreeMap<String, String>,
}

/// Parses `denom → price` strings into positive decimals, naming the bad entry.
pub fn parse_prices(
    prices: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Decimal>, String> {
    if prices.is_empty() {
        return Err("`prices` is empty".into());
    }
    prices
        .iter()
        .map(|(denom, price)| {
            let value: Decimal = price
                .trim()
                .parse()
                .map_err(|e| format!("prices.{denom}: `{price}` is not a decimal: {e}"))?;
            if value.is_zero() {
                return Err(format!("prices.{denom}: a price must be positive"));
            }
            Ok((denom.clone(), value))
        })
        .collect()
}

/// An admin endpoint's refusal: `{"error": message}` with `status`.
fn admin_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_response(status, json!({ "error": message.to_string() }))
}

async fn admin_prices(
    State(ctx): State<Arc<NodeContext>>,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let request: PricesRequest = serde_json::from_slice(&body).map_err(|e| {
        admin_error(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"prices\": {{\"denom\": \"price\"}}}}: {e}"),
        )
    })?;
    let prices = parse_prices(&request.prices)
        .map_err(|error| admin_error(StatusCode::BAD_REQUEST, error))?;
    Ok(match ctx.chain.set_prices(prices.clone()).await {
        Ok(Ok(height)) => json_response(
            StatusCode::OK,
            json!(PricesAnswer {
                height,
                prices: prices
                    .iter()
                    .map(|(d, p)| (d.clone(), p.to_string()))
                    .collect(),
            }),
        ),
        Ok(Err(error)) => admin_error(StatusCode::BAD_REQUEST, error),
        Err(error) => admin_error(StatusCode::SERVICE_UNAVAILABLE, error),
    })
}

async fn admin_info(State(ctx): State<Arc<NodeContext>>) -> Response {
    match ctx.chain.info().await {
        Ok(info) => json_response(StatusCode::OK, json!(info)),
        Err(error) => admin_error(StatusCode::SERVICE_UNAVAILABLE, error),
    }
}
