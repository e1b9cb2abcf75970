//! Domain types of a Mars v2 money market, on cosmwasm-std integer math.
//!
//! Field names follow Mars's JSON (snake_case) so the same structs serialise to and from the
//! messages of the real contracts and of the devnet's. Unknown fields are tolerated on input
//! so that newer Mars releases that add fields still parse, except in the asset params: their
//! two shapes (v2.1 on Osmosis, core-contracts on Neutron) are both known, and a field of
//! neither is refused as `cw_serde` refuses it, naming the field.
//!
//! Two layers keep a seam for protocols other than the Red Bank:
//! - [`DenomPosition`] is what a Red Bank account holds in one denom (underlying amounts plus
//!   the Red-Bank-only flags: collateral enabled, uncollateralized debt);
//! - [`HealthPosition`] is a protocol-neutral, priced and risk-weighted line, the only input the
//!   health math needs. A credit-manager (Rover) account can be turned into the same lines.

use std::collections::BTreeMap;

use cosmwasm_std::{Decimal, Uint128};

use crate::msg::red_bank::{Collateral, Debt};
use serde::{Deserialize, Serialize};

/// Piecewise-linear borrow rate as a function of utilization (Mars `InterestRateModel`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InterestRateModel {
    /// Utilization at which the slope changes from `slope_1` to `slope_2`.
    pub optimal_utilization_rate: Decimal,
    /// Borrow rate at zero utilization.
    pub base: Decimal,
    /// Slope below (and at) the optimal utilization.
    pub slope_1: Decimal,
    /// Slope above the optimal utilization.
    pub slope_2: Decimal,
}

/// A Red Bank market (Mars `Market`), as stored by the contract and answered by `market`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Market {
    pub denom: String,
    /// Share of borrow interest kept by the protocol (minted as collateral to the rewards
    /// collector).
    pub reserve_factor: Decimal,
    pub interest_rate_model: InterestRateModel,
    /// Converts scaled debt to underlying debt.
    pub borrow_index: Decimal,
    /// Converts scaled collateral to underlying collateral.
    pub liquidity_index: Decimal,
    /// Yearly rate charged to borrowers (linear, not compounded within an accrual period).
    pub borrow_rate: Decimal,
    /// Yearly rate paid to depositors.
    pub liquidity_rate: Decimal,
    /// Block time (seconds) at which the indexes were last brought up to date.
    pub indexes_last_updated: u64,
    pub collateral_total_scaled: Uint128,
    pub debt_total_scaled: Uint128,
}

impl Default for Market {
    /// A fresh market: both indexes at one, no rates, nothing deposited or borrowed.
    fn default() -> Self {
        Market {
            denom: String::new(),
            reserve_factor: Decimal::zero(),
            interest_rate_model: InterestRateModel::default(),
            borrow_index: Decimal::one(),
            liquidity_index: Decimal::one(),
            borrow_rate: Decimal::zero(),
            liquidity_rate: Decimal::zero(),
            indexes_last_updated: 0,
            collateral_total_scaled: Uint128::zero(),
            debt_total_scaled: Uint128::zero(),
        }
    }
}

/// An asset accepted by a high-levered-strategy (HLS) account as correlated collateral.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HlsAssetType {
    Coin { denom: String },
    Vault { addr: String },
}

/// Risk parameters applied instead of the normal ones to HLS credit-manager accounts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HlsParams {
    pub max_loan_to_value: Decimal,
    pub liquidation_threshold: Decimal,
    pub correlations: Vec<HlsAssetType>,
}

/// Credit-manager (Rover) settings of an asset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CmSettings {
    pub whitelisted: bool,
    /// Neutron only: when false, the credit manager refuses to swap or withdraw the coin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw_enabled: Option<bool>,
    #[serde(default)]
    pub hls: Option<HlsParams>,
}

/// Red Bank settings of an asset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedBankSettings {
    pub deposit_enabled: bool,
    pub borrow_enabled: bool,
    /// Neutron only: when false, the Red Bank refuses withdrawals of the coin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw_enabled: Option<bool>,
}

/// Dynamic liquidation bonus parameters:
/// `LB = min(starting_lb + slope·(1 − HF), max(min(CR − 1, max_lb), min_lb))`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LiquidationBonus {
    /// Bonus granted as soon as HF drops below 1.
    pub starting_lb: Decimal,
    /// How fast the bonus grows as HF falls further.
    pub slope: Decimal,
    /// Floor of the bonus, granted even to under-collateralized positions.
    pub min_lb: Decimal,
    /// Ceiling of the bonus, protecting liquidated users from over-punishment.
    pub max_lb: Decimal,
}

/// Risk parameters of an asset as held by the Mars params contract (`asset_params` query), in
/// either shape: see [`AssetParams::shape`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AssetParams {
    pub denom: String,
    pub credit_manager: CmSettings,
    pub red_bank: RedBankSettings,
    pub max_loan_to_value: Decimal,
    pub liquidation_threshold: Decimal,
    pub liquidation_bonus: LiquidationBonus,
    /// Share of the liquidation bonus value taken by the protocol.
    pub protocol_liquidation_fee: Decimal,
    pub deposit_cap: Uint128,
    /// Share of an account's debt in this asset one liquidation may repay. Only the params
    /// contracts of core-contracts (close-factor rule) have it; v2.1 (Osmosis) does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_factor: Option<Decimal>,
    /// core-contracts from v2.3: the Red Bank market's reserve factor, set through the params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_factor: Option<Decimal>,
    /// core-contracts from v2.3: the Red Bank market's rate model, set through the params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interest_rate_model: Option<InterestRateModel>,
}

/// Which Mars line an asset's params come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsShape {
    /// mars-protocol/contracts v2.1 (Osmosis): none of the core-contracts fields.
    V21,
    /// mars-protocol/core-contracts v2.2 (Neutron): `close_factor` and `withdraw_enabled` in
    /// both settings.
    Core22,
    /// core-contracts v2.3 and later: also `reserve_factor` and `interest_rate_model`.
    Core23,
}

/// Params that are neither shape: some core-contracts fields without the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("asset params of {denom}: {missing} is missing, though {present} is set (core-contracts params carry both)")]
pub struct MixedParams {
    pub denom: String,
    pub missing: &'static str,
    pub present: &'static str,
}

impl AssetParams {
    /// The shape these params have, or the first field a core-contracts shape lacks.
    pub fn shape(&self) -> Result<ParamsShape, MixedParams> {
        let core22 = [
            ("close_factor", self.close_factor.is_some()),
            (
                "credit_manager.withdraw_enabled",
                self.credit_manager.withdraw_enabled.is_some(),
            ),
            (
                "red_bank.withdraw_enabled",
                self.red_bank.withdraw_enabled.is_some(),
            ),
        ];
        let core23 = [
            ("reserve_factor", self.reserve_factor.is_some()),
            ("interest_rate_model", self.interest_rate_model.is_some()),
        ];
        let mixed = |fields: &[(&'static str, bool)], present: &'static str| {
            fields
                .iter()
                .find(|(_, set)| !set)
                .map(|(missing, _)| MixedParams {
                    denom: self.denom.clone(),
                    missing,
                    present,
                })
        };
        let first_set = |fields: &[(&'static str, bool)]| {
            fields.iter().find(|(_, set)| *set).map(|(name, _)| *name)
        };
        if let Some(present) = first_set(&core23) {
            return match mixed(&core22, present).or_else(|| mixed(&core23, present)) {
                Some(error) => Err(error),
                None => Ok(ParamsShape::Core23),
            };
        }
        match first_set(&core22) {
            None => Ok(ParamsShape::V21),
            Some(present) => mixed(&core22, present).map_or(Ok(ParamsShape::Core22), Err),
        }
    }
}

/// What a Red Bank account holds in one denom, in underlying amounts at the current block.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DenomPosition {
    pub denom: String,
    /// Deposited amount (underlying, liquidity index applied with truncation).
    pub collateral_amount: Uint128,
    /// Whether the deposit counts as collateral; disabled deposits are neither counted in
    /// health nor liquidatable.
    pub collateral_enabled: bool,
    /// Owed amount (underlying, borrow index applied with ceiling).
    pub debt_amount: Uint128,
    /// Debt under an uncollateralized loan limit does not count towards health.
    #[serde(default)]
    pub uncollateralized_debt: bool,
}

/// All of one account's denom positions (a Red Bank user).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPosition {
    pub user: String,
    pub positions: Vec<DenomPosition>,
}

/// One priced, risk-weighted line of an account, the protocol-neutral input of the health math
/// (mars-health's `Position`). Amounts are what counts for health: disabled collateral and
/// uncollateralized debt are already zeroed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthPosition {
    pub denom: String,
    pub price: Decimal,
    pub collateral_amount: Uint128,
    pub debt_amount: Uint128,
    pub max_ltv: Decimal,
    pub liquidation_threshold: Decimal,
}

/// Health of an account as computed by mars-health (`HealthValuesResponse` field names).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub total_debt_value: Uint128,
    pub total_collateral_value: Uint128,
    pub max_ltv_adjusted_collateral: Uint128,
    pub liquidation_threshold_adjusted_collateral: Uint128,
    /// Max-LTV-adjusted collateral over debt; `None` without debt.
    pub max_ltv_health_factor: Option<Decimal>,
    /// Liquidation-threshold-adjusted collateral over debt; `None` without debt.
    pub liquidation_health_factor: Option<Decimal>,
}

impl Health {
    /// Liquidatable iff the liquidation health factor exists and is below one.
    pub fn is_liquidatable(&self) -> bool {
        self.liquidation_health_factor
            .is_some_and(|hf| hf < Decimal::one())
    }

    /// Borrowing more is refused when the max-LTV health factor is below one.
    pub fn is_above_max_ltv(&self) -> bool {
        self.max_ltv_health_factor
            .is_some_and(|hf| hf < Decimal::one())
    }
}

/// Red Bank `user_position` health status, serialised as Mars does:
/// `"not_borrowing"` or `{"borrowing":{"max_ltv_hf":..,"liq_threshold_hf":..}}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserHealthStatus {
    NotBorrowing,
    Borrowing {
        max_ltv_hf: Decimal,
        liq_threshold_hf: Decimal,
    },
}

/// The figures of the Red Bank `user_position` answer, with Mars's field names.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserPositionFigures {
    pub total_enabled_collateral: Uint128,
    pub total_collateralized_debt: Uint128,
    pub weighted_max_ltv_collateral: Uint128,
    pub weighted_liquidation_threshold_collateral: Uint128,
    pub health_status: UserHealthStatus,
}

/// Outcome of `calculate_liquidation_amounts`, in underlying amounts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiquidationAmounts {
    /// Debt the liquidator actually repays (the rest of what was sent is refunded).
    pub debt_amount_to_repay: Uint128,
    /// Collateral taken from the liquidated account.
    pub collateral_amount_to_liquidate: Uint128,
    /// Part of the seized collateral credited to the liquidator's recipient.
    pub collateral_amount_received_by_liquidator: Uint128,
    /// Bonus the amounts were computed with.
    pub liquidation_bonus: Decimal,
}

impl LiquidationAmounts {
    /// Collateral credited to the rewards collector.
    pub fn protocol_fee(&self) -> Uint128 {
        self.collateral_amount_to_liquidate
            .saturating_sub(self.collateral_amount_received_by_liquidator)
    }

    /// Debt coins sent by the liquidator beyond what is repaid, returned to the sender.
    pub fn refund(&self, sent: Uint128) -> Uint128 {
        sent.saturating_sub(self.debt_amount_to_repay)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn asset_params_parse_mars_json() {
        let mars = json!({
            "denom": "uatom",
            "credit_manager": {
                "whitelisted": true,
                "hls": {
                    "max_loan_to_value": "0.75",
                    "liquidation_threshold": "0.8",
                    "correlations": [{"coin": {"denom": "stuatom"}}, {"vault": {"addr": "osmo1v"}}]
                }
            },
            "red_bank": {"deposit_enabled": true, "borrow_enabled": false},
            "max_loan_to_value": "0.7",
            "liquidation_threshold": "0.8",
            "liquidation_bonus": {"starting_lb": "0.01", "slope": "2", "min_lb": "0.02", "max_lb": "0.1"},
            "protocol_liquidation_fee": "0.1",
            "deposit_cap": "1000000000000"
        });
        let params: AssetParams = serde_json::from_value(mars.clone()).unwrap();
        assert_eq!(params.liquidation_bonus.slope, Decimal::percent(200));
        assert_eq!(
            params.credit_manager.hls.as_ref().unwrap().correlations[1],
            HlsAssetType::Vault {
                addr: "osmo1v".into()
            }
        );
        assert!(!params.red_bank.borrow_enabled);
        assert_eq!(serde_json::to_value(&params).unwrap(), mars);
    }

    #[test]
    fn market_json_shape() {
        let market = Market {
            denom: "uatom".into(),
            indexes_last_updated: 42,
            ..Market::default()
        };
        assert_eq!(
            serde_json::to_value(&market).unwrap(),
            json!({
                "denom": "uatom",
                "reserve_factor": "0",
                "interest_rate_model": {
                    "optimal_utilization_rate": "0", "base": "0", "slope_1": "0", "slope_2": "0"
                },
                "borrow_index": "1",
                "liquidity_index": "1",
                "borrow_rate": "0",
                "liquidity_rate": "0",
                "indexes_last_updated": 42,
                "collateral_total_scaled": "0",
                "debt_total_scaled": "0"
            })
        );
    }

    #[test]
    fn health_status_json_shape() {
        assert_eq!(
            serde_json::to_value(UserHealthStatus::NotBorrowing).unwrap(),
            json!("not_borrowing")
        );
        assert_eq!(
            serde_json::to_value(UserHealthStatus::Borrowing {
                max_ltv_hf: Decimal::percent(84),
                liq_threshold_hf: Decimal::percent(96),
            })
            .unwrap(),
            json!({"borrowing": {"max_ltv_hf": "0.84", "liq_threshold_hf": "0.96"}})
        );
    }

    #[test]
    fn liquidatable_only_below_one() {
        let mut health = Health::default();
        assert!(!health.is_liquidatable());
        health.liquidation_health_factor = Some(Decimal::one());
        assert!(!health.is_liquidatable());
        health.liquidation_health_factor = Some(Decimal::percent(99));
        assert!(health.is_liquidatable());
    }

    #[test]
    fn fee_and_refund() {
        let amounts = LiquidationAmounts {
            debt_amount_to_repay: Uint128::new(30_000),
            collateral_amount_to_liquidate: Uint128::new(4_400),
            collateral_amount_received_by_liquidator: Uint128::new(4_360),
            liquidation_bonus: Decimal::percent(10),
        };
        assert_eq!(amounts.protocol_fee(), Uint128::new(40));
        assert_eq!(amounts.refund(Uint128::new(35_000)), Uint128::new(5_000));
    }
}

/// Which lending protocol an account lives in: each has its own implementation of the
/// protocol seam (`redline_protocol::Protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolKind {
    RedBank,
    Rover,
}

impl ProtocolKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProtocolKind::RedBank => "red_bank",
            ProtocolKind::Rover => "rover",
        }
    }
}

impl std::fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account's key in its protocol: a bech32 address for the Red Bank, a numeric id for a
/// credit account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKey {
    Address(String),
    CreditAccount(u64),
}

impl AccountKey {
    /// The key as the contracts' messages and the jobs spell it.
    pub fn as_string(&self) -> String {
        match self {
            AccountKey::Address(address) => address.clone(),
            AccountKey::CreditAccount(id) => id.to_string(),
        }
    }
}

impl std::fmt::Display for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountKey::Address(address) => f.write_str(address),
            AccountKey::CreditAccount(id) => write!(f, "credit account {id}"),
        }
    }
}

/// A credit account as the chain stores it, the form that stays true while interest accrues:
/// the credit manager's `account_types`, `coin_balance` and `debt_shares` entries of the
/// account, and its lends as the Red Bank's scaled `colls` entries under
/// `{"addr": <credit manager>, "acc_id": <id>}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredCreditAccount {
    pub account_id: u64,
    pub kind: crate::msg::health::AccountKind,
    /// Coins the account holds (its deposits), underlying amounts.
    #[serde(default)]
    pub coin_balances: BTreeMap<String, Uint128>,
    /// The account's shares of the credit manager's Red Bank debt, per denom.
    #[serde(default)]
    pub debt_shares: BTreeMap<String, Uint128>,
    /// The account's lends, scaled as the Red Bank stores collateral.
    #[serde(default)]
    pub lends_scaled: BTreeMap<String, Uint128>,
}

impl StoredCreditAccount {
    /// Whether the account owes anything: only such accounts are indexed.
    pub fn has_debt(&self) -> bool {
        self.debt_shares.values().any(|shares| !shares.is_zero())
    }
}

/// What turns the accounts' debt shares into amounts: the credit manager's `total_debt_shares`
/// and its own Red Bank debt (scaled), per denom.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditManagerDebts {
    pub total_debt_shares: BTreeMap<String, Uint128>,
    pub red_bank_debt_scaled: BTreeMap<String, Uint128>,
}

/// One account's Red Bank positions keyed by denom, as the chain stores them (`colls` and
/// `debts` map values): what the collector reads from the chain and compares with the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPositions {
    pub address: String,
    pub collaterals: BTreeMap<String, Collateral>,
    pub debts: BTreeMap<String, Debt>,
}

impl AccountPositions {
    pub fn new(address: impl Into<String>) -> Self {
        AccountPositions {
            address: address.into(),
            ..Default::default()
        }
    }

    /// Whether the account owes anything: only such accounts are indexed.
    pub fn has_debt(&self) -> bool {
        self.debts.values().any(|d| !d.amount_scaled.is_zero())
    }
}
