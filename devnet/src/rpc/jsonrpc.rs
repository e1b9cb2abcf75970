//! JSON-RPC 2.0 envelopes and the methods CometBFT serves, shared by HTTP and websocket.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use super::render;
use super::NodeContext;

/// A JSON-RPC error as CometBFT reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i32,
    pub message: &'static str,
    pub data: String,
}

impl RpcError {
    pub fn parse(data: impl Into<String>) -> Self {
        Self {
            code: -32700,
            message: "Parse error. Invalid JSON",
            data: data.into(),
        }
    }
    pub fn invalid_request(data: impl Into<String>) -> Self {
        Self {
            code: -32600,
            message: "Invalid Request",
            data: data.into(),
        }
    }
    pub fn method_not_found(method: &str) -> Self {
        Self {
            code: -32601,
            message: "Method not found",
            data: format!("method `{method}` is not served by the devnet"),
        }
    }
    pub fn invalid_params(data: impl Into<String>) -> Self {
        Self {
            code: -32602,
            message: "Invalid params",
            data: data.into(),
        }
    }
    pub fn internal(data: impl Into<String>) -> Self {
        Self {
            code: -32603,
            message: "Internal error",
            data: data.into(),
        }
    }
}

pub fn success(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn failure(id: &Value, error: &RpcError) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": error.code, "message": error.message, "data": error.data },
    })
}

/// A parsed request: id, method and named parameters (positional ones are mapped to names).
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: serde_json::Map<String, Value>,
}

fn positional_names(method: &str) -> &'static [&'static str] {
    match method {
        "block" | "block_results" | "header" => &["height"],
        "abci_query" => &["path", "data", "height", "prove"],
        "broadcast_tx_sync" | "broadcast_tx_async" | "broadcast_tx_commit" => &["tx"],
        "tx" => &["hash", "prove"],
        "subscribe" | "unsubscribe" => &["query"],
        _ => &[],
    }
}

pub fn parse_request(value: Value) -> Result<Request, (Value, RpcError)> {
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            RpcError::invalid_request("a request must be a JSON object"),
        ));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err((id, RpcError::invalid_request("`method` must be a string"))),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(Value::Array(items)) => {
            let names = positional_names(&method);
            if items.len() > names.len() {
                return Err((
                    id,
                    RpcError::invalid_params(format!(
                        "`{method}` takes at most {} parameters, got {}",
                        names.len(),
                        items.len()
                    )),
                ));
            }
            names
                .iter()
                .zip(items)
                .map(|(name, value)| (name.to_string(), value))
                .collect()
        }
        Some(_) => {
            return Err((
                id,
                RpcError::invalid_params("`params` must be an object or array"),
            ))
        }
    };
    Ok(Request { id, method, params })
}

// ----- parameter decoding -----

fn optional_u64(
    params: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, RpcError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            RpcError::invalid_params(format!("`{name}` must be a non-negative integer"))
        }),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim_matches('"').parse().map(Some).map_err(|_| {
            RpcError::invalid_params(format!("`{name}`: `{s}` is not a non-negative integer"))
        }),
        Some(other) => Err(RpcError::invalid_params(format!(
            "`{name}`: {other} is not an integer"
        ))),
    }
}

fn string_param<'a>(
    params: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, RpcError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        None | Some(Value::Null) => Err(RpcError::invalid_params(format!("`{name}` is required"))),
        Some(other) => Err(RpcError::invalid_params(format!(
            "`{name}`: {other} is not a string"
        ))),
    }
}

fn hex_bytes(text: &str, name: &str) -> Result<Vec<u8>, RpcError> {
    let text = text.trim_matches('"');
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|e| RpcError::invalid_params(format!("`{name}` is not hex: {e}")))
}

fn base64_bytes(text: &str, name: &str) -> Result<Vec<u8>, RpcError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| RpcError::invalid_params(format!("`{name}` is not base64: {e}")))
}

/// A tx hash: base64 in JSON (as tendermint-rpc sends it) or hex (as typed in a URL).
fn tx_hash_param(text: &str) -> Result<[u8; 32], RpcError> {
    let trimmed = text.trim_matches('"');
    let stripped = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    let bytes = if stripped.len() == 64 && stripped.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(stripped).map_err(|e| RpcError::invalid_params(format!("`hash`: {e}")))?
    } else {
        base64_bytes(trimmed, "hash")?
    };
    bytes
        .try_into()
        .map_err(|_| RpcError::invalid_params("`hash` must be 32 bytes"))
}

// ----- methods -----

fn block_at(
    ctx: &NodeContext,
    height: Option<u64>,
) -> Result<std::sync::Arc<crate::chain::BlockRecord>, RpcError> {
    let store = ctx.chain.store();
    let latest = store.latest_height();
    let height = match height {
        None => latest,
        Some(0) => {
            return Err(RpcError::internal(
                "height must be greater than 0, but got 0",
            ))
        }
        Some(h) if h > latest => {
            return Err(RpcError::internal(format!(
                "height {h} must be less than or equal to the current blockchain height {latest}"
            )))
        }
        Some(h) => h,
    };
    if height == 0 {
        return Err(RpcError::internal("no block has been committed yet"));
    }
    store.get(height).cloned().ok_or_else(|| {
        let lowest = store.earliest().map(|b| b.height().value()).unwrap_or(0);
        RpcError::internal(format!(
            "height {height} is not available, lowest height is {lowest}"
        ))
    })
}

/// Runs one method (other than subscribe/unsubscribe, which belong to a websocket).
pub async fn call(
    ctx: &NodeContext,
    method: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<Value, RpcError> {
    match method {
        "health" => Ok(json!({})),
        "status" => {
            let store = ctx.chain.store();
            render::status(
                &ctx.identity,
                &ctx.validator,
                store.earliest().map(|b| b.as_ref()),
                store.latest().map(|b| b.as_ref()),
                store.genesis_time,
                store.catching_up,
            )
            .map_err(RpcError::internal)
        }
        "abci_info" => {
            let store = ctx.chain.store();
            Ok(render::abci_info(store.latest().map(|b| b.as_ref())))
        }
        "block" | "header" | "block_results" => {
            let record = block_at(ctx, optional_u64(params, "height")?)?;
            Ok(match method {
                "block" => render::block(&record),
                "header" => render::header(&record),
                _ => render::block_results(&record),
            })
        }
        "abci_query" => {
            let path = match params.get("path") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(p)) => p.trim_matches('"').to_string(),
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "`path`: {other} is not a string"
                    )))
                }
            };
            let data = match params.get("data") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(d)) => hex_bytes(d, "data")?,
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "`data`: {other} is not hex"
                    )))
                }
            };
            let height = optional_u64(params, "height")?.unwrap_or(0);
            let outcome = ctx
                .chain
                .query(path, data, height)
                .await
                .map_err(|e| RpcError::internal(e.to_string()))?;
            Ok(render::abci_query(outcome))
        }
        "broadcast_tx_sync" => {
            let tx = base64_bytes(string_param(params, "tx")?, "tx")?;
            let outcome = ctx
                .chain
                .check_tx(tx)
                .await
                .map_err(|e| RpcError::internal(e.to_string()))?;
            Ok(render::broadcast_sync(&outcome))
        }
        "broadcast_tx_async" => {
            let tx = base64_bytes(string_param(params, "tx")?, "tx")?;
            let hash = crate::chain::tx::tx_hash(&tx);
            let chain = ctx.chain.clone();
            tokio::spawn(async move {
                let _ = chain.check_tx(tx).await;
            });
            Ok(render::broadcast_async(hash))
        }
        "broadcast_tx_commit" => {
            let tx = base64_bytes(string_param(params, "tx")?, "tx")?;
            broadcast_commit(ctx, tx).await
        }
        "tx" => {
            let hash = tx_hash_param(string_param(params, "hash")?)?;
            let store = ctx.chain.store();
            let found = store.find_tx(&tendermint::Hash::Sha256(hash));
            match found {
                Some((record, index)) => Ok(render::tx(&record, index)),
                None => Err(RpcError::internal(format!(
                    "tx ({}) not found",
                    hex::encode_upper(hash)
                ))),
            }
        }
        "subscribe" | "unsubscribe" | "unsubscribe_all" => Err(RpcError::internal(
            "subscribe/unsubscribe are only served on the websocket endpoint (/websocket)",
        )),
        other => Err(RpcError::method_not_found(other)),
    }
}

async fn broadcast_commit(ctx: &NodeContext, tx: Vec<u8>) -> Result<Value, RpcError> {
    // Subscribe before CheckTx so the including block cannot slip by unseen.
    let mut blocks = ctx.chain.subscribe_blocks();
    let outcome = ctx
        .chain
        .check_tx(tx)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    if outcome.code != 0 {
        return Ok(render::broadcast_commit(&outcome, None));
    }
    let hash = tendermint::Hash::Sha256(outcome.hash);
    let wait = async {
        loop {
            match blocks.recv().await {
                Ok(record) => {
                    if let Some(index) = record.tx_hashes.iter().position(|h| *h == hash) {
                        return Ok((record, index as u32));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(found) = ctx.chain.store().find_tx(&hash) {
                        return Ok(found);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(RpcError::internal("the chain stopped"))
                }
            }
        }
    };
    match tokio::time::timeout(ctx.commit_timeout, wait).await {
        Ok(Ok((record, index))) => Ok(render::broadcast_commit(&outcome, Some((&record, index)))),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(RpcError::internal(format!(
            "timed out waiting for tx to be included in a block (waited {:?})",
            ctx.commit_timeout
        ))),
    }
}

/// Answers one request value (HTTP or websocket); `None` for notifications without an id is
/// not distinguished: every request gets an answer, as CometBFT does.
pub async fn answer(ctx: &NodeContext, value: Value) -> Value {
    match parse_request(value) {
        Err((id, error)) => failure(&id, &error),
        Ok(request) => match call(ctx, &request.method, &request.params).await {
            Ok(result) => success(&request.id, result),
            Err(error) => failure(&request.id, &error),
        },
    }
}

/// `Duration` CometBFT waits in `broadcast_tx_commit` by default.
pub const DEFAULT_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
