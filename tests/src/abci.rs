//! The devnet node through an unmodified tendermint-rpc client, without redline's chain client:
//! raw ABCI queries, txs signed by hand with cosmrs, and raw HTTP posts. The node tests use these
//! so that what they check is the node, not redline's client.

use std::time::Duration;

use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::proto::traits::Message;
use cosmrs::tx::{AuthInfo, Fee, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tendermint_rpc::{Client, HttpClient};

/// The ABCI path of a contract's smart query.
pub const SMART_QUERY: &str = "/cosmwasm.wasm.v1.Query/SmartContractState";

/// `request` sent to the ABCI query `path`: the decoded answer and the height that gave it, or
/// the code and log of a refusal.
pub async fn query<Req: Message, Resp: Message + Default>(
    http: &HttpClient,
    path: &str,
    request: Req,
) -> Result<(u64, Resp), (u32, String)> {
    let answer = http
        .abci_query(Some(path.to_string()), request.encode_to_vec(), None, false)
        .await
        .unwrap();
    if answer.code.is_err() {
        return Err((answer.code.value(), answer.log));
    }
    let response = Resp::decode(answer.value.as_slice()).unwrap();
    Ok((answer.height.value(), response))
}

/// The raw JSON a contract answers to the smart query `msg`, and the height that answered it.
pub async fn smart_raw(
    http: &HttpClient,
    contract: &str,
    msg: &impl Serialize,
) -> Result<(u64, Vec<u8>), (u32, String)> {
    let request = QuerySmartContractStateRequest {
        address: contract.to_string(),
        query_data: serde_json::to_vec(msg).unwrap(),
    };
    let (height, response): (u64, QuerySmartContractStateResponse) =
        query(http, SMART_QUERY, request).await?;
    Ok((height, response.data))
}

/// A smart query that must succeed, its answer decoded.
pub async fn smart<T: DeserializeOwned>(
    http: &HttpClient,
    contract: &str,
    msg: &impl Serialize,
) -> T {
    let (_, data) = smart_raw(http, contract, msg)
        .await
        .unwrap_or_else(|(code, log)| panic!("smart query refused with code {code}: {log}"));
    serde_json::from_slice(&data).unwrap()
}

/// The auth module's account of `address`.
pub async fn account(http: &HttpClient, address: &AccountId) -> BaseAccount {
    let (_, response): (u64, QueryAccountResponse) = query(
        http,
        "/cosmos.auth.v1beta1.Query/Account",
        QueryAccountRequest {
            address: address.to_string(),
        },
    )
    .await
    .unwrap();
    let any = response.account.unwrap();
    assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
    BaseAccount::decode(any.value.as_slice()).unwrap()
}

/// What a hand-signed tx commits to besides its messages (its fee is paid in uosmo).
#[derive(Debug, Clone)]
pub struct TxParams {
    pub account_number: u64,
    pub sequence: u64,
    pub fee_amount: u128,
    pub gas_limit: u64,
    pub chain_id: String,
    pub memo: String,
}

/// The tx body of `msgs` under `params`.
pub fn body(msgs: Vec<Any>, params: &TxParams) -> cosmrs::tx::Body {
    cosmrs::tx::Body::new(msgs, params.memo.as_str(), 0u32)
}

/// The signer and fee part of a tx signed by `key` under `params`.
pub fn auth_info(key: &SigningKey, params: &TxParams) -> AuthInfo {
    SignerInfo::single_direct(Some(key.public_key()), params.sequence).auth_info(
        Fee::from_amount_and_gas(
            cosmrs::Coin {
                denom: "uosmo".parse().unwrap(),
                amount: params.fee_amount,
            },
            params.gas_limit,
        ),
    )
}

/// `msgs` in a tx signed by `key` (sign mode direct), as broadcast bytes.
pub fn sign(key: &SigningKey, msgs: Vec<Any>, params: &TxParams) -> Vec<u8> {
    let sign_doc = SignDoc::new(
        &body(msgs, params),
        &auth_info(key, params),
        &params.chain_id.parse().unwrap(),
        params.account_number,
    )
    .unwrap();
    sign_doc.sign(key).unwrap().to_bytes().unwrap()
}

/// Waits until the node reports `height`, failing the test after `timeout`.
pub async fn wait_for_height(http: &HttpClient, height: u64, timeout: Duration) {
    let poll = Duration::from_millis(50);
    for _ in 0..timeout.as_millis() / poll.as_millis() {
        let status = http.status().await.unwrap();
        if status.sync_info.latest_block_height.value() >= height {
            return;
        }
        tokio::time::sleep(poll).await;
    }
    panic!("height {height} not reached");
}

/// POSTs `body` as JSON to `path` on `authority` (`host:port`) over a fresh connection, and
/// returns the whole raw response, head and body.
pub async fn raw_post(authority: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
