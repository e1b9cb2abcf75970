//! Discovering every credit account with debt from raw state: one scan of the credit manager's
//! `debt_shares` map names them, then each is read whole (`read_account`).

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt as _, TryStreamExt as _};
use mars::msg::credit_manager::namespace as cm;
use mars::types::StoredCreditAccount;
use redline_chain::{ChainClient, ScanOptions};

use super::{data_error, decode_pair_amount, Rover};
use crate::red_bank::scan::map_prefix;
use crate::ReadError;

/// Every credit account with debt.
#[derive(Debug, Default)]
pub struct CreditDiscovery {
    pub accounts: BTreeMap<u64, StoredCreditAccount>,
    /// `debt_shares` entries scanned.
    pub debt_entries: usize,
}

impl<C: ChainClient> Rover<C> {
    /// Scans `debt_shares` at `height` (`None`: the latest state) and reads every account
    /// owing something there, `concurrency` accounts at a time.
    pub async fn discover_at(
        &self,
        height: Option<u64>,
        options: ScanOptions,
        concurrency: usize,
    ) -> Result<CreditDiscovery, ReadError> {
        let what = "the credit manager's debt shares";
        let entries = self
            .client
            .scan_raw_prefix_concurrent(
                &self.contracts.credit_manager,
                &map_prefix(cm::DEBT_SHARES),
                ScanOptions { height, ..options },
            )
            .await
            .map_err(crate::snapshot::chain_error(what))?;
        let mut ids = BTreeSet::new();
        for entry in &entries {
            let (id, _, shares) =
                decode_pair_amount(entry, cm::DEBT_SHARES).map_err(|e| data_error(what, e))?;
            let id: u64 = id.parse().map_err(|_| ReadError::Data {
                what: what.to_string(),
                message: format!("account id `{id}` is not a number"),
            })?;
            if !shares.is_zero() {
                ids.insert(id);
            }
        }
        let accounts: Vec<Option<StoredCreditAccount>> = futures::stream::iter(ids)
            .map(|id| self.read_account(id, height))
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        Ok(CreditDiscovery {
            accounts: accounts
                .into_iter()
                .flatten()
                .filter(StoredCreditAccount::has_debt)
                .map(|account| (account.account_id, account))
                .collect(),
            debt_entries: entries.len(),
        })
    }
}
