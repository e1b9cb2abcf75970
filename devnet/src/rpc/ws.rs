//! The `/websocket` endpoint: every JSON-RPC method, plus `subscribe` / `unsubscribe` to
//! `tm.event='NewBlock'` and `tm.event='Tx'` queries with CometBFT 0.38 event payloads.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tendermint_rpc::query::{EventType, Operand, Operation, Query};
use tokio::sync::mpsc;

use super::jsonrpc::{self, RpcError};
use super::{render, NodeContext};

/// Most subscriptions one connection may hold, as CometBFT's `max_subscriptions_per_client`.
const MAX_SUBSCRIPTIONS: usize = 5;

/// CometBFT pings its websocket clients; tendermint-rpc drops a connection that stays silent
/// for 30 s, so an idle client must hear from us well within that.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

struct Subscription {
    id: Value,
    text: String,
    query: Query,
}

fn operand_matches(
    value: &str,
    operand: &Operand,
    cmp: impl Fn(std::cmp::Ordering) -> bool,
) -> bool {
    let ordering = match operand {
        Operand::String(s) => Some(value.cmp(s.as_str())),
        Operand::Unsigned(n) => value
            .parse::<f64>()
            .ok()
            .and_then(|v| v.partial_cmp(&(*n as f64))),
        Operand::Signed(n) => value
            .parse::<f64>()
            .ok()
            .and_then(|v| v.partial_cmp(&(*n as f64))),
        Operand::Float(n) => value.parse::<f64>().ok().and_then(|v| v.partial_cmp(n)),
        // Dates and times are not indexed by the devnet.
        _ => None,
    };
    ordering.is_some_and(cmp)
}

/// Whether an event with this type and `type.key → values` map satisfies the query.
pub fn matches(query: &Query, kind: &EventType, events: &BTreeMap<String, Vec<String>>) -> bool {
    if let Some(wanted) = &query.event_type {
        if wanted != kind {
            return false;
        }
    }
    query.conditions.iter().all(|condition| {
        let Some(values) = events.get(&condition.key) else {
            return false;
        };
        values.iter().any(|value| match &condition.operation {
            Operation::Eq(op) => operand_matches(value, op, |o| o.is_eq()),
            Operation::Lt(op) => operand_matches(value, op, |o| o.is_lt()),
            Operation::Lte(op) => operand_matches(value, op, |o| o.is_le()),
            Operation::Gt(op) => operand_matches(value, op, |o| o.is_gt()),
            Operation::Gte(op) => operand_matches(value, op, |o| o.is_ge()),
            Operation::Contains(needle) => value.contains(needle.as_str()),
            Operation::Exists => true,
        })
    })
}

fn event_message(
    sub: &Subscription,
    data: &Value,
    events: &BTreeMap<String, Vec<String>>,
) -> String {
    jsonrpc::success(
        &sub.id,
        json!({ "query": sub.text, "data": data, "events": events }),
    )
    .to_string()
}

pub async fn serve(socket: WebSocket, ctx: Arc<NodeContext>) {
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut to_send) = mpsc::channel::<String>(1024);
    let writer = tokio::spawn(async move {
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        loop {
            let message = tokio::select! {
                text = to_send.recv() => match text {
                    Some(text) => Message::Text(text.into()),
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Vec::new().into()),
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut blocks = ctx.chain.subscribe_blocks();
    let mut subscriptions: Vec<Subscription> = Vec::new();
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                };
                let reply = handle_text(&ctx, &text, &mut subscriptions, &outgoing);
                if let Some(reply) = reply {
                    if outgoing.send(reply.to_string()).await.is_err() {
                        break;
                    }
                }
            }
            block = blocks.recv() => {
                let record = match block {
                    Ok(record) => record,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "websocket client is too slow; blocks were skipped");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if subscriptions.is_empty() {
                    continue;
                }
                let mut messages = Vec::new();
                if subscriptions.iter().any(|s| s.query.event_type != Some(EventType::Tx)) {
                    let (data, events) = render::new_block_event(&record);
                    for sub in subscriptions.iter().filter(|s| matches(&s.query, &EventType::NewBlock, &events)) {
                        messages.push(event_message(sub, &data, &events));
                    }
                }
                if subscriptions.iter().any(|s| s.query.event_type != Some(EventType::NewBlock)) {
                    for index in 0..record.tx_results.len() {
                        let (data, events) = render::tx_event(&record, index);
                        for sub in subscriptions.iter().filter(|s| matches(&s.query, &EventType::Tx, &events)) {
                            messages.push(event_message(sub, &data, &events));
                        }
                    }
                }
                let mut closed = false;
                for message in messages {
                    if outgoing.send(message).await.is_err() {
                        closed = true;
                        break;
                    }
                }
                if closed {
                    break;
                }
            }
        }
    }
    drop(outgoing);
    let _ = writer.await;
}

/// Handles one incoming text frame. Subscriptions are answered inline; other methods run on
/// their own task (a `broadcast_tx_commit` must not hold up events) and answer through
/// `outgoing`.
fn handle_text(
    ctx: &Arc<NodeContext>,
    text: &str,
    subscriptions: &mut Vec<Subscription>,
    outgoing: &mpsc::Sender<String>,
) -> Option<Value> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            return Some(jsonrpc::failure(
                &Value::Null,
                &RpcError::parse(e.to_string()),
            ))
        }
    };
    let request = match jsonrpc::parse_request(value) {
        Ok(request) => request,
        Err((id, error)) => return Some(jsonrpc::failure(&id, &error)),
    };
    match request.method.as_str() {
        "subscribe" => {
            let Some(Value::String(text)) = request.params.get("query") else {
                return Some(jsonrpc::failure(
                    &request.id,
                    &RpcError::invalid_params("`query` is required"),
                ));
            };
            let query = match Query::from_str(text) {
                Ok(query) => query,
                Err(e) => {
                    return Some(jsonrpc::failure(
                        &request.id,
                        &RpcError::internal(format!("failed to parse query: {e}")),
                    ))
                }
            };
            if subscriptions.iter().any(|s| &s.text == text) {
                return Some(jsonrpc::failure(
                    &request.id,
                    &RpcError::internal("already subscribed"),
                ));
            }
            if subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return Some(jsonrpc::failure(
                    &request.id,
                    &RpcError::internal(format!(
                        "max_subscriptions_per_client {MAX_SUBSCRIPTIONS} reached"
                    )),
                ));
            }
            subscriptions.push(Subscription {
                id: request.id.clone(),
                text: text.clone(),
                query,
            });
            Some(jsonrpc::success(&request.id, json!({})))
        }
        "unsubscribe" => {
            let Some(Value::String(text)) = request.params.get("query") else {
                return Some(jsonrpc::failure(
                    &request.id,
                    &RpcError::invalid_params("`query` is required"),
                ));
            };
            let before = subscriptions.len();
            subscriptions.retain(|s| &s.text != text);
            if subscriptions.len() == before {
                return Some(jsonrpc::failure(
                    &request.id,
                    &RpcError::internal("subscription not found"),
                ));
            }
            Some(jsonrpc::success(&request.id, json!({})))
        }
        "unsubscribe_all" => {
            subscriptions.clear();
            Some(jsonrpc::success(&request.id, json!({})))
        }
        _ => {
            let ctx = ctx.clone();
            let outgoing = outgoing.clone();
            tokio::spawn(async move {
                let reply = match jsonrpc::call(&ctx, &request.method, &request.params).await {
                    Ok(result) => jsonrpc::success(&request.id, result),
                    Err(error) => jsonrpc::failure(&request.id, &error),
                };
                let _ = outgoing.send(reply.to_string()).await;
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_match_like_cometbft() {
        let mut events = BTreeMap::new();
        events.insert("tm.event".to_string(), vec!["Tx".to_string()]);
        events.insert("tx.height".to_string(), vec!["12".to_string()]);
        events.insert(
            "wasm.action".to_string(),
            vec!["deposit".to_string(), "liquidate".to_string()],
        );
        let cases = [
            ("tm.event = 'Tx'", true),
            ("tm.event = 'NewBlock'", false),
            ("tm.event = 'Tx' AND wasm.action = 'liquidate'", true),
            ("tm.event = 'Tx' AND wasm.action = 'borrow'", false),
            ("tm.event = 'Tx' AND tx.height >= 12", true),
            ("tm.event = 'Tx' AND tx.height > 12", false),
            ("tm.event = 'Tx' AND wasm.action CONTAINS 'quid'", true),
            ("tm.event = 'Tx' AND wasm.action EXISTS", true),
            ("tm.event = 'Tx' AND transfer.amount EXISTS", false),
        ];
        for (query, expected) in cases {
            let parsed = Query::from_str(query).unwrap();
            assert_eq!(
                matches(&parsed, &EventType::Tx, &events),
                expected,
                "{query}"
            );
        }
    }
}
