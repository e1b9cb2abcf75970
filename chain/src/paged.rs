//! List queries that take `start_after` and `limit`, read to the end.

use serde::{de::DeserializeOwned, Serialize};

use crate::{ChainClient, ChainError};

/// Items asked for per page. Mars's list queries cap `limit` at 10 or more, so a page shorter
/// than this is the last one: reading stops there without a round trip for an empty page.
pub const PAGE_LIMIT: u32 = 10;

/// Every item of a paged smart query at `height` (`None`: the node's latest state), in
/// contract order. `query(start_after, limit)` builds one page's message and `cursor(item)`
/// gives the `start_after` that follows `item`. Stops at a page shorter than
/// [`PAGE_LIMIT`], or when the cursor does not advance (a contract that ignores `start_after`
/// would otherwise be read forever).
pub async fn query_all_pages<C, Q, R>(
    client: &C,
    contract: &str,
    height: Option<u64>,
    query: impl Fn(Option<String>, u32) -> Q,
    cursor: impl Fn(&R) -> String,
) -> Result<Vec<R>, ChainError>
where
    C: ChainClient + ?Sized,
    Q: Serialize + Sync,
    R: DeserializeOwned + Send,
{
    let mut all = Vec::new();
    let mut start_after: Option<String> = None;
    loop {
        let page: Vec<R> = client
            .query_smart(contract, &query(start_after.clone(), PAGE_LIMIT), height)
            .await?;
        let full = page.len() >= PAGE_LIMIT as usize;
        let next = page.last().map(&cursor);
        all.extend(page);
        match next {
            Some(next) if full && start_after.as_ref() != Some(&next) => start_after = Some(next),
            _ => return Ok(all),
        }
    }
}
