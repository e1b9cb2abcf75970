//! Scanning a contract's raw storage under a key prefix with AllContractState paging.
//!
//! The serial scan pages by `next_key` from the prefix itself (the SDK's key pagination starts
//! at the given key, inclusive) and stops at the first key past the prefix.
//!
//! The concurrent scan splits the prefix's key range into disjoint sub-ranges and pages them in
//! parallel. Split points are sampled the way Mars's old collector windowed the store: offset
//! pagination (`offset = k·total/n`, `limit = 1`, with `count_total`) gives evenly spaced keys
//! of the whole contract store. Each sub-range is then paged by key, so the result is exactly the
//! serial scan's (every key once, key order) no matter how good the split points are: a node
//! that ignores offsets only costs parallelism, never entries.

use std::collections::BTreeMap;
use std::future::Future;

use futures::{stream, StreamExt, TryStreamExt};

use super::ChainError;

/// One storage entry of a contract.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// How a concurrent scan pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Entries per AllContractState page.
    pub page_size: u32,
    /// Pages in flight at once.
    pub concurrency: usize,
    /// Pins every page to one state version; `None` reads the latest for each page.
    pub height: Option<u64>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            page_size: 1_000,
            concurrency: 8,
            height: None,
        }
    }
}

/// One AllContractState pagination request, as the SDK's `PageRequest` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageQuery {
    pub key: Vec<u8>,
    pub offset: u64,
    pub limit: u64,
    pub count_total: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub entries: Vec<RawEntry>,
    /// Empty or absent when this was the last page.
    pub next_key: Option<Vec<u8>>,
    /// Entries in the whole store, when `count_total` was asked and the node counts.
    pub total: Option<u64>,
}

/// Where pages come from: the RPC client, or an in-memory store in tests.
pub(crate) trait PageSource: Sync {
    fn page(&self, query: PageQuery) -> impl Future<Output = Result<Page, ChainError>> + Send;
    /// Names the source in errors.
    fn describe(&self) -> String;
}

/// The first key after every key starting with `prefix`; `None` when there is none
/// (the prefix is empty or all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) async fn scan_serial<S: PageSource>(
    source: &S,
    prefix: &[u8],
    page_size: u32,
) -> Result<Vec<RawEntry>, ChainError> {
    scan_range(
        source,
        prefix,
        prefix.to_vec(),
        prefix_end(prefix),
        page_size,
    )
    .await
}

/// Pages `[start, end)` by key, keeping entries under `prefix`.
async fn scan_range<S: PageSource>(
    source: &S,
    prefix: &[u8],
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    page_size: u32,
) -> Result<Vec<RawEntry>, ChainError> {
    let mut out = Vec::new();
    let mut key = start;
    loop {
        let page = source
            .page(PageQuery {
                key: key.clone(),
                offset: 0,
                limit: u64::from(page_size.max(1)),
                count_total: false,
            })
            .await?;
        let mut past_end = false;
        for entry in page.entries {
            if end.as_ref().is_some_and(|end| entry.key >= *end) {
                past_end = true;
                break;
            }
            if entry.key < key {
                // A node that ignores the start key: skip what precedes the range.
                continue;
            }
            if entry.key.starts_with(prefix) {
                out.push(entry);
            }
        }
        match page.next_key {
            Some(next) if !past_end && !next.is_empty() => {
                if next <= key {
                    return Err(ChainError::Decode {
                        endpoint: source.describe(),
                        what: "AllContractState pagination".into(),
                        message: format!(
                            "next_key {} does not advance past {}",
                            hex::encode(&next),
                            hex::encode(&key)
                        ),
                    });
                }
                key = next;
            }
            _ => return Ok(out),
        }
    }
}

pub(crate) async fn scan_concurrent<S: PageSource>(
    source: &S,
    prefix: &[u8],
    options: ScanOptions,
) -> Result<Vec<RawEntry>, ChainError> {
    let page_size = options.page_size.max(1);
    let concurrency = options.concurrency.max(1);
    if concurrency == 1 {
        return scan_serial(source, prefix, page_size).await;
    }
    let total = source
        .page(PageQuery {
            key: Vec::new(),
            offset: 0,
            limit: 1,
            count_total: true,
        })
        .await?
        .total
        .unwrap_or(0);
    let shards = total
        .div_ceil(u64::from(page_size))
        .min(concurrency as u64 * 4);
    if shards <= 1 {
        return scan_serial(source, prefix, page_size).await;
    }

    let samples: Vec<Option<Vec<u8>>> = stream::iter((1..shards).map(|k| k * total / shards))
        .map(|offset| async move {
            let page = source
                .page(PageQuery {
                    key: Vec::new(),
                    offset,
                    limit: 1,
                    count_total: false,
                })
                .await?;
            Ok::<_, ChainError>(page.entries.into_iter().next().map(|e| e.key))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;

    let end = prefix_end(prefix);
    let mut bounds: Vec<Vec<u8>> = samples
        .into_iter()
        .flatten()
        .filter(|k| k.as_slice() > prefix && end.as_ref().is_none_or(|end| k < end))
        .collect();
    bounds.sort();
    bounds.dedup();

    let mut starts = vec![prefix.to_vec()];
    starts.extend(bounds);
    let ranges: Vec<(Vec<u8>, Option<Vec<u8>>)> = starts
        .iter()
        .enumerate()
        .map(|(i, start)| (start.clone(), starts.get(i + 1).cloned().or(end.clone())))
        .collect();
    tracing::debug!(
        source = %source.describe(),
        total,
        ranges = ranges.len(),
        "scanning prefix {} concurrently",
        hex::encode(prefix)
    );

    let parts: Vec<Vec<RawEntry>> = stream::iter(ranges)
        .map(|(start, end)| scan_range(source, prefix, start, end, page_size))
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let merged: BTreeMap<Vec<u8>, Vec<u8>> = parts
        .into_iter()
        .flatten()
        .map(|e| (e.key, e.value))
        .collect();
    Ok(merged
        .into_iter()
        .map(|(key, value)| RawEntry { key, value })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A contract store paged the way the SDK's `query.Paginate` does it, optionally deaf to
    /// offsets (as a minimal node might be) to check the concurrent scan degrades gracefully.
    struct MemoryStore {
        entries: BTreeMap<Vec<u8>, Vec<u8>>,
        honours_offset: bool,
        calls: AtomicUsize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl MemoryStore {
        fn new(keys: impl IntoIterator<Item = Vec<u8>>, honours_offset: bool) -> Self {
            MemoryStore {
                entries: keys.into_iter().map(|k| (k.clone(), k)).collect(),
                honours_offset,
                calls: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }
        }
    }

    impl PageSource for MemoryStore {
        async fn page(&self, query: PageQuery) -> Result<Page, ChainError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Stay pending once, as a network call would, so concurrent callers overlap.
            tokio::task::yield_now().await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let skip = if query.key.is_empty() && self.honours_offset {
                query.offset as usize
            } else {
                0
            };
            let mut iter = self
                .entries
                .range(query.key.clone()..)
                .skip(skip)
                .map(|(k, v)| RawEntry {
                    key: k.clone(),
                    value: v.clone(),
                });
            let entries: Vec<RawEntry> = iter.by_ref().take(query.limit as usize).collect();
            let next_key = iter.next().map(|e| e.key);
            Ok(Page {
                entries,
                next_key,
                total: query.count_total.then_some(self.entries.len() as u64),
            })
        }

        fn describe(&self) -> String {
            "memory".into()
        }
    }

    fn expected(store: &MemoryStore, prefix: &[u8]) -> Vec<RawEntry> {
        store
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| RawEntry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// cw-storage-plus map keys: length-prefixed namespace, then the key.
    fn map_key(namespace: &str, key: &str) -> Vec<u8> {
        let mut k = (namespace.len() as u16).to_be_bytes().to_vec();
        k.extend(namespace.as_bytes());
        k.extend(key.as_bytes());
        k
    }

    #[test]
    fn prefix_end_increments_and_carries() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn concurrent_scan_of_a_map_among_others_is_complete_and_parallel() {
        let mut keys = Vec::new();
        for i in 0..2_000 {
            keys.push(map_key("collaterals", &format!("osmo1user{i:05}uatom")));
            keys.push(map_key("debts", &format!("osmo1user{i:05}uusdc")));
            keys.push(map_key("markets", &format!("denom{i}")));
        }
        let store = MemoryStore::new(keys, true);
        let prefix = map_key("debts", "");
        let options = ScanOptions {
            page_size: 100,
            concurrency: 4,
            height: None,
        };
        let got = block_on(scan_concurrent(&store, &prefix, options)).unwrap();
        assert_eq!(got.len(), 2_000);
        assert_eq!(got, expected(&store, &prefix));
        assert_eq!(store.max_in_flight.load(Ordering::SeqCst), 4);

        store.calls.store(0, Ordering::SeqCst);
        store.max_in_flight.store(0, Ordering::SeqCst);
        let serial = block_on(scan_serial(&store, &prefix, 100)).unwrap();
        assert_eq!(serial, got);
        // 2,000 entries in pages of 100, plus the page that sees the next map.
        assert_eq!(store.calls.load(Ordering::SeqCst), 21);
        assert_eq!(store.max_in_flight.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn rejects_a_node_whose_pagination_does_not_advance() {
        struct Stuck;
        impl PageSource for Stuck {
            async fn page(&self, query: PageQuery) -> Result<Page, ChainError> {
                Ok(Page {
                    entries: vec![],
                    next_key: Some(query.key),
                    total: None,
                })
            }
            fn describe(&self) -> String {
                "stuck node".into()
            }
        }
        let err = block_on(scan_serial(&Stuck, b"p", 10))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stuck node") && err.contains("does not advance"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn concurrent_equals_serial_equals_filter(
            keys in proptest::collection::btree_set(proptest::collection::vec(0u8..4, 1..6), 0..300),
            prefix in proptest::collection::vec(0u8..4, 0..3),
            page_size in 1u32..20,
            concurrency in 1usize..6,
            honours_offset in any::<bool>(),
        ) {
            let store = MemoryStore::new(keys, honours_offset);
            let want = expected(&store, &prefix);
            let serial = block_on(scan_serial(&store, &prefix, page_size)).unwrap();
            prop_assert_eq!(&serial, &want);
            let options = ScanOptions { page_size, concurrency, height: None };
            let concurrent = block_on(scan_concurrent(&store, &prefix, options)).unwrap();
            prop_assert_eq!(&concurrent, &want);
        }
    }
}
