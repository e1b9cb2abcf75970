//! The default devnet scenario: Mars on Osmosis with four markets, `N` seeded borrowers with a
//! realistic, seeded spread of health factors, optionally Rover credit accounts spread alike,
//! funded liquidator wallets, and scripted or admin-driven price moves.
//!
//! Markets (prices in uusdc per smallest unit, as the oracle stores them):
//!
//! | denom      | decimals | price        | max LTV | LT   |
//! |------------|----------|--------------|---------|------|
//! | `uosmo`    | 6        | 0.5          | 0.55    | 0.65 |
//! | `uatom`    | 6        | 10           | 0.70    | 0.80 |
//! | `uusdc`    | 6        | 1            | 0.75    | 0.80 |
//! | `weth-wei` | 18       | 0.000000003  | 0.72    | 0.78 |
//!
//! Liquidation bonus 0.01 / 2 / 0.02 / 0.1 (starting, slope, min, max), protocol liquidation
//! fee 0.1, target health factor 1.05 — the parameters of the case measured on Mars.
//!
//! Borrowers (seeded with `rand_chacha`, so a seed always gives the same chain): 10% only
//! deposit; of the others 50% have a liquidation health factor in [1.5, 3], 30% in
//! [1.1, 1.5) (borrowing close to the maximum LTV is common: a loan at max LTV has a
//! liquidation HF of LT / max LTV, 1.07 to 1.18 here), 15% in [1.03, 1.1) and 5% in
//! (1.0, 1.03] — a 3% price drop liquidates those. A 30% drop of one collateral (ATOM) puts
//! about 12% of the borrowers under HF 1 and makes about 7% liquidatable at a profit (656 of
//! 10,000 accounts with seed 4, the liquidation benchmark's scenario); the rest are too deep
//! under water for a liquidation to improve their health.
//!
//! Credit accounts (`--credit-accounts N`; with N > 0 Rover is deployed and every market is
//! whitelisted in it) are drawn from their own stream of the same seed, so they leave the
//! borrowers unchanged. Collateral is sized as the borrowers' and held in one denom (50%), two
//! (30%) or three (20%) — half the value in the first —, each coin deposited or lent at even
//! odds. 10% have no debt; the others borrow, in one denom they do not hold (two for 30%, when
//! two are free), for a liquidation health factor from the borrowers' bands, and withdrew the
//! borrowed coins. Extra Red Bank lenders fund that debt at ~65% utilization. All accounts are
//! `default`: Mars's Osmosis deployment gives HLS params to correlated pairs (a liquid-staking
//! token and its chain's coin), and none of these four markets is correlated with another. A
//! 30% ATOM drop makes about 12% of them liquidatable (24 of 200 with seed 3).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cosmrs::bip32::{Language, Mnemonic};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmwasm_std::{Addr, Api as _, CanonicalAddr, Coin, Decimal, Uint128};
use mars::manifest::{Contracts, DenomInfo, FeeConfig, Manifest};
use mars::math::health::compute_health;
use mars::msg::oracle::PriceUpdate;
use mars::types::{AssetParams, CmSettings, HealthPosition, InterestRateModel, LiquidationBonus};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::chain::{ChainState, PriceMove, PriceTrigger};
use crate::contracts::{self, AssetConfig, DeployConfig, SeedPosition, SwapConfig};
use crate::flavor::Flavor;
use crate::rpc::{self, NodeConfig, NodeHandle};

mod credit;

/// A well-known test mnemonic (BIP39 all-zero entropy). Never hold real funds with it.
pub const DEFAULT_LIQUIDATOR_MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art";

/// The base denom prices are quoted in.
pub const BASE_DENOM: &str = "uusdc";

#[derive(Clone)]
pub struct ScenarioConfig {
    /// Borrower accounts to seed.
    pub accounts: usize,
    /// Rover credit accounts to seed; Rover is deployed when there are any.
    pub credit_accounts: usize,
    /// Seed of the account generator.
    pub seed: u64,
    pub liquidator_mnemonic: String,
    /// Liquidator wallets, derived at m/44'/118'/0'/0/i.
    pub liquidator_wallets: u32,
    /// Scheduled price moves (`--price-path`).
    pub price_path: Vec<PriceMove>,
    /// Which Mars runs (the node's chain config must be the flavor's: see
    /// [`Flavor::chain_config`]).
    pub flavor: Flavor,
    /// Funds the in-process competitor's wallet ([`crate::competitor`]) and lists the
    /// borrowers with debt in [`ScenarioInfo::debtors`] for it to watch.
    pub competitor: bool,
}

impl std::fmt::Debug for ScenarioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioConfig")
            .field("accounts", &self.accounts)
            .field("credit_accounts", &self.credit_accounts)
            .field("seed", &self.seed)
            .field("liquidator_mnemonic", &"<redacted>")
            .field("liquidator_wallets", &self.liquidator_wallets)
            .field("price_path", &self.price_path)
            .field("flavor", &self.flavor)
            .field("competitor", &self.competitor)
            .finish()
    }
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            accounts: 1_000,
            credit_accounts: 0,
            seed: 1,
            liquidator_mnemonic: DEFAULT_LIQUIDATOR_MNEMONIC.into(),
            liquidator_wallets: 8,
            price_path: Vec::new(),
            flavor: Flavor::Osmosis,
            competitor: false,
        }
    }
}

/// One market of the scenario.
#[derive(Debug, Clone)]
pub struct MarketSpec {
    pub denom: &'static str,
    pub decimals: u8,
    pub price: Decimal,
    pub max_ltv: Decimal,
    pub liquidation_threshold: Decimal,
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("scenario constants are valid decimals")
}

/// The four markets; the first is the chain's own coin (`uosmo`, or `untrn` on the Neutron
/// flavor, with the same price and risk parameters).
pub fn markets(flavor: Flavor) -> Vec<MarketSpec> {
    vec![
        MarketSpec {
            denom: flavor.native_denom(),
            decimals: 6,
            price: dec("0.5"),
            max_ltv: dec("0.55"),
            liquidation_threshold: dec("0.65"),
        },
        MarketSpec {
            denom: "uatom",
            decimals: 6,
            price: dec("10"),
            max_ltv: dec("0.7"),
            liquidation_threshold: dec("0.8"),
        },
        MarketSpec {
            denom: "uusdc",
            decimals: 6,
            price: dec("1"),
            max_ltv: dec("0.75"),
            liquidation_threshold: dec("0.8"),
        },
        MarketSpec {
            denom: "weth-wei",
            decimals: 18,
            price: dec("0.000000003"),
            max_ltv: dec("0.72"),
            liquidation_threshold: dec("0.78"),
        },
    ]
}

/// The scenario's deployment of `flavor`'s Mars; with `credit_accounts` Rover too, every market
/// whitelisted in it.
fn deploy_config(
    flavor: Flavor,
    markets: &[MarketSpec],
    rewards_collector: Addr,
    credit_accounts: bool,
) -> DeployConfig {
    let bonus = LiquidationBonus {
        starting_lb: dec("0.01"),
        slope: dec("2"),
        min_lb: dec("0.02"),
        max_lb: dec("0.1"),
    };
    DeployConfig {
        oracle_base_denom: BASE_DENOM.into(),
        target_health_factor: flavor.target_health_factor(),
        assets: markets
            .iter()
            .map(|m| AssetConfig {
                denom: m.denom.into(),
                decimals: m.decimals,
                price: m.price,
                liquidation_price: None,
                params: flavored_params(
                    flavor,
                    AssetParams {
                        credit_manager: CmSettings {
                            withdraw_enabled: None,
                            whitelisted: credit_accounts,
                            hls: None,
                        },
                        ..contracts::asset_params(
                            m.denom,
                            m.max_ltv,
                            m.liquidation_threshold,
                            bonus.clone(),
                            dec("0.1"),
                            Uint128::new(10u128.pow(36)),
                        )
                    },
                ),
                reserve_factor: dec("0.1"),
                interest_rate_model: InterestRateModel {
                    optimal_utilization_rate: dec("0.8"),
                    base: Decimal::zero(),
                    slope_1: dec("0.2"),
                    slope_2: dec("2"),
                },
            })
            .collect(),
        swap: Some(SwapConfig {
            fee: dec("0.003"),
            // $10M a side.
            side_value: Uint128::new(10_000_000_000_000),
        }),
        rewards_collector: Some(rewards_collector),
        credit_accounts,
    }
}

/// `params` in the shape of `flavor`'s params contract.
fn flavored_params(flavor: Flavor, mut params: AssetParams) -> AssetParams {
    params.close_factor = flavor.close_factor();
    params.credit_manager.withdraw_enabled = flavor.withdraw_enabled();
    params.red_bank.withdraw_enabled = flavor.withdraw_enabled();
    params
}

/// A deterministic 20-byte account address, like a key-derived one.
fn derived_address(state: &ChainState, label: &str) -> anyhow::Result<Addr> {
    let hash = Sha256::digest(label.as_bytes());
    state
        .app
        .api()
        .addr_humanize(&CanonicalAddr::from(&hash[..20]))
        .map_err(|e| anyhow::anyhow!("address for {label}: {e}"))
}

/// The signing keys of the liquidator wallets: m/44'/118'/0'/0/i for i in 0..count.
pub fn liquidator_keys(mnemonic: &str, count: u32) -> anyhow::Result<Vec<SigningKey>> {
    let mnemonic = Mnemonic::new(mnemonic.trim(), Language::English).map_err(|_| {
        anyhow::anyhow!("the liquidator mnemonic is not a valid BIP39 English phrase")
    })?;
    let seed = mnemonic.to_seed("");
    (0..count)
        .map(|i| {
            let path = format!("m/44'/118'/0'/0/{i}")
                .parse()
                .map_err(|e| anyhow::anyhow!("derivation path {i}: {e}"))?;
            SigningKey::derive_from_path(&seed, &path)
                .map_err(|e| anyhow::anyhow!("cannot derive liquidator key {i}: {e}"))
        })
        .collect()
}

/// Amount of `spec` worth `value` uusdc, rounded down.
fn amount_worth(spec: &MarketSpec, value: Uint128) -> Uint128 {
    value.checked_div_floor(spec.price).unwrap_or(Uint128::MAX)
}

/// Which band of health factors a borrower is drawn from.
fn target_health_factor(rng: &mut ChaCha20Rng) -> Decimal {
    let permille: u64 = match rng.gen_range(0..100) {
        0..=49 => rng.gen_range(1_500..=3_000),
        50..=79 => rng.gen_range(1_100..1_500),
        80..=94 => rng.gen_range(1_030..1_100),
        _ => rng.gen_range(1_001..=1_030),
    };
    Decimal::permille(permille)
}

/// Collateral worth $100 to ~$1M (in uusdc), log-uniformly spread.
fn collateral_value(rng: &mut ChaCha20Rng) -> Uint128 {
    let magnitude = rng.gen_range(0..4u32);
    let mantissa: u128 = rng.gen_range(100..1_000);
    Uint128::new(mantissa * 10u128.pow(magnitude) * 1_000_000)
}

/// The debt value that gives `collateral` (market index, amount) a liquidation health factor
/// drawn from [`target_health_factor`].
fn debt_value_for(
    markets: &[MarketSpec],
    collateral: &[(usize, Uint128)],
    rng: &mut ChaCha20Rng,
) -> Uint128 {
    let hf = target_health_factor(rng);
    let weighted: Uint128 = collateral
        .iter()
        .map(|(m, amount)| {
            amount
                .mul_floor(markets[*m].price)
                .mul_floor(markets[*m].liquidation_threshold)
        })
        .fold(Uint128::zero(), |a, b| a + b);
    weighted.checked_div_floor(hf).unwrap_or_default()
}

/// A Red Bank lender of 1.5 times `total`, so the market it lends to is ~65% utilized.
fn lender(
    state: &ChainState,
    label: &str,
    denom: &str,
    total: Uint128,
) -> anyhow::Result<SeedPosition> {
    Ok(SeedPosition {
        user: derived_address(state, label)?,
        account_id: None,
        collateral: vec![Coin::new(total.multiply_ratio(3u128, 2u128), denom)],
        debt: vec![],
    })
}

/// The borrowers of the scenario, deterministic in `seed`.
pub fn generate_positions(
    state: &ChainState,
    markets: &[MarketSpec],
    accounts: usize,
    seed: u64,
) -> anyhow::Result<Vec<SeedPosition>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut positions = Vec::with_capacity(accounts + markets.len());
    let mut debt_totals: BTreeMap<&str, Uint128> = BTreeMap::new();
    for i in 0..accounts {
        let user = derived_address(state, &format!("redline borrower {seed} {i}"))?;
        let value = collateral_value(&mut rng);
        let first = rng.gen_range(0..markets.len());
        let second = (rng.gen_range(0..10) < 3)
            .then(|| (first + rng.gen_range(1..markets.len())) % markets.len());
        let mut collateral: Vec<(usize, Uint128)> = Vec::new();
        match second {
            Some(second) => {
                let part = value.multiply_ratio(3u128, 5u128);
                collateral.push((first, amount_worth(&markets[first], part)));
                collateral.push((second, amount_worth(&markets[second], value - part)));
            }
            None => collateral.push((first, amount_worth(&markets[first], value))),
        }
        let mut debt = Vec::new();
        if rng.gen_range(0..10) != 0 {
            let debt_value = debt_value_for(markets, &collateral, &mut rng);
            let candidates: Vec<usize> = (0..markets.len())
                .filter(|m| collateral.iter().all(|(c, _)| c != m))
                .collect();
            let debt_market = candidates[rng.gen_range(0..candidates.len())];
            let amount = amount_worth(&markets[debt_market], debt_value);
            if !amount.is_zero() {
                *debt_totals.entry(markets[debt_market].denom).or_default() += amount;
                debt.push(Coin::new(amount, markets[debt_market].denom));
            }
        }
        positions.push(SeedPosition {
            user,
            account_id: None,
            collateral: collateral
                .into_iter()
                .map(|(m, amount)| Coin::new(amount, markets[m].denom))
                .collect(),
            debt,
        });
    }
    // Lenders: enough deposits in every borrowed market for ~65% utilization.
    for (denom, total) in debt_totals {
        let label = format!("redline lender {seed} {denom}");
        positions.push(lender(state, &label, denom, total)?);
    }
    Ok(positions)
}

/// Liquidation health factors of the seeded borrowers, by band.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HealthSpread {
    pub no_debt: usize,
    pub below_1: usize,
    pub from_1_to_1_03: usize,
    pub from_1_03_to_1_1: usize,
    pub above_1_1: usize,
}

fn health_spread(markets: &[MarketSpec], positions: &[SeedPosition]) -> HealthSpread {
    let mut spread = HealthSpread::default();
    for position in positions {
        let health_positions: Vec<HealthPosition> = markets
            .iter()
            .filter_map(|m| {
                let amount_of = |coins: &[Coin]| {
                    coins
                        .iter()
                        .filter(|c| c.denom == m.denom)
                        .map(|c| Uint128::try_from(c.amount).unwrap_or(Uint128::MAX))
                        .fold(Uint128::zero(), |a, b| a + b)
                };
                let collateral_amount = amount_of(&position.collateral);
                let debt_amount = amount_of(&position.debt);
                (!collateral_amount.is_zero() || !debt_amount.is_zero()).then(|| HealthPosition {
                    denom: m.denom.into(),
                    price: m.price,
                    collateral_amount,
                    debt_amount,
                    max_ltv: m.max_ltv,
                    liquidation_threshold: m.liquidation_threshold,
                })
            })
            .collect();
        match compute_health(&health_positions)
            .ok()
            .and_then(|h| h.liquidation_health_factor)
        {
            None => spread.no_debt += 1,
            Some(hf) if hf < Decimal::one() => spread.below_1 += 1,
            Some(hf) if hf <= dec("1.03") => spread.from_1_to_1_03 += 1,
            Some(hf) if hf < dec("1.1") => spread.from_1_03_to_1_1 += 1,
            Some(_) => spread.above_1_1 += 1,
        }
    }
    spread
}

/// What genesis produced, for the manifest and the logs.
#[derive(Debug, Clone)]
pub struct ScenarioInfo {
    pub contracts: Contracts,
    pub owner: String,
    pub denoms: Vec<DenomInfo>,
    pub liquidators: Vec<String>,
    pub borrowers: usize,
    pub health: HealthSpread,
    pub credit_accounts: usize,
    /// Liquidation health factors of the credit accounts, as the Red Bank would weigh them.
    pub credit_health: HealthSpread,
    /// The seeded borrowers with debt, when the competitor is funded (else empty).
    pub debtors: Vec<String>,
    /// The competitor's wallet, when funded.
    pub competitor: Option<String>,
    pub seeding_time: Duration,
    pub genesis_time: Duration,
}

/// Deploys the contracts, seeds borrowers, funds liquidators and installs the price setter.
pub fn genesis(state: &mut ChainState, cfg: &ScenarioConfig) -> anyhow::Result<ScenarioInfo> {
    let started = Instant::now();
    let markets = markets(cfg.flavor);
    let owner = derived_address(state, "redline mars owner")?;
    let rewards_collector = derived_address(state, "redline mars rewards collector")?;
    let deployed = contracts::deploy(
        &mut state.app,
        &owner,
        &deploy_config(
            cfg.flavor,
            &markets,
            rewards_collector.clone(),
            cfg.credit_accounts > 0,
        ),
    )
    .context("deploying the Mars contracts")?;

    let seeding = Instant::now();
    let mut positions = generate_positions(state, &markets, cfg.accounts, cfg.seed)?;
    let health = health_spread(&markets, &positions[..cfg.accounts.min(positions.len())]);
    let (credit_accounts, credit_lenders) =
        credit::generate_credit_accounts(state, &markets, cfg.credit_accounts, cfg.seed)?;
    positions.extend(credit_lenders);
    contracts::seed_positions(&mut state.app, &deployed, &positions)
        .context("seeding borrowers")?;
    if !credit_accounts.is_empty() {
        contracts::seed_credit_accounts(&mut state.app, &deployed, &credit_accounts)
            .context("seeding credit accounts")?;
    }
    let seeding_time = seeding.elapsed();
    let debtors: Vec<String> = if cfg.competitor {
        positions[..cfg.accounts.min(positions.len())]
            .iter()
            .filter(|p| !p.debt.is_empty())
            .map(|p| p.user.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let credit_health = health_spread(&markets, &credit::as_positions(&credit_accounts));
    state.seeded_accounts = cfg.accounts as u64;

    // Liquidators get $10M of every denom, plus gas money.
    let keys = liquidator_keys(&cfg.liquidator_mnemonic, cfg.liquidator_wallets)?;
    let prefix = state.config().bech32_prefix.clone();
    let mut liquidators = Vec::with_capacity(keys.len());
    for key in &keys {
        let address = key
            .public_key()
            .account_id(&prefix)
            .map_err(|e| anyhow::anyhow!("liquidator address: {e}"))?
            .to_string();
        let coins = markets
            .iter()
            .map(|m| Coin::new(amount_worth(m, Uint128::new(10_000_000_000_000)), m.denom))
            .collect();
        state.fund(&address, coins)?;
        liquidators.push(address);
    }
    // The competitor gets a hundred times as much: it sends each borrower's whole debt and has
    // the refund back within the tx.
    let competitor = if cfg.competitor {
        let coins = markets
            .iter()
            .map(|m| {
                Coin::new(
                    amount_worth(m, Uint128::new(1_000_000_000_000_000)),
                    m.denom,
                )
            })
            .collect();
        Some(crate::competitor::fund(state, coins)?)
    } else {
        None
    };
    let fee_collector = state.fee_collector().to_string();
    let native = cfg.flavor.native_denom();
    state.fund(&fee_collector, vec![Coin::new(1_000_000u128, native)])?;
    state.fund(
        rewards_collector.as_str(),
        vec![Coin::new(1_000_000u128, native)],
    )?;
    state.fund(owner.as_str(), vec![Coin::new(1_000_000_000u128, native)])?;

    let oracle = deployed.oracle.clone();
    let setter_owner = owner.clone();
    let priced: Vec<String> = markets.iter().map(|m| m.denom.to_string()).collect();
    state.set_price_setter(
        priced,
        Box::new(move |app, prices| {
            let updates: Vec<PriceUpdate> = prices
                .iter()
                .map(|(denom, price)| PriceUpdate {
                    denom: denom.clone(),
                    price: *price,
                    liquidation_price: None,
                })
                .collect();
            contracts::set_prices(app, &setter_owner, &oracle, &updates)
                .map(|response| response.events)
                .map_err(|e| anyhow::anyhow!("oracle set_prices: {e}"))
        }),
    );
    for price_move in &cfg.price_path {
        state
            .validate_prices(&price_move.prices)
            .map_err(|e| anyhow::anyhow!("price path: {e}"))?;
        state.schedule_prices(price_move.clone());
    }

    Ok(ScenarioInfo {
        contracts: deployed.manifest_contracts(),
        owner: owner.to_string(),
        denoms: markets
            .iter()
            .map(|m| DenomInfo {
                denom: m.denom.into(),
                decimals: m.decimals,
            })
            .collect(),
        liquidators,
        borrowers: cfg.accounts,
        health,
        credit_accounts: cfg.credit_accounts,
        credit_health,
        debtors,
        competitor,
        seeding_time,
        genesis_time: started.elapsed(),
    })
}

/// The manifest services read to reach this node.
pub fn manifest(node: &NodeHandle, info: &ScenarioInfo, cfg: &ScenarioConfig) -> Manifest {
    let chain = node.chain().config();
    Manifest {
        chain_id: chain.chain_id.clone(),
        bech32_prefix: chain.bech32_prefix.clone(),
        rpc_http: vec![node.rpc_http_url()],
        rpc_ws: vec![node.rpc_ws_url()],
        block_time_ms: chain.block_time.as_millis() as u64,
        liquidation_rule: cfg.flavor.liquidation_rule(),
        health_query: cfg.flavor.health_query(),
        contracts: info.contracts.clone(),
        denoms: info.denoms.clone(),
        fee: FeeConfig {
            denom: chain.fee_denom.clone(),
            gas_price: chain.min_gas_price.to_string(),
            market: if chain.fee_market.is_some() {
                mars::manifest::FeeMarket::Feemarket
            } else {
                mars::manifest::FeeMarket::Fixed
            },
        },
        liquidator_mnemonic: Some(cfg.liquidator_mnemonic.clone()),
        admin_url: Some(node.admin_url()),
        provenance: None,
    }
}

/// Starts a node running the scenario. Seeding happens before the RPC serves.
pub async fn start(
    node: NodeConfig,
    scenario: ScenarioConfig,
) -> anyhow::Result<(NodeHandle, ScenarioInfo, Manifest)> {
    let genesis_cfg = scenario.clone();
    let (handle, info) = rpc::start(node, move |state| genesis(state, &genesis_cfg)).await?;
    let manifest = manifest(&handle, &info, &scenario);
    Ok((handle, info, manifest))
}

/// Parses a price path: either a JSON array of
/// `{"height": H | "after_seconds": T, "prices": {"denom": "price"}}`, JSON objects one per line,
/// or CSV lines `AT,DENOM,PRICE` where `AT` is a height (`20`) or seconds after block production
/// starts, i.e. after genesis (`30s`).
/// `#` starts a comment line.
pub fn parse_price_path(text: &str) -> Result<Vec<PriceMove>, String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        height: Option<u64>,
        after_seconds: Option<u64>,
        prices: BTreeMap<String, String>,
    }
    fn entry_move(entry: Entry, at: &str) -> Result<PriceMove, String> {
        let trigger = match (entry.height, entry.after_seconds) {
            (Some(h), None) => PriceTrigger::AtHeight(h),
            (None, Some(s)) => PriceTrigger::AfterSeconds(s),
            _ => {
                return Err(format!(
                    "{at}: give exactly one of `height` and `after_seconds`"
                ))
            }
        };
        let prices = rpc::parse_prices(&entry.prices).map_err(|e| format!("{at}: {e}"))?;
        Ok(PriceMove { trigger, prices })
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let entries: Vec<Entry> =
            serde_json::from_str(trimmed).map_err(|e| format!("price path JSON: {e}"))?;
        return entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| entry_move(e, &format!("entry {i}")))
            .collect();
    }
    let mut moves = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('{') {
            let entry: Entry = serde_json::from_str(line).map_err(|e| format!("{at}: {e}"))?;
            moves.push(entry_move(entry, &at)?);
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [when, denom, price] = fields[..] else {
            return Err(format!("{at}: expected `AT,DENOM,PRICE`, got `{line}`"));
        };
        let trigger = match when.strip_suffix('s') {
            Some(seconds) => PriceTrigger::AfterSeconds(
                seconds
                    .parse()
                    .map_err(|_| format!("{at}: `{when}` is not a number of seconds"))?,
            ),
            None => PriceTrigger::AtHeight(
                when.parse()
                    .map_err(|_| format!("{at}: `{when}` is not a block height"))?,
            ),
        };
        let prices = rpc::parse_prices(&BTreeMap::from([(denom.to_string(), price.to_string())]))
            .map_err(|e| format!("{at}: {e}"))?;
        moves.push(PriceMove { trigger, prices });
    }
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_paths_in_every_format() {
        let csv = "# drop ATOM\n20,uatom,7.5\n30s, uosmo , 0.4\n";
        let moves = parse_price_path(csv).unwrap();
        assert_eq!(moves[0].trigger, PriceTrigger::AtHeight(20));
        assert_eq!(moves[0].prices["uatom"], dec("7.5"));
        assert_eq!(moves[1].trigger, PriceTrigger::AfterSeconds(30));
        let json = r#"[{"height": 5, "prices": {"uatom": "9"}}, {"after_seconds": 2, "prices": {"uosmo": "0.45"}}]"#;
        let moves = parse_price_path(json).unwrap();
        assert_eq!(moves.len(), 2);
        let lines = "{\"height\": 3, \"prices\": {\"uatom\": \"8\"}}\n";
        assert_eq!(
            parse_price_path(lines).unwrap()[0].trigger,
            PriceTrigger::AtHeight(3)
        );
        let err = parse_price_path("20,uatom,abc").unwrap_err();
        assert!(err.contains("line 1") && err.contains("uatom"), "{err}");
        assert!(parse_price_path("20,uatom").unwrap_err().contains("line 1"));
        assert!(parse_price_path("20,uatom,0")
            .unwrap_err()
            .contains("positive"));
    }

    #[test]
    fn liquidator_keys_come_from_the_mnemonic() {
        let keys = liquidator_keys(DEFAULT_LIQUIDATOR_MNEMONIC, 2).unwrap();
        let a = keys[0].public_key().account_id("osmo").unwrap().to_string();
        let b = keys[1].public_key().account_id("osmo").unwrap().to_string();
        assert_ne!(a, b);
        assert_eq!(
            liquidator_keys(DEFAULT_LIQUIDATOR_MNEMONIC, 1).unwrap()[0]
                .public_key()
                .account_id("osmo")
                .unwrap()
                .to_string(),
            a
        );
        assert!(liquidator_keys("not a mnemonic", 1).is_err());
    }
}
