//! The master wallet's duty — topping up the worker wallets — held by exactly one process at a
//! time and taken over by another as soon as the master slot's lease is free.
//!
//! Every liquidator process with top-ups enabled runs [`MasterDuty::serve`]: it tries to lease
//! slot 0; the one that gets it runs the [`Treasurer`] until it stops (giving the slot back),
//! the others try again every half lease. A master that dies without giving the slot back (kill
//! -9, a lost container) stops renewing its lease, which expires; one of the survivors (or the
//! replacement process) takes over within a lease and a half, so worker wallets are never left
//! without top-ups while jobs wait for funds.

use std::sync::Arc;
use std::time::Duration;

use redline_chain::{ChainClient, ChainConfig};
use redline_service::config::Secret;
use redline_service::notify::Notifier;

use crate::balances::BalanceBook;
use crate::locks::{KeySpace, Leases};
use crate::recheck::PositionReader;
use crate::record::Recorder;
use crate::shutdown::Shutdown;
use crate::tx_sender::{SendOptions, TxSender};
use crate::wallets::{claim_slot, TopUpPolicy, Treasurer, MASTER_SLOT};

/// What the master's duty needs.
pub struct MasterDuty<C> {
    pub client: C,
    pub chain: ChainConfig,
    pub options: SendOptions,
    pub leases: Leases,
    pub keys: KeySpace,
    pub mnemonic: Secret,
    pub bech32_prefix: String,
    pub slot_ttl: Duration,
    pub max_worker_slots: u32,
    pub policy: TopUpPolicy,
    pub reader: Arc<PositionReader<C>>,
    pub recorder: Arc<Recorder>,
    pub balances: Arc<BalanceBook<C>>,
    pub notifier: Notifier,
}

impl<C: ChainClient + Clone + 'static> MasterDuty<C> {
    /// Leases the master slot when it is free and tops up the workers until `stop` is set.
    /// Returns whether this process ran the top-ups at any point.
    pub async fn serve(self, stop: Shutdown) -> bool {
        let retry = (self.slot_ttl / 2).max(Duration::from_millis(100));
        let mut waited = false;
        while !stop.is_requested() {
            match claim_slot(
                &self.leases,
                &self.keys,
                &self.mnemonic,
                &self.bech32_prefix,
                MASTER_SLOT..=MASTER_SLOT,
                self.slot_ttl,
            )
            .await
            {
                Ok(Some(slot)) => {
                    if waited {
                        tracing::info!(
                            "the master slot was free: this process takes over the top-ups"
                        );
                    }
                    let (wallet, guard) = slot.into_parts();
                    let address = wallet.address().to_string();
                    self.balances.register(MASTER_SLOT, &address);
                    let sender = TxSender::new(
                        self.client.clone(),
                        &self.chain,
                        wallet,
                        self.options.clone(),
                        guard.permit.clone(),
                    )
                    .await;
                    let ran = match sender {
                        Ok(sender) => {
                            self.top_up_until_stopped(Arc::new(sender), &address, &stop)
                                .await;
                            true
                        }
                        Err(error) => {
                            tracing::warn!(master = %address, %error, "master wallet unusable; no top-ups from this process");
                            self.notifier
                                .error(
                                    "liquidator",
                                    format!(
                                        "master wallet {address} unusable, no top-ups: {error}"
                                    ),
                                )
                                .await;
                            stop.requested().await;
                            false
                        }
                    };
                    guard.release(&self.leases).await;
                    return ran;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot lease the master slot; trying again"),
            }
            waited = true;
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stop.requested() => {}
            }
        }
        false
    }

    async fn top_up_until_stopped(&self, sender: Arc<TxSender<C>>, address: &str, stop: &Shutdown) {
        let treasurer = Treasurer::new(
            sender,
            self.leases.clone(),
            self.keys.clone(),
            self.mnemonic.clone(),
            self.bech32_prefix.clone(),
            1..=self.max_worker_slots,
            self.policy.clone(),
            self.reader.clone(),
            self.recorder.clone(),
            self.chain.fee_denom.clone(),
        );
        tracing::info!(master = %address, "this process tops up worker wallets");
        treasurer.run(stop.requested()).await;
    }
}
