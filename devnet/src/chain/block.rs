//! Blocks as CometBFT shows them: headers, block ids, results, and the bounded history the RPC
//! serves `block`, `block_results` and `tx` from.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::Event;
use tendermint::block::{self, parts, Commit, CommitSig, Header, Height};
use tendermint::{account, chain, AppHash, Block, Hash, Time};

/// One committed block with everything the RPC reports about it.
#[derive(Debug, Clone)]
pub struct BlockRecord {
    pub block: Block,
    pub block_id: block::Id,
    pub tx_hashes: Vec<Hash>,
    pub tx_results: Vec<ExecTxResult>,
    /// Events of the block itself (scheduled price moves), outside any tx.
    pub finalize_events: Vec<Event>,
    /// The app hash after this block, which the next header carries.
    pub app_hash: AppHash,
}

impl BlockRecord {
    pub fn height(&self) -> Height {
        self.block.header.height
    }

    /// Gas the block's txs used, failed ones included.
    pub fn gas_used(&self) -> u64 {
        self.tx_results
            .iter()
            .map(|r| u64::try_from(r.gas_used).unwrap_or(0))
            .sum()
    }

    pub fn time(&self) -> Time {
        self.block.header.time
    }
}

/// The single validator the devnet pretends to be.
pub struct Validator {
    pub address: account::Id,
    pub pub_key: tendermint::PublicKey,
}

impl Validator {
    pub fn devnet() -> Self {
        let key_bytes: [u8; 32] = Sha256::digest(b"redline devnet validator").into();
        let pub_key = tendermint::PublicKey::from_raw_ed25519(&key_bytes)
            .expect("32 bytes are a valid ed25519 key encoding");
        let address = account::Id::new(
            Sha256::digest(key_bytes)[..20]
                .try_into()
                .expect("20 bytes"),
        );
        Self { address, pub_key }
    }
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hash(parts: &[&[u8]]) -> Hash {
    Hash::Sha256(sha(parts))
}

/// Builds block `height` on top of `previous` (None for the first block).
pub struct BlockInput<'a> {
    pub chain_id: &'a chain::Id,
    pub height: u64,
    pub time: Time,
    pub txs: Vec<Vec<u8>>,
    pub tx_results: Vec<ExecTxResult>,
    pub finalize_events: Vec<Event>,
    pub previous: Option<&'a BlockRecord>,
    pub genesis_app_hash: &'a AppHash,
    pub validator: &'a Validator,
}

pub fn build(input: BlockInput<'_>) -> BlockRecord {
    let BlockInput {
        chain_id,
        height,
        time,
        txs,
        tx_results,
        finalize_events,
        previous,
        genesis_app_hash,
        validator,
    } = input;
    let tx_hashes: Vec<Hash> = txs
        .iter()
        .map(|tx| Hash::Sha256(Sha256::digest(tx).into()))
        .collect();
    let leaves: Vec<Vec<u8>> = tx_hashes.iter().map(|h| h.as_bytes().to_vec()).collect();
    let data_hash = Hash::Sha256(tendermint::merkle::simple_hash_from_byte_vectors::<
        tendermint::crypto::default::Sha256,
    >(&leaves));
    let empty_hash = Hash::Sha256(tendermint::merkle::simple_hash_from_byte_vectors::<
        tendermint::crypto::default::Sha256,
    >(&[] as &[Vec<u8>]));
    let validators_hash = hash(&[b"validators", validator.pub_key.to_bytes().as_slice()]);
    let previous_app_hash = previous.map(|p| &p.app_hash).unwrap_or(genesis_app_hash);
    let previous_results: Vec<u8> = previous
        .map(|p| {
            p.tx_results
                .iter()
                .flat_map(|r| {
                    let mut bytes = r.code.value().to_be_bytes().to_vec();
                    bytes.extend_from_slice(&r.gas_used.to_be_bytes());
                    bytes
                })
                .collect()
        })
        .unwrap_or_default();
    let header = Header {
        version: block::header::Version { block: 11, app: 0 },
        chain_id: chain_id.clone(),
        height: Height::try_from(height).expect("block heights stay far below i64::MAX"),
        time,
        last_block_id: previous.map(|p| p.block_id),
        last_commit_hash: Some(hash(&[
            b"commit",
            previous
                .map(|p| p.block_id.hash.as_bytes())
                .unwrap_or_default(),
        ])),
        data_hash: Some(data_hash),
        validators_hash,
        next_validators_hash: validators_hash,
        consensus_hash: hash(&[b"consensus params"]),
        app_hash: previous_app_hash.clone(),
        last_results_hash: Some(hash(&[b"results", &previous_results])),
        evidence_hash: Some(empty_hash),
        proposer_address: validator.address,
    };
    let header_hash = header.hash();
    let block_id = block::Id {
        hash: header_hash,
        part_set_header: parts::Header::new(1, hash(&[b"parts", header_hash.as_bytes()]))
            .expect("a one-part set with a sha256 hash is valid"),
    };
    let last_commit = previous.map(|p| Commit {
        height: p.height(),
        round: block::Round::default(),
        block_id: p.block_id,
        signatures: vec![CommitSig::BlockIdFlagCommit {
            validator_address: validator.address,
            timestamp: time,
            // The devnet has no consensus; the signature only has to look like one.
            signature: tendermint::Signature::new(
                [
                    sha(&[b"sig-r", p.block_id.hash.as_bytes()]),
                    sha(&[b"sig-s", p.block_id.hash.as_bytes()]),
                ]
                .concat(),
            )
            .expect("64 bytes are a valid signature length"),
        }],
    });
    let app_hash_bytes = sha(&[
        b"app",
        previous_app_hash.as_bytes(),
        &height.to_be_bytes(),
        data_hash.as_bytes(),
        &tx_results
            .iter()
            .flat_map(|r| r.code.value().to_be_bytes())
            .collect::<Vec<u8>>(),
    ]);
    let app_hash = AppHash::try_from(app_hash_bytes.to_vec()).expect("32 bytes make an app hash");
    BlockRecord {
        block: Block::new(header, txs, Default::default(), last_commit),
        block_id,
        tx_hashes,
        tx_results,
        finalize_events,
        app_hash,
    }
}

/// The last `capacity` blocks and an index of their txs by hash.
pub struct BlockStore {
    blocks: VecDeque<Arc<BlockRecord>>,
    tx_index: HashMap<Hash, (u64, u32)>,
    capacity: usize,
    pub genesis_time: Time,
    pub genesis_app_hash: AppHash,
    /// True until genesis (scenario seeding) is done; `status` reports it as `catching_up`.
    pub catching_up: bool,
}

impl BlockStore {
    pub fn new(capacity: usize, genesis_time: Time, genesis_app_hash: AppHash) -> Self {
        Self {
            blocks: VecDeque::new(),
            tx_index: HashMap::new(),
            capacity: capacity.max(1),
            genesis_time,
            genesis_app_hash,
            catching_up: true,
        }
    }

    pub fn push(&mut self, record: Arc<BlockRecord>) {
        let height = record.height().value();
        for (index, hash) in record.tx_hashes.iter().enumerate() {
            self.tx_index.insert(*hash, (height, index as u32));
        }
        self.blocks.push_back(record);
        while self.blocks.len() > self.capacity {
            if let Some(old) = self.blocks.pop_front() {
                for hash in &old.tx_hashes {
                    if self.tx_index.get(hash).map(|(h, _)| *h) == Some(old.height().value()) {
                        self.tx_index.remove(hash);
                    }
                }
            }
        }
    }

    pub fn latest(&self) -> Option<&Arc<BlockRecord>> {
        self.blocks.back()
    }

    pub fn earliest(&self) -> Option<&Arc<BlockRecord>> {
        self.blocks.front()
    }

    pub fn latest_height(&self) -> u64 {
        self.latest().map(|b| b.height().value()).unwrap_or(0)
    }

    pub fn get(&self, height: u64) -> Option<&Arc<BlockRecord>> {
        let first = self.earliest()?.height().value();
        if height < first {
            return None;
        }
        self.blocks.get((height - first) as usize)
    }

    /// Where a tx landed: its block and index in it.
    pub fn find_tx(&self, hash: &Hash) -> Option<(Arc<BlockRecord>, u32)> {
        let (height, index) = *self.tx_index.get(hash)?;
        Some((self.get(height)?.clone(), index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: u64, store: &mut BlockStore) {
        let chain_id: chain::Id = "devnet-1".parse().unwrap();
        let validator = Validator::devnet();
        let genesis = store.genesis_app_hash.clone();
        for height in 1..=n {
            let previous = store.latest().cloned();
            let record = build(BlockInput {
                chain_id: &chain_id,
                height,
                time: Time::from_unix_timestamp(1_700_000_000 + height as i64, 0).unwrap(),
                txs: vec![height.to_be_bytes().to_vec()],
                tx_results: vec![ExecTxResult::default()],
                finalize_events: vec![],
                previous: previous.as_deref(),
                genesis_app_hash: &genesis,
                validator: &validator,
            });
            store.push(Arc::new(record));
        }
    }

    #[test]
    fn blocks_link_and_history_is_bounded() {
        let mut store = BlockStore::new(
            3,
            Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
            AppHash::default(),
        );
        chain_of(5, &mut store);
        assert_eq!(store.latest_height(), 5);
        assert!(store.get(2).is_none());
        let b4 = store.get(4).unwrap();
        let b5 = store.get(5).unwrap();
        assert_eq!(b5.block.header.last_block_id, Some(b4.block_id));
        assert_eq!(b5.block.header.app_hash, b4.app_hash);
        assert_eq!(b5.block.last_commit.as_ref().unwrap().height.value(), 4);
        let tx_hash = b5.tx_hashes[0];
        assert_eq!(store.find_tx(&tx_hash).unwrap().0.height().value(), 5);
        let old_tx = Hash::Sha256(Sha256::digest(1u64.to_be_bytes()).into());
        assert!(store.find_tx(&old_tx).is_none());
        // The block survives a serde round trip through tendermint's own types.
        let json = serde_json::to_string(&b5.block).unwrap();
        let back: Block = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b5.block);
    }
}
