//! The capture oracle for credit accounts: which seeded credit accounts left liquidatable could
//! still be liquidated at a profit, judged by the chain alone.
//!
//! For every account it asks the health contract (`health_values` at liquidation prices,
//! the kind the credit manager answers); for each one liquidatable it reads the account's
//! `positions` from the credit manager and, for every debt denom × deposit or lend it holds,
//! simulates from its own credit account what a liquidator could send, both
//! ways: funded by a borrow (`borrow` the whole debt, `liquidate` it, `swap_exact_in` the seized
//! coin into the debt denom with `min_receive` 1, `repay` the account balance,
//! `refund_all_coin_balances`) and funded from the wallet (`deposit` the whole debt sent with the
//! message, `liquidate`, `refund_all_coin_balances`). Its wallet is its own, funded before the
//! run ([`OracleAccount::prepare`]); a simulation it cannot pay for is reported as unexplained,
//! never as unprofitable.
//!
//! Profit = value of what the credit manager sends the wallet back (the bank's `transfer`
//! events) − what the wallet sent with the message − the fee of that tx (simulated gas × the
//! chain's gas adjustment × gas price, the fee market's with headroom where the chain has one),
//! at the oracle contract's default prices. The credit manager's refusals that mean "nothing to
//! take" (not liquidatable, `LiquidationNotProfitable`, dust, the swap below `min_receive`, the
//! own account unhealthy at the end of the actions) are expected; any other refusal is
//! unexplained.

use std::collections::BTreeMap;

use anyhow::Context as _;
use cosmwasm_std::{Decimal, Uint128};
use futures::StreamExt as _;
use mars::msg::credit_manager::{self, Positions};
use mars::msg::health::{AccountKind, HealthQueryShape, HealthValuesResponse};
use mars::msg::oracle::ActionKind;
use redline_chain::{
    bank_send_msg, execute_contract_msg, ChainClient, ChainConfig, ChainError, TendermintClient,
    TxBuilder, Wallet,
};
use redline_liquidator::credit_account::minted_id;
use redline_liquidator::rover::{Funding, RoverOrder};

use crate::capture::{funding_for, oracle_prices, send_and_wait, value_of, Value};

/// HD slot of the credit oracle's own wallet (far from the liquidators' and the Red Bank
/// oracle's slots).
pub const CREDIT_ORACLE_SLOT: u32 = 901;

/// Refusals of a liquidation that leave nothing to take (not missed liquidations).
const EXPECTED_REFUSALS: &[&str] = &[
    "is not a liquidatable credit account",
    "does not result in a profit",
    "min_receive",
    "maximum allowed loan-to-value",
    // Mars's dust refusal: the whole debt would seize nothing (or the reverse).
    "Invalid collateral_amount_to_liquidate",
];

/// The oracle's findings over the seeded credit accounts.
#[derive(Debug, Clone, Default)]
pub struct CreditCaptureReport {
    /// Accounts asked about.
    pub accounts: usize,
    /// Those the health contract says are liquidatable.
    pub liquidatable: usize,
    /// `(account, best profit after the fee)`: every liquidation refused or at a loss.
    pub unprofitable: Vec<(String, Value)>,
    /// `(account, liquidation and profit)`: a capture target left behind.
    pub profitable: Vec<(String, String)>,
    /// `(account, why)`: refused for reasons other than the expected ones.
    pub unexplained: Vec<(String, String)>,
    pub simulations: usize,
}

impl CreditCaptureReport {
    /// One line for test output and reports.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} credit accounts liquidatable: {} only refused or at a loss, {} profitable, \
             {} unexplained ({} liquidations simulated)",
            self.liquidatable,
            self.accounts,
            self.unprofitable.len(),
            self.profitable.len(),
            self.unexplained.len(),
            self.simulations
        )
    }
}

/// The credit oracle's wallet and the credit account it simulates from.
pub struct OracleAccount {
    pub wallet: Wallet,
    pub account_id: String,
}

impl OracleAccount {
    /// The wallet at [`CREDIT_ORACLE_SLOT`] of `mnemonic`, funded by `funder` with each debt
    /// denom's largest debt of the credit accounts `ids` (read now, plus a tenth for interest)
    /// and fee coins, with a `default` credit account it opens now. Call it before the run: the
    /// liquidators' wallet funding and top-ups spend the funder's coins, and funding it before
    /// the wallets' balances are read keeps it out of their profit.
    pub async fn prepare(
        client: &TendermintClient,
        chain: &ChainConfig,
        (credit_manager, account_nft): (&str, &str),
        (mnemonic, funder): (&str, &Wallet),
        ids: &[u64],
    ) -> anyhow::Result<Self> {
        let wallet = Wallet::from_mnemonic(mnemonic, &chain.account_prefix, CREDIT_ORACLE_SLOT)?;
        let builder = TxBuilder::new(chain).at_market(client.base_gas_price().await?);
        let positions: Vec<anyhow::Result<Positions>> = futures::stream::iter(ids)
            .map(|id| read_positions(client, credit_manager, id.to_string()))
            .buffer_unordered(16)
            .collect()
            .await;
        let mut largest: BTreeMap<String, Uint128> = BTreeMap::new();
        for positions in positions {
            for debt in positions?.debts {
                let entry = largest.entry(debt.denom).or_default();
                *entry = (*entry).max(debt.amount);
            }
        }
        let coins = funding_for(largest, &chain.fee_denom);
        let send = bank_send_msg(funder.address(), wallet.address().as_ref(), &coins)?;
        send_and_wait(
            client,
            &builder,
            funder,
            vec![send],
            "redline credit oracle funding",
        )
        .await
        .context("funding the credit oracle's wallet")?;
        let create = execute_contract_msg(
            wallet.address(),
            credit_manager,
            &credit_manager::ExecuteMsg::CreateCreditAccount(AccountKind::Default),
            &[],
        )?;
        let opened = send_and_wait(
            client,
            &builder,
            &wallet,
            vec![create],
            "redline credit oracle",
        )
        .await
        .context("opening the credit oracle's credit account")?;
        let account_id = minted_id(&opened.events, account_nft, wallet.address().as_ref())
            .context("the credit oracle's account: no mint to its wallet in the tx's events")?;
        Ok(OracleAccount { wallet, account_id })
    }
}

async fn read_positions(
    client: &TendermintClient,
    credit_manager: &str,
    id: String,
) -> anyhow::Result<Positions> {
    let query = credit_manager::QueryMsg::Positions {
        account_id: id.clone(),
        action: None,
    };
    client
        .query_smart(credit_manager, &query, None)
        .await
        .with_context(|| format!("positions of credit account {id}"))
}

/// Who simulates, from which credit account.
pub struct CreditOracle {
    client: TendermintClient,
    builder: TxBuilder,
    wallet: Wallet,
    own_account: String,
    credit_manager: String,
    health: String,
    health_query: HealthQueryShape,
    prices: BTreeMap<String, Decimal>,
}

/// One account's verdict and the simulations it took.
enum Verdict {
    Healthy,
    Unprofitable(Value),
    Profitable(String),
    Unexplained(String),
}

impl CreditOracle {
    /// Simulates from `account`, at the oracle's prices now; `health_query` is the shape the
    /// health contract takes (the manifest's).
    pub async fn new(
        client: TendermintClient,
        chain: &ChainConfig,
        (contracts, health_query): ((&str, &str), HealthQueryShape),
        account: OracleAccount,
    ) -> anyhow::Result<Self> {
        let OracleAccount {
            wallet,
            account_id: own_account,
        } = account;
        let (credit_manager, oracle) = contracts;
        let config: credit_manager::ConfigResponse = client
            .query_smart(credit_manager, &credit_manager::QueryMsg::Config {}, None)
            .await
            .context("the credit manager's config")?;
        let prices = oracle_prices(&client, oracle).await?;
        // Fees at the price a liquidator signs with now (a fee market's, with headroom).
        let builder = TxBuilder::new(chain).at_market(client.base_gas_price().await?);
        Ok(CreditOracle {
            builder,
            client,
            wallet,
            own_account,
            credit_manager: credit_manager.to_string(),
            health: config.health_contract,
            health_query,
            prices,
        })
    }

    /// Judges every account of `ids` (see the module docs).
    pub async fn judge(&self, ids: &[u64]) -> anyhow::Result<CreditCaptureReport> {
        let verdicts: Vec<anyhow::Result<(Verdict, usize)>> = futures::stream::iter(ids)
            .map(|id| self.judge_one(id.to_string()))
            .buffered(8)
            .collect()
            .await;
        let mut report = CreditCaptureReport {
            accounts: ids.len(),
            ..CreditCaptureReport::default()
        };
        for (id, verdict) in ids.iter().zip(verdicts) {
            let (verdict, simulated) = verdict?;
            let account = format!("credit account {id}");
            report.simulations += simulated;
            report.liquidatable += usize::from(!matches!(verdict, Verdict::Healthy));
            match verdict {
                Verdict::Healthy => {}
                Verdict::Unprofitable(best) => report.unprofitable.push((account, best)),
                Verdict::Profitable(what) => report.profitable.push((account, what)),
                Verdict::Unexplained(why) => report.unexplained.push((account, why)),
            }
        }
        Ok(report)
    }

    async fn judge_one(&self, id: String) -> anyhow::Result<(Verdict, usize)> {
        let positions = read_positions(&self.client, &self.credit_manager, id.clone()).await?;
        let query = self.health_query.health_values(
            &id,
            positions.account_kind.clone(),
            ActionKind::Liquidation,
        );
        let health: HealthValuesResponse = self
            .client
            .query_smart(&self.health, &query, None)
            .await
            .with_context(|| format!("health of credit account {id}"))?;
        if !health.liquidatable {
            return Ok((Verdict::Healthy, 0));
        }
        let requests = positions
            .deposits
            .iter()
            .map(|c| (c, false))
            .chain(positions.lends.iter().map(|c| (c, true)))
            .filter(|(c, _)| !c.amount.is_zero());
        let requests: Vec<_> = requests.collect();
        let mut best: Option<(Value, String)> = None;
        let mut unexplained = Vec::new();
        let mut simulated = 0;
        let debts = positions.debts.iter().filter(|d| !d.amount.is_zero());
        let pairs = debts.flat_map(|debt| requests.iter().map(move |request| (debt, request)));
        for ((debt, (coin, from_lend)), funding) in
            pairs.flat_map(|pair| [(pair, Funding::Borrow), (pair, Funding::Wallet)])
        {
            simulated += 1;
            let order = RoverOrder {
                own_account: self.own_account.clone(),
                liquidatee: id.clone(),
                debt_denom: debt.denom.clone(),
                debt_to_repay: debt.amount,
                collateral_denom: coin.denom.clone(),
                from_lend: *from_lend,
                min_receive: Uint128::one(),
                funding,
            };
            let what = format!(
                "{} for {} {} ({})",
                debt.denom,
                if *from_lend { "lend" } else { "deposit" },
                coin.denom,
                match funding {
                    Funding::Borrow => "borrowed",
                    Funding::Wallet => "from the wallet",
                }
            );
            match self.try_order(&order).await? {
                Ok(profit) if best.as_ref().is_none_or(|(b, _)| profit > *b) => {
                    best = Some((profit, what));
                }
                Ok(_) => {}
                Err(log) if EXPECTED_REFUSALS.iter().any(|m| log.contains(m)) => {}
                Err(log) => unexplained.push(format!("{what}: {log}")),
            }
        }
        let verdict = match best {
            Some((profit, what)) if profit > Value::zero() => {
                Verdict::Profitable(format!("{what}: profit {profit} base units after the fee"))
            }
            _ if !unexplained.is_empty() => Verdict::Unexplained(unexplained.join("; ")),
            Some((profit, _)) => Verdict::Unprofitable(profit),
            None => Verdict::Unprofitable(Value::zero()),
        };
        Ok((verdict, simulated))
    }

    /// The profit of `order` after its fee, `Err(log)` when the chain refuses it; the outer
    /// error is a transport one.
    async fn try_order(&self, order: &RoverOrder) -> anyhow::Result<Result<Value, String>> {
        let sender = self.wallet.address();
        let message = order.message(sender, &self.credit_manager)?;
        // Simulations are not included: the sequence only has to be the account's current one.
        let account = self.client.account(sender.as_ref()).await?;
        let probe = self.builder.sign_for_simulation(
            &self.wallet,
            account.account_number,
            account.sequence,
            vec![message],
            "",
        )?;
        let simulation = match self.client.simulate(probe).await {
            Ok(simulation) => simulation,
            Err(ChainError::Rejected(rejection)) => return Ok(Err(rejection.to_string())),
            Err(other) => return Err(anyhow::Error::from(other).context("simulating")),
        };
        let mut refunded = Value::zero();
        for event in simulation.events_of("transfer") {
            if event.attribute("recipient") != Some(sender.as_ref())
                || event.attribute("sender") != Some(self.credit_manager.as_str())
            {
                continue;
            }
            for (denom, amount) in parse_coins(event.attribute("amount").unwrap_or_default()) {
                refunded += value_of(amount, self.price(&denom)?);
            }
        }
        // The liquidation must show in the events (else they are not read right, which must
        // not pass for "unprofitable"); it may refund nothing when the swap returned just the
        // borrow.
        let liquidated = simulation.events.iter().any(|event| {
            matches!(
                event.attribute("action"),
                Some("liquidate_deposit" | "liquidate_lend")
            ) && event.attribute("liquidatee_account_id") == Some(order.liquidatee.as_str())
        });
        if !liquidated {
            return Ok(Err(
                "no liquidation of the account in the simulation's events".into(),
            ));
        }
        let fee = self
            .builder
            .fee_for(self.builder.gas_limit_for(simulation.gas_used));
        let mut spent = value_of(Uint128::try_from(fee.amount)?, self.price(&fee.denom)?);
        if let Some(sent) = order.deposited() {
            spent += value_of(Uint128::try_from(sent.amount)?, self.price(&sent.denom)?);
        }
        Ok(Ok(refunded - spent))
    }

    fn price(&self, denom: &str) -> anyhow::Result<Decimal> {
        self.prices
            .get(denom)
            .copied()
            .with_context(|| format!("the oracle has no price for `{denom}`"))
    }
}

/// `123uatom,45uusdc` as the bank writes coins into events.
fn parse_coins(text: &str) -> Vec<(String, Uint128)> {
    text.split(',')
        .filter_map(|coin| {
            let split = coin.find(|c: char| !c.is_ascii_digit())?;
            let (amount, denom) = coin.split_at(split);
            Some((denom.to_string(), amount.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_coins_parse() {
        assert_eq!(
            parse_coins("123uatom,45ibc/ABC"),
            vec![
                ("uatom".to_string(), Uint128::new(123)),
                ("ibc/ABC".to_string(), Uint128::new(45)),
            ]
        );
        assert!(parse_coins("").is_empty());
    }
}
