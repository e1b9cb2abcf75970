//! The scenario's seeded credit accounts, checked with the chain's own queries: the health
//! contract's liquidation health factors fall in the scenario's bands, the credit manager's
//! Red Bank debt is the sum of its accounts' debts, and a 30% ATOM drop liquidates some.

use std::collections::BTreeMap;

use cosmwasm_std::{Addr, Decimal, Uint128};
use mars::msg::credit_manager::{self, ConfigResponse, Positions};
use mars::msg::health::{self, HealthValuesResponse};
use mars::msg::oracle::{ActionKind, PriceUpdate};
use mars::msg::{account_nft, red_bank};
use redline_devnet::chain::{self, ChainConfig, ChainState};
use redline_devnet::contracts::set_prices;
use redline_devnet::scenario::{genesis, ScenarioConfig, ScenarioInfo};
use serde::de::DeserializeOwned;
use serde::Serialize;

const CREDIT_ACCOUNTS: usize = 200;

struct Seeded {
    state: ChainState,
    info: ScenarioInfo,
    credit_manager: Addr,
    health: Addr,
    /// Ids of the seeded accounts (the rewards collector's account, 1, comes first).
    account_ids: Vec<String>,
}

impl Seeded {
    fn new(seed: u64) -> Self {
        let app = chain::new_app("osmo");
        let mut state =
            ChainState::new(app, ChainConfig::default(), tendermint::Time::now()).unwrap();
        let cfg = ScenarioConfig {
            accounts: 50,
            credit_accounts: CREDIT_ACCOUNTS,
            seed,
            ..ScenarioConfig::default()
        };
        let info = genesis(&mut state, &cfg).unwrap();
        let credit_manager = Addr::unchecked(info.contracts.credit_manager.clone().unwrap());
        let config: ConfigResponse = query(
            &state,
            &credit_manager,
            &credit_manager::QueryMsg::Config {},
        );
        let minted: account_nft::NumTokensResponse = query(
            &state,
            &Addr::unchecked(config.account_nft.unwrap()),
            &account_nft::QueryMsg::NumTokens {},
        );
        let account_ids = (2..=minted.count).map(|id| id.to_string()).collect();
        Seeded {
            state,
            info,
            credit_manager,
            health: Addr::unchecked(config.health_contract),
            account_ids,
        }
    }

    fn positions(&self, account_id: &str) -> Positions {
        let msg = credit_manager::QueryMsg::Positions {
            account_id: account_id.to_string(),
            action: None,
        };
        query(&self.state, &self.credit_manager, &msg)
    }

    fn health(&self, account_id: &str) -> HealthValuesResponse {
        let msg = health::QueryMsg::HealthValues {
            account_id: account_id.to_string(),
            kind: health::AccountKind::Default,
            action: ActionKind::Liquidation,
        };
        query(&self.state, &self.health, &msg)
    }

    fn liquidatable(&self) -> usize {
        self.account_ids
            .iter()
            .filter(|id| self.health(id).liquidatable)
            .count()
    }
}

fn query<T: DeserializeOwned>(state: &ChainState, contract: &Addr, msg: &impl Serialize) -> T {
    state.app.wrap().query_wasm_smart(contract, msg).unwrap()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Accounts per band of the health contract's liquidation health factor.
fn health_bands(seeded: &Seeded) -> BTreeMap<&'static str, usize> {
    let mut bands = BTreeMap::new();
    for id in &seeded.account_ids {
        let band = match seeded.health(id).health.liquidation_health_factor {
            None => "no debt",
            Some(hf) if hf <= Decimal::one() => "at most 1",
            Some(hf) if hf <= dec("1.03") => "(1, 1.03]",
            Some(hf) if hf < dec("1.1") => "[1.03, 1.1)",
            Some(_) => "1.1 and above",
        };
        *bands.entry(band).or_default() += 1;
    }
    bands
}

#[test]
fn seeded_credit_accounts_spread_their_health_and_owe_what_the_red_bank_lent() {
    let mut seeded = Seeded::new(3);
    assert_eq!(seeded.account_ids.len(), CREDIT_ACCOUNTS);
    assert_eq!(seeded.info.credit_accounts, CREDIT_ACCOUNTS);

    // The scenario's bands: 10% without debt; of the others 80% at 1.1 or more, 15% in
    // [1.03, 1.1) and 5% in (1, 1.03]; none liquidatable yet.
    let bands = health_bands(&seeded);
    let band = |name| bands.get(name).copied().unwrap_or_default();
    assert_eq!(band("at most 1"), 0, "{bands:?}");
    assert!((8..=35).contains(&band("no debt")), "{bands:?}");
    assert!((130..=165).contains(&band("1.1 and above")), "{bands:?}");
    assert!((12..=45).contains(&band("[1.03, 1.1)")), "{bands:?}");
    assert!((2..=20).contains(&band("(1, 1.03]")), "{bands:?}");

    // Deposits, lends and debts in several denoms; the debt is the credit manager's.
    let mut debts: BTreeMap<String, Uint128> = BTreeMap::new();
    let mut denoms_held = 0;
    for id in &seeded.account_ids {
        let positions = seeded.positions(id);
        denoms_held = denoms_held.max(positions.deposits.len() + positions.lends.len());
        for debt in positions.debts {
            *debts.entry(debt.denom).or_default() += debt.amount;
        }
    }
    assert!(denoms_held >= 3);
    assert!(debts.len() >= 3, "{debts:?}");
    for (denom, total) in &debts {
        let owed: red_bank::UserDebtResponse = query(
            &seeded.state,
            &Addr::unchecked(&seeded.info.contracts.red_bank),
            &red_bank::QueryMsg::UserDebt {
                user: seeded.credit_manager.to_string(),
                denom: denom.clone(),
            },
        );
        assert_eq!(owed.amount, *total, "{denom}");
    }

    // A 30% ATOM drop leaves some accounts liquidatable.
    let drop = PriceUpdate {
        denom: "uatom".into(),
        price: dec("7"),
        liquidation_price: None,
    };
    let owner = Addr::unchecked(&seeded.info.owner);
    let oracle = Addr::unchecked(&seeded.info.contracts.oracle);
    set_prices(&mut seeded.state.app, &owner, &oracle, &[drop]).unwrap();
    let liquidatable = seeded.liquidatable();
    assert!((5..=80).contains(&liquidatable), "{liquidatable}");
}

#[test]
fn the_same_seed_seeds_the_same_credit_accounts() {
    let (a, b, other) = (Seeded::new(5), Seeded::new(5), Seeded::new(6));
    let positions = |seeded: &Seeded| -> Vec<Positions> {
        let ids = seeded.account_ids.iter().take(20);
        ids.map(|id| seeded.positions(id)).collect()
    };
    assert_eq!(positions(&a), positions(&b));
    assert_ne!(positions(&a), positions(&other));
}
