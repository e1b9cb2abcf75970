//! The capture oracle: which accounts left with a liquidation health factor below 1 could
//! still be liquidated at a profit, judged by the chain alone.
//!
//! It shares nothing with the health checker's or the liquidator's planning code. For every
//! account it asks the Red Bank its health at liquidation prices
//! (`user_position_liquidation_pricing`); for each one below 1 it lists the account's debts and
//! enabled collaterals (`user_debts`, `user_collaterals`) and, for every (debt denom,
//! collateral denom) pair, simulates a transaction from a wallet of its own:
//!
//! 1. `liquidate { user, collateral_denom }` sending the account's whole debt in that denom,
//! 2. `withdraw { denom: collateral denom }` of everything the wallet holds in the Red Bank
//!    (nothing before the liquidation: the wallet is fresh), so the withdraw event says exactly
//!    what the liquidator received after the protocol fee.
//!
//! Profit = value of the collateral received − value of the debt repaid (the liquidate event's
//! `debt_amount`) − the fee of that transaction (simulated gas × the chain's gas adjustment ×
//! gas price, the fee market's with the liquidators' headroom where the chain has one), at the
//! oracle contract's default prices. A pair the contract refuses is not a
//! liquidation; a transport error is an error of the caller, never a refusal.
//!
//! The verdicts split the accounts left with HF < 1 into: no enabled collateral left; every
//! liquidation unprofitable after the fee (with the best profit found; a pair whose seized
//! collateral would round to nothing counts here with profit 0); profitable (a capture target
//! missed); other (must not happen: every pair refused for some other reason).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use cosmwasm_std::{Coin, Decimal, Decimal256, SignedDecimal256, Uint128, Uint256};
use futures::StreamExt as _;
use redline_chain::{
    bank_send_msg, execute_contract_msg, sign_with_simulated_gas, ChainClient, ChainConfig,
    ChainError, TendermintClient, TxBuilder, Wallet,
};
use serde_json::{json, Value as Json};

/// HD slot of the oracle's own wallet (far from the liquidators' slots).
pub const ORACLE_SLOT: u32 = 900;

/// A value in base-denom units, possibly negative.
pub type Value = SignedDecimal256;

/// What became of one account left with HF < 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    NoEnabledCollateral,
    /// Every pair the contract accepts pays no more than its fee; the best profit found.
    Unprofitable {
        best_profit: Value,
    },
    /// Some pair pays more than its fee: a capture target left behind.
    Profitable {
        debt_denom: String,
        collateral_denom: String,
        profit: Value,
    },
    /// Every pair was refused, for reasons other than dust.
    Other {
        reasons: Vec<String>,
    },
}

/// The oracle's findings over a set of accounts.
#[derive(Debug, Clone, Default)]
pub struct CaptureReport {
    /// Accounts asked about.
    pub accounts: usize,
    /// Those with a liquidation health factor below 1.
    pub below_one: usize,
    pub no_collateral: Vec<String>,
    /// `(account, best profit)`.
    pub unprofitable: Vec<(String, Value)>,
    /// `(account, pair and profit)`.
    pub profitable: Vec<(String, String)>,
    /// `(account, why)`.
    pub other: Vec<(String, String)>,
    /// Liquidations simulated.
    pub simulations: usize,
}

impl CaptureReport {
    /// The best profit among the accounts only liquidatable at a loss (base units).
    pub fn best_unprofitable(&self) -> Option<Value> {
        self.unprofitable.iter().map(|(_, p)| *p).max()
    }

    /// One line for test output and reports.
    pub fn summary(&self) -> String {
        format!(
            "{} left with HF < 1 of {} checked: {} without enabled collateral, {} only at a loss \
             (best profit after fee {} base units), {} profitable, {} other ({} liquidations \
             simulated)",
            self.below_one,
            self.accounts,
            self.no_collateral.len(),
            self.unprofitable.len(),
            self.best_unprofitable()
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            self.profitable.len(),
            self.other.len(),
            self.simulations,
        )
    }

    /// Nothing profitable and nothing unexplained left.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if !self.profitable.is_empty() {
            problems.push(format!(
                "{} accounts still liquidatable at a profit: {:?}",
                self.profitable.len(),
                self.profitable.iter().take(10).collect::<Vec<_>>()
            ));
        }
        if !self.other.is_empty() {
            problems.push(format!(
                "{} accounts below HF 1 refused for other reasons: {:?}",
                self.other.len(),
                self.other.iter().take(10).collect::<Vec<_>>()
            ));
        }
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        Ok(())
    }
}

impl fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Where the oracle reads and who it signs as.
pub struct CaptureOracle {
    client: TendermintClient,
    builder: TxBuilder,
    wallet: Wallet,
    account_number: u64,
    sequence: u64,
    red_bank: String,
    oracle: String,
}

/// One position line as the Red Bank answers it.
#[derive(Debug, Clone)]
struct Line {
    denom: String,
    amount: Uint128,
    enabled: bool,
}

fn uint(value: &Json, field: &str) -> anyhow::Result<Uint128> {
    value[field]
        .as_str()
        .with_context(|| format!("`{field}` is not a string in {value}"))?
        .parse()
        .map_err(|e| anyhow::anyhow!("`{field}` in {value}: {e}"))
}

/// `amount` at `price`, in base-denom units.
pub(crate) fn value_of(amount: Uint128, price: Decimal) -> Value {
    let amount = Decimal256::from_atomics(Uint256::from(amount), 0).unwrap_or(Decimal256::MAX);
    SignedDecimal256::try_from(amount * Decimal256::from(price)).unwrap_or(SignedDecimal256::MAX)
}

/// What an oracle's wallet is funded with: each of the `largest` debts plus a tenth (interest),
/// and enough of the fee denom for its simulations.
pub(crate) fn funding_for(largest: BTreeMap<String, Uint128>, fee_denom: &str) -> Vec<Coin> {
    let mut coins: Vec<Coin> = largest
        .into_iter()
        .filter(|(_, a)| !a.is_zero())
        .map(|(denom, amount)| {
            Coin::new(amount + amount / Uint128::new(10) + Uint128::one(), denom)
        })
        .collect();
    let fee_coins = Uint128::new(100_000_000);
    match coins.iter_mut().find(|c| c.denom == fee_denom) {
        Some(coin) => coin.amount += Uint256::from(fee_coins),
        None => coins.push(Coin::new(fee_coins, fee_denom)),
    }
    coins.sort_by(|a, b| a.denom.cmp(&b.denom));
    coins
}

/// Signs `msgs` as `sender` (gas simulated), broadcasts them and waits for a successful block.
pub(crate) async fn send_and_wait(
    client: &TendermintClient,
    builder: &TxBuilder,
    sender: &Wallet,
    msgs: Vec<cosmrs::Any>,
    memo: &str,
) -> anyhow::Result<redline_chain::TxOutcome> {
    let account = client.account(sender.address().as_ref()).await?;
    let signed = sign_with_simulated_gas(
        client,
        builder,
        sender,
        account.account_number,
        account.sequence,
        msgs,
        memo,
    )
    .await?;
    let hash = client.broadcast_sync(signed.bytes).await?;
    let outcome = client.wait_for_tx(hash, Duration::from_secs(30)).await?;
    anyhow::ensure!(outcome.is_success(), "the tx failed: {}", outcome.log);
    Ok(outcome)
}

impl CaptureOracle {
    /// The oracle's wallet (slot [`ORACLE_SLOT`] of `mnemonic`), funded by `funder` with enough
    /// of each debt denom to repay the largest debt of `accounts` (read now, plus a tenth for
    /// interest) and enough of the fee denom for simulations.
    pub async fn prepare(
        client: TendermintClient,
        chain: &ChainConfig,
        contracts: (&str, &str),
        mnemonic: &str,
        funder: &Wallet,
        accounts: &[String],
    ) -> anyhow::Result<Self> {
        let (red_bank, oracle) = (contracts.0.to_string(), contracts.1.to_string());
        let wallet = Wallet::from_mnemonic(mnemonic, &chain.account_prefix, ORACLE_SLOT)?;
        let builder = TxBuilder::new(chain);
        let mut largest: BTreeMap<String, Uint128> = BTreeMap::new();
        let reader = Reader {
            client: &client,
            red_bank: &red_bank,
        };
        let debts: Vec<anyhow::Result<Vec<Line>>> = futures::stream::iter(accounts)
            .map(|account| reader.debts(account))
            .buffer_unordered(16)
            .collect()
            .await;
        for debts in debts {
            for line in debts? {
                let entry = largest.entry(line.denom).or_default();
                *entry = (*entry).max(line.amount);
            }
        }
        send_and_wait(
            &client,
            &builder,
            funder,
            vec![bank_send_msg(
                funder.address(),
                wallet.address().as_ref(),
                &funding_for(largest, &chain.fee_denom),
            )?],
            "redline capture oracle funding",
        )
        .await
        .context("funding the capture oracle's wallet")?;
        let account = client.account(wallet.address().as_ref()).await?;
        // Fees at the price a liquidator signs with now (a fee market's, with headroom).
        let builder = builder.at_market(client.base_gas_price().await?);
        Ok(CaptureOracle {
            client,
            builder,
            wallet,
            account_number: account.account_number,
            sequence: account.sequence,
            red_bank,
            oracle,
        })
    }

    /// Judges every account in `accounts` (see the module docs).
    pub async fn judge(&self, accounts: &[String]) -> anyhow::Result<CaptureReport> {
        let prices = self.prices().await?;
        let verdicts: Vec<anyhow::Result<Option<(Verdict, usize)>>> =
            futures::stream::iter(accounts)
                .map(|account| self.judge_one(account, &prices))
                .buffered(8)
                .collect()
                .await;
        let mut report = CaptureReport {
            accounts: accounts.len(),
            ..CaptureReport::default()
        };
        for (account, verdict) in accounts.iter().zip(verdicts) {
            let Some((verdict, simulated)) = verdict? else {
                continue;
            };
            report.below_one += 1;
            report.simulations += simulated;
            let account = account.clone();
            match verdict {
                Verdict::NoEnabledCollateral => report.no_collateral.push(account),
                Verdict::Unprofitable { best_profit } => {
                    report.unprofitable.push((account, best_profit))
                }
                Verdict::Profitable {
                    debt_denom,
                    collateral_denom,
                    profit,
                } => report.profitable.push((
                    account,
                    format!("{debt_denom} for {collateral_denom}: profit {profit} base units"),
                )),
                Verdict::Other { reasons } => report.other.push((account, reasons.join("; "))),
            }
        }
        Ok(report)
    }

    /// `None` when the account's health factor is not below 1.
    async fn judge_one(
        &self,
        account: &str,
        prices: &BTreeMap<String, Decimal>,
    ) -> anyhow::Result<Option<(Verdict, usize)>> {
        let reader = Reader {
            client: &self.client,
            red_bank: &self.red_bank,
        };
        if !reader.below_one(account).await? {
            return Ok(None);
        }
        let debts: Vec<Line> = reader
            .debts(account)
            .await?
            .into_iter()
            .filter(|l| !l.amount.is_zero())
            .collect();
        let collaterals: Vec<Line> = reader
            .collaterals(account)
            .await?
            .into_iter()
            .filter(|l| l.enabled && !l.amount.is_zero())
            .collect();
        if collaterals.is_empty() {
            return Ok(Some((Verdict::NoEnabledCollateral, 0)));
        }
        let mut best: Option<(Value, String, String)> = None;
        let mut reasons = Vec::new();
        let mut simulated = 0;
        for debt in &debts {
            for collateral in &collaterals {
                simulated += 1;
                match self
                    .try_pair(account, debt, &collateral.denom, prices)
                    .await?
                {
                    Ok(profit) => {
                        if best.as_ref().is_none_or(|(b, _, _)| profit > *b) {
                            best = Some((profit, debt.denom.clone(), collateral.denom.clone()));
                        }
                    }
                    Err(reason) => reasons.push(reason),
                }
            }
        }
        let verdict = match best {
            Some((profit, debt_denom, collateral_denom)) if profit > Value::zero() => {
                Verdict::Profitable {
                    debt_denom,
                    collateral_denom,
                    profit,
                }
            }
            Some((best_profit, _, _)) => Verdict::Unprofitable { best_profit },
            None => Verdict::Other { reasons },
        };
        Ok(Some((verdict, simulated)))
    }

    /// The profit of liquidating `debt` for `collateral_denom`, `Err(reason)` when the
    /// contract refuses it (dust counts as a profit of 0); the outer error is a transport one.
    async fn try_pair(
        &self,
        account: &str,
        debt: &Line,
        collateral_denom: &str,
        prices: &BTreeMap<String, Decimal>,
    ) -> anyhow::Result<Result<Value, String>> {
        let from = self.wallet.address();
        let liquidate = execute_contract_msg(
            from,
            &self.red_bank,
            &json!({"liquidate": {"user": account, "collateral_denom": collateral_denom, "recipient": null}}),
            &[cosmwasm_std::Coin::new(debt.amount, debt.denom.clone())],
        )?;
        let withdraw = execute_contract_msg(
            from,
            &self.red_bank,
            &json!({"withdraw": {"denom": collateral_denom}}),
            &[],
        )?;
        let probe = self.builder.sign_for_simulation(
            &self.wallet,
            self.account_number,
            self.sequence,
            vec![liquidate, withdraw],
            "",
        )?;
        let simulation = match self.client.simulate(probe).await {
            Ok(simulation) => simulation,
            Err(ChainError::Rejected(rejection)) => {
                let log = rejection.to_string();
                // Mars's dust refusal: the repay would seize nothing (or the reverse).
                if log.contains("Invalid collateral_amount_to_liquidate") {
                    return Ok(Ok(Value::zero()));
                }
                // The liquidation went through but left the liquidator nothing to withdraw
                // (everything seized went to the protocol fee): a loss of what it repaid.
                if log.contains("message index: 1") && log.contains("empty coins") {
                    return Ok(Ok(-value_of(
                        debt.amount,
                        prices.get(&debt.denom).copied().unwrap_or_default(),
                    )));
                }
                return Ok(Err(format!("{} for {collateral_denom}: {log}", debt.denom)));
            }
            Err(other) => {
                return Err(anyhow::Error::from(other)
                    .context(format!("simulating the liquidation of {account}")))
            }
        };
        let mut repaid = None;
        let mut received = None;
        for event in simulation.events_of("wasm") {
            match event.attribute("action") {
                Some("liquidate") => repaid = event.attribute("debt_amount").map(str::to_string),
                Some("withdraw") => received = event.attribute("amount").map(str::to_string),
                _ => {}
            }
        }
        let amount = |text: Option<String>, what: &str| -> anyhow::Result<Uint128> {
            let text = text.with_context(|| format!("no {what} event in the simulation"))?;
            Uint128::from_str(&text).map_err(|e| anyhow::anyhow!("{what} amount `{text}`: {e}"))
        };
        let repaid = amount(repaid, "liquidate")?;
        let received = amount(received, "withdraw")?;
        let price = |denom: &str| {
            prices
                .get(denom)
                .copied()
                .with_context(|| format!("the oracle has no price for `{denom}`"))
        };
        let fee = self
            .builder
            .fee_for(self.builder.gas_limit_for(simulation.gas_used));
        let fee_amount = Uint128::try_from(fee.amount)?;
        Ok(Ok(value_of(received, price(collateral_denom)?)
            - value_of(repaid, price(&debt.denom)?)
            - value_of(fee_amount, price(&fee.denom)?)))
    }

    /// The oracle contract's default prices.
    async fn prices(&self) -> anyhow::Result<BTreeMap<String, Decimal>> {
        oracle_prices(&self.client, &self.oracle).await
    }
}

/// The `oracle` contract's default prices.
pub(crate) async fn oracle_prices(
    client: &TendermintClient,
    oracle: &str,
) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let mut prices = BTreeMap::new();
    let mut start_after: Option<String> = None;
    loop {
        let page: Vec<Json> = client
            .query_smart(
                oracle,
                &json!({"prices": {"start_after": start_after, "limit": 100}}),
                None,
            )
            .await?;
        let full = page.len() == 100;
        for entry in &page {
            let denom = entry["denom"].as_str().context("price without denom")?;
            let price =
                Decimal::from_str(entry["price"].as_str().context("price is not a string")?)
                    .map_err(|e| anyhow::anyhow!("price of `{denom}`: {e}"))?;
            prices.insert(denom.to_string(), price);
            start_after = Some(denom.to_string());
        }
        if !full {
            return Ok(prices);
        }
    }
}

/// Red Bank queries, answered as JSON.
struct Reader<'a> {
    client: &'a TendermintClient,
    red_bank: &'a str,
}

impl Reader<'_> {
    async fn below_one(&self, account: &str) -> anyhow::Result<bool> {
        let position: Json = self
            .client
            .query_smart(
                self.red_bank,
                &json!({"user_position_liquidation_pricing": {"user": account}}),
                None,
            )
            .await?;
        let Some(hf) = position["health_status"]["borrowing"]["liq_threshold_hf"].as_str() else {
            return Ok(false);
        };
        let hf = Decimal::from_str(hf).map_err(|e| anyhow::anyhow!("health factor `{hf}`: {e}"))?;
        Ok(hf < Decimal::one())
    }

    async fn debts(&self, account: &str) -> anyhow::Result<Vec<Line>> {
        self.lines("user_debts", "debt", account, |_| true).await
    }

    async fn collaterals(&self, account: &str) -> anyhow::Result<Vec<Line>> {
        let enabled = |c: &Json| c["enabled"].as_bool().unwrap_or(false);
        self.lines("user_collaterals", "collateral", account, enabled)
            .await
    }

    /// `account`'s lines from the Red Bank's list query `query` (each a `what`), with what
    /// `enabled` says of each.
    async fn lines(
        &self,
        query: &str,
        what: &str,
        account: &str,
        enabled: impl Fn(&Json) -> bool,
    ) -> anyhow::Result<Vec<Line>> {
        let items: Vec<Json> = self
            .client
            .query_smart(
                self.red_bank,
                &json!({ query: {"user": account, "limit": 100} }),
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(Line {
                    denom: item["denom"]
                        .as_str()
                        .with_context(|| format!("{what} without denom"))?
                        .to_string(),
                    amount: uint(item, "amount")?,
                    enabled: enabled(item),
                })
            })
            .collect()
    }
}
