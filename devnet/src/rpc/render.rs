//! Replies in CometBFT 0.38's JSON shapes, built from tendermint-rpc's own response types.
//!
//! One deviation of those types is patched: tendermint-rs serializes ABCI `data` bytes as a
//! JSON array of numbers, while CometBFT sends base64 strings. [`fix_bytes_fields`] rewrites
//! them, so the wire carries exactly what a CometBFT node sends.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::Event;
use tendermint::block::Height;
use tendermint_rpc::endpoint;

use crate::chain::{BlockRecord, CheckOutcome, QueryOutcome};

const COMETBFT_VERSION: &str = "0.38.17";

fn height(value: u64) -> Height {
    Height::try_from(value).unwrap_or_default()
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    let mut value = serde_json::to_value(value)
        .unwrap_or_else(|e| json!({ "serialization_error": e.to_string() }));
    fix_bytes_fields(&mut value);
    value
}

/// Turns `"data": [1,2,3]` (tendermint-rs's encoding of `Bytes`) into base64 as CometBFT does.
pub fn fix_bytes_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if key == "data" {
                    if let Value::Array(items) = field {
                        if !items.is_empty() && items.iter().all(|i| i.is_u64()) {
                            let bytes: Vec<u8> = items
                                .iter()
                                .filter_map(|i| i.as_u64().map(|b| b as u8))
                                .collect();
                            *field = Value::String(
                                base64::engine::general_purpose::STANDARD.encode(bytes),
                            );
                            continue;
                        }
                    }
                }
                fix_bytes_fields(field);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_bytes_fields),
        _ => {}
    }
}

/// CometBFT sends empty lists where tendermint-rs writes `null` for a block's txs and evidence.
fn empty_lists_in_block(block: &mut Value) {
    for (outer, inner) in [("data", "txs"), ("evidence", "evidence")] {
        if let Some(field) = block.get_mut(outer).and_then(|o| o.get_mut(inner)) {
            if field.is_null() {
                *field = json!([]);
            }
        }
    }
}

pub struct NodeIdentity {
    pub chain_id: String,
    pub moniker: String,
    pub node_id: [u8; 20],
    pub rpc_address: String,
}

pub fn status(
    identity: &NodeIdentity,
    validator: &crate::chain::block::Validator,
    earliest: Option<&BlockRecord>,
    latest: Option<&BlockRecord>,
    genesis_time: tendermint::Time,
    catching_up: bool,
) -> Result<Value, String> {
    let node_info: tendermint::node::Info = serde_json::from_value(json!({
        "protocol_version": { "p2p": "8", "block": "11", "app": "0" },
        "id": hex::encode(identity.node_id),
        "listen_addr": "tcp://0.0.0.0:26656",
        "network": identity.chain_id,
        "version": COMETBFT_VERSION,
        "channels": "40202122233038606100",
        "moniker": identity.moniker,
        "other": { "tx_index": "on", "rpc_address": identity.rpc_address },
    }))
    .map_err(|e| format!("node info: {e}"))?;
    let validator_info = tendermint::validator::Info {
        address: validator.address,
        pub_key: validator.pub_key,
        power: 10u32.into(),
        name: None,
        proposer_priority: Default::default(),
    };
    let empty_hash = tendermint::Hash::None;
    let sync_info = endpoint::status::SyncInfo {
        earliest_block_hash: earliest.map(|b| b.block_id.hash).unwrap_or(empty_hash),
        earliest_app_hash: earliest
            .map(|b| b.block.header.app_hash.clone())
            .unwrap_or_default(),
        earliest_block_height: earliest.map(|b| b.height()).unwrap_or_default(),
        earliest_block_time: earliest.map(|b| b.time()).unwrap_or(genesis_time),
        latest_block_hash: latest.map(|b| b.block_id.hash).unwrap_or(empty_hash),
        latest_app_hash: latest.map(|b| b.app_hash.clone()).unwrap_or_default(),
        latest_block_height: latest.map(|b| b.height()).unwrap_or_default(),
        latest_block_time: latest.map(|b| b.time()).unwrap_or(genesis_time),
        catching_up,
    };
    let mut value = to_value(&endpoint::status::Response {
        node_info,
        sync_info,
        validator_info,
    });
    // CometBFT sends no validator name.
    if let Some(info) = value
        .get_mut("validator_info")
        .and_then(Value::as_object_mut)
    {
        info.remove("name");
        info.insert("proposer_priority".into(), json!("0"));
    }
    Ok(value)
}

pub fn block(record: &BlockRecord) -> Value {
    let mut value = to_value(&endpoint::block::Response {
        block_id: record.block_id,
        block: record.block.clone(),
    });
    if let Some(block) = value.get_mut("block") {
        empty_lists_in_block(block);
    }
    value
}

pub fn header(record: &BlockRecord) -> Value {
    to_value(&endpoint::header::Response {
        header: record.block.header.clone(),
    })
}

pub fn block_results(record: &BlockRecord) -> Value {
    let mut value = to_value(&endpoint::block_results::Response {
        height: record.height(),
        txs_results: (!record.tx_results.is_empty()).then(|| record.tx_results.clone()),
        finalize_block_events: record.finalize_events.clone(),
        begin_block_events: None,
        end_block_events: None,
        validator_updates: vec![],
        consensus_param_updates: None,
        app_hash: record.app_hash.clone(),
    });
    if let Some(map) = value.as_object_mut() {
        // CometBFT 0.38 has neither field, and always sends the (possibly empty) event list.
        map.remove("begin_block_events");
        map.remove("end_block_events");
        map.entry("finalize_block_events").or_insert(json!([]));
    }
    value
}

pub fn abci_query(outcome: QueryOutcome) -> Value {
    let (code, codespace, log, value) = match outcome.result {
        Ok(value) => (0, String::new(), String::new(), value),
        Err(error) => (
            error.code,
            error.codespace.to_string(),
            error.log,
            Vec::new(),
        ),
    };
    to_value(&endpoint::abci_query::Response {
        response: endpoint::abci_query::AbciQuery {
            code: code.into(),
            log,
            info: String::new(),
            index: 0,
            key: Vec::new(),
            value,
            proof: None,
            height: height(outcome.height),
            codespace,
        },
    })
}

pub fn abci_info(latest: Option<&BlockRecord>) -> Value {
    to_value(&endpoint::abci_info::Response {
        response: tendermint::abci::response::Info {
            data: "redline-devnet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 0,
            last_block_height: latest.map(|b| b.height()).unwrap_or_default(),
            last_block_app_hash: latest.map(|b| b.app_hash.clone()).unwrap_or_default(),
        },
    })
}

fn hash_of(outcome: &CheckOutcome) -> tendermint::Hash {
    tendermint::Hash::Sha256(outcome.hash)
}

pub fn broadcast_sync(outcome: &CheckOutcome) -> Value {
    to_value(&endpoint::broadcast::tx_sync::Response {
        codespace: outcome.codespace.clone(),
        code: outcome.code.into(),
        data: Default::default(),
        log: outcome.log.clone(),
        hash: hash_of(outcome),
    })
}

pub fn broadcast_async(hash: [u8; 32]) -> Value {
    to_value(&endpoint::broadcast::tx_async::Response {
        codespace: String::new(),
        code: 0.into(),
        data: Default::default(),
        log: String::new(),
        hash: tendermint::Hash::Sha256(hash),
    })
}

fn check_tx_response(outcome: &CheckOutcome) -> tendermint::abci::response::CheckTx {
    tendermint::abci::response::CheckTx {
        code: outcome.code.into(),
        log: outcome.log.clone(),
        gas_wanted: i64::try_from(outcome.gas_wanted).unwrap_or(i64::MAX),
        gas_used: i64::try_from(outcome.gas_used).unwrap_or(i64::MAX),
        codespace: outcome.codespace.clone(),
        ..Default::default()
    }
}

pub fn broadcast_commit(outcome: &CheckOutcome, included: Option<(&BlockRecord, u32)>) -> Value {
    let (tx_result, at) = match included {
        Some((record, index)) => (record.tx_results[index as usize].clone(), record.height()),
        None => (ExecTxResult::default(), Height::default()),
    };
    let mut value = to_value(&endpoint::broadcast::tx_commit::Response {
        check_tx: check_tx_response(outcome),
        tx_result,
        hash: hash_of(outcome),
        height: at,
    });
    if included.is_none() {
        if let Some(map) = value.as_object_mut() {
            map.insert("height".into(), json!("0"));
        }
    }
    value
}

pub fn tx(record: &BlockRecord, index: u32) -> Value {
    let i = index as usize;
    to_value(&endpoint::tx::Response {
        hash: record.tx_hashes[i],
        height: record.height(),
        index,
        tx_result: record.tx_results[i].clone(),
        tx: record.block.data[i].clone(),
        proof: None,
    })
}

/// `type.key → values` over events, as CometBFT indexes them for subscriptions.
pub fn flatten_events(events: &[Event], into: &mut BTreeMap<String, Vec<String>>) {
    for event in events {
        for attr in &event.attributes {
            if let (Ok(key), Ok(value)) = (attr.key_str(), attr.value_str()) {
                into.entry(format!("{}.{}", event.kind, key))
                    .or_default()
                    .push(value.to_string());
            }
        }
    }
}

/// The `data` and `events` of a `NewBlock` subscription event.
pub fn new_block_event(record: &BlockRecord) -> (Value, BTreeMap<String, Vec<String>>) {
    let finalize = tendermint::abci::response::FinalizeBlock {
        events: record.finalize_events.clone(),
        tx_results: record.tx_results.clone(),
        validator_updates: vec![],
        consensus_param_updates: None,
        app_hash: record.app_hash.clone(),
    };
    let mut data = to_value(&tendermint_rpc::event::v0_38::SerEventData::NewBlock {
        block: Some(Box::new(record.block.clone())),
        block_id: record.block_id,
        result_finalize_block: Some(finalize),
    });
    if let Some(block) = data.pointer_mut("/value/block") {
        empty_lists_in_block(block);
    }
    let mut events = BTreeMap::new();
    events.insert("tm.event".to_string(), vec!["NewBlock".to_string()]);
    flatten_events(&record.finalize_events, &mut events);
    (data, events)
}

/// The `data` and `events` of a `Tx` subscription event for tx `index` of a block.
pub fn tx_event(record: &BlockRecord, index: usize) -> (Value, BTreeMap<String, Vec<String>>) {
    let result = &record.tx_results[index];
    let data = json!({
        "type": "tendermint/event/Tx",
        "value": {
            "TxResult": {
                "height": record.height().value().to_string(),
                "index": index,
                "tx": base64::engine::general_purpose::STANDARD.encode(&record.block.data[index]),
                "result": to_value(result),
            }
        }
    });
    let mut events = BTreeMap::new();
    events.insert("tm.event".to_string(), vec!["Tx".to_string()]);
    events.insert(
        "tx.hash".to_string(),
        vec![record.tx_hashes[index].to_string()],
    );
    events.insert(
        "tx.height".to_string(),
        vec![record.height().value().to_string()],
    );
    flatten_events(&result.events, &mut events);
    (data, events)
}
