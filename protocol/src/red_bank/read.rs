//! Reading the Red Bank, the params contract and the oracle: every list query through the
//! chain crate's one paging helper.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use cosmwasm_std::Decimal;
use mars::msg::oracle::{ActionKind, PriceResponse, QueryMsg as OracleQuery};
use mars::msg::params::QueryMsg as ParamsQuery;
use mars::msg::red_bank::{QueryMsg as RedBankQuery, UserCollateralResponse, UserDebtResponse};
use mars::types::{AssetParams, Market};
use mars::value::PriceBook;
use redline_chain::{query_all_pages, ChainClient, ChainError};

use super::{RedBank, RedBankContracts};
use crate::snapshot::chain_error;
use crate::{AccountPosition, MarketSnapshot, ReadError};

/// Every market (`markets`).
pub async fn markets<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    height: Option<u64>,
) -> Result<Vec<Market>, ChainError> {
    query_all_pages(
        client,
        &contracts.red_bank,
        height,
        |start_after, limit| RedBankQuery::Markets {
            start_after,
            limit: Some(limit),
        },
        |m: &Market| m.denom.clone(),
    )
    .await
}

/// Every asset's params (`all_asset_params`).
pub async fn asset_params<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    height: Option<u64>,
) -> Result<Vec<AssetParams>, ChainError> {
    query_all_pages(
        client,
        &contracts.params,
        height,
        |start_after, limit| ParamsQuery::AllAssetParams {
            start_after,
            limit: Some(limit),
        },
        |p: &AssetParams| p.denom.clone(),
    )
    .await
}

/// The params contract's target health factor.
pub async fn target_health_factor<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    height: Option<u64>,
) -> Result<Decimal, ChainError> {
    client
        .query_smart(
            &contracts.params,
            &ParamsQuery::TargetHealthFactor {},
            height,
        )
        .await
}

/// Every oracle price of `kind` (`prices`), denom → price.
pub async fn prices<C: ChainClient>(
    client: &C,
    contracts: &RedBankContracts,
    kind: ActionKind,
    height: Option<u64>,
) -> Result<BTreeMap<String, Decimal>, ChainError> {
    let prices = query_all_pages(
        client,
        &contracts.oracle,
        height,
        |start_after, limit| OracleQuery::Prices {
            start_after,
            limit: Some(limit),
            kind: Some(kind),
        },
        |p: &PriceResponse| p.denom.clone(),
    )
    .await?;
    Ok(prices.into_iter().map(|p| (p.denom, p.price)).collect())
}

/// One account's stored collateral and debt (`user_collaterals`, `user_debts`) at `height`
/// (`None`: the node's latest state, reported as height 0).
pub async fn position<C: ChainClient>(
    client: &C,
    contract: &str,
    account: &str,
    height: Option<u64>,
) -> Result<AccountPosition, ReadError> {
    let collaterals = query_all_pages(
        client,
        contract,
        height,
        |start_after, limit| RedBankQuery::UserCollaterals {
            user: account.to_string(),
            account_id: None,
            start_after,
            limit: Some(limit),
        },
        |c: &UserCollateralResponse| c.denom.clone(),
    );
    let debts = query_all_pages(
        client,
        contract,
        height,
        |start_after, limit| RedBankQuery::UserDebts {
            user: account.to_string(),
            start_after,
            limit: Some(limit),
        },
        |d: &UserDebtResponse| d.denom.clone(),
    );
    let (collaterals, debts) = futures::try_join!(collaterals, debts).map_err(chain_error(
        format!("the positions of {account} in {contract}"),
    ))?;
    Ok(AccountPosition {
        account: account.to_string(),
        height: height.unwrap_or_default(),
        collaterals,
        debts,
    })
}

/// The market-wide inputs of the health and liquidation math, as the contracts answer them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketInputs {
    pub markets: Vec<Market>,
    pub params: Vec<AssetParams>,
    /// Read only under the target-health-factor rule; 0 otherwise.
    pub target_health_factor: Decimal,
    /// Oracle prices of kind `default`, denom → price.
    pub prices: BTreeMap<String, Decimal>,
    /// Oracle prices of kind `liquidation`, denom → price.
    pub liquidation_prices: BTreeMap<String, Decimal>,
}

/// Markets, asset params, both kinds of prices, and the target health factor when the
/// deployment's rule reads it, at `height` (`None`: the node's latest state).
pub async fn market_inputs<C: ChainClient>(
    red_bank: &RedBank<C>,
    height: Option<u64>,
) -> Result<MarketInputs, ReadError> {
    let (client, contracts) = (&red_bank.client, &red_bank.contracts);
    let markets = async {
        markets(client, contracts, height)
            .await
            .map_err(chain_error(format!("markets of {}", contracts.red_bank)))
    };
    let price_list = |kind: ActionKind| async move {
        prices(client, contracts, kind, height)
            .await
            .map_err(chain_error(format!(
                "{kind:?} prices of {}",
                contracts.oracle
            )))
    };
    let params = async {
        asset_params(client, contracts, height)
            .await
            .map_err(chain_error(format!("asset params of {}", contracts.params)))
    };
    let target = async {
        if !red_bank.rule.reads_target_health_factor() {
            return Ok(Decimal::zero());
        }
        target_health_factor(client, contracts, height)
            .await
            .map_err(chain_error("target health factor"))
    };
    let (markets, liquidation_prices, prices, params, target_health_factor) = futures::try_join!(
        markets,
        price_list(ActionKind::Liquidation),
        price_list(ActionKind::Default),
        params,
        target
    )?;
    Ok(MarketInputs {
        markets,
        params,
        target_health_factor,
        prices,
        liquidation_prices,
    })
}

/// The market-wide inputs at `height`, with the block's time.
pub async fn snapshot<C: ChainClient>(
    red_bank: &RedBank<C>,
    height: u64,
) -> Result<MarketSnapshot, ReadError> {
    let block_time = async {
        match red_bank.client.block_time(height).await {
            Ok(time) => Ok(time),
            // CometBFT reports height 1 before the first block is committed.
            Err(ChainError::Rpc { .. }) if height <= 1 => Err(ReadError::NoBlockYet),
            Err(e) => Err(chain_error(format!("time of block {height}"))(e)),
        }
    };
    let (block_time, inputs) =
        futures::try_join!(block_time, market_inputs(red_bank, Some(height)))?;
    let MarketInputs {
        markets,
        params,
        target_health_factor,
        prices,
        liquidation_prices,
    } = inputs;
    Ok(MarketSnapshot {
        height,
        fingerprint: fingerprint(&liquidation_prices, &prices, &params, target_health_factor),
        block_time_secs: block_time.seconds(),
        markets: markets.into_iter().map(|m| (m.denom.clone(), m)).collect(),
        liquidation_prices,
        prices: PriceBook::new(prices, red_bank.base_decimals),
        params: params.into_iter().map(|p| (p.denom.clone(), p)).collect(),
        liquidation_rule: red_bank.rule,
        target_health_factor,
    })
}

/// Identifies the prices, params and target health factor (not the height).
fn fingerprint(
    liquidation_prices: &BTreeMap<String, Decimal>,
    default_prices: &BTreeMap<String, Decimal>,
    params: &[AssetParams],
    target_health_factor: Decimal,
) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (denom, price) in liquidation_prices.iter().chain(default_prices.iter()) {
        denom.hash(&mut hasher);
        price.to_string().hash(&mut hasher);
    }
    serde_json::to_string(params)
        .unwrap_or_default()
        .hash(&mut hasher);
    target_health_factor.to_string().hash(&mut hasher);
    hasher.finish()
}

/// Decimals of the oracle's base denom (what its prices are quoted in), from the manifest's
/// denoms: the one figure every valuation in USD needs (`10^decimals` base units are one USD).
pub async fn base_decimals<C: ChainClient>(
    client: &C,
    manifest: &mars::manifest::Manifest,
) -> Result<u32, BaseDecimalsError> {
    let config: mars::msg::oracle::ConfigResponse = client
        .query_smart(&manifest.contracts.oracle, &OracleQuery::Config {}, None)
        .await
        .map_err(chain_error("oracle config"))?;
    manifest
        .denoms
        .iter()
        .find(|d| d.denom == config.base_denom)
        .map(|d| u32::from(d.decimals))
        .ok_or(BaseDecimalsError::Unlisted {
            base_denom: config.base_denom,
        })
}

#[derive(Debug, thiserror::Error)]
pub enum BaseDecimalsError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the oracle quotes prices in `{base_denom}`, which the manifest's denoms do not list; give its decimals")]
    Unlisted { base_denom: String },
}
