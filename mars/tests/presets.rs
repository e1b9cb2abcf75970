//! The chain presets shipped in `deploy/chains/` load as manifests, each with its chain's rule,
//! prefix and fee market (facts from Mars's and the chains' published sources, not from code).

use std::path::PathBuf;

use mars::manifest::{FeeMarket, Manifest};
use mars::rule::LiquidationRule;

fn preset(name: &str) -> Manifest {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/chains")
        .join(format!("{name}.json"));
    Manifest::load(&path).unwrap_or_else(|error| panic!("{name}: {error}"))
}

#[test]
fn osmosis_runs_the_target_health_factor_rule_with_an_eip1559_base_fee() {
    let m = preset("osmosis-1");
    assert_eq!(m.chain_id, "osmosis-1");
    assert_eq!(m.bech32_prefix, "osmo");
    assert_eq!(m.liquidation_rule, LiquidationRule::TargetHealthFactor);
    assert_eq!(
        (m.fee.denom.as_str(), m.fee.market),
        ("uosmo", FeeMarket::OsmosisEip1559)
    );
    assert!(m.contracts.credit_manager.is_some() && m.contracts.health.is_some());
    assert!(m.rpc_http.len() >= 3, "several public endpoints");
    assert!(m.liquidator_mnemonic.is_none() && m.admin_url.is_none());
    assert!(m.provenance.unwrap().starts_with("UNVERIFIED"));
}

#[test]
fn neutron_runs_the_close_factor_rule_with_the_feemarket_module() {
    let m = preset("neutron-1");
    assert_eq!(m.chain_id, "neutron-1");
    assert_eq!(m.bech32_prefix, "neutron");
    assert_eq!(m.liquidation_rule, LiquidationRule::CloseFactor);
    assert_eq!(
        (m.fee.denom.as_str(), m.fee.market),
        ("untrn", FeeMarket::Feemarket)
    );
    assert_eq!(m.fee.gas_price, "0.0053");
    assert!(m.contracts.credit_manager.is_some() && m.contracts.health.is_some());
    assert!(m.rpc_http.len() >= 3, "several public endpoints");
    assert!(m.liquidator_mnemonic.is_none() && m.admin_url.is_none());
    assert!(m.provenance.unwrap().starts_with("UNVERIFIED"));
}

#[test]
fn a_preset_with_another_chains_address_is_refused_by_field() {
    let mut m = preset("neutron-1");
    m.contracts.health = preset("osmosis-1").contracts.health;
    let error = m.validate("neutron-1.json").unwrap_err().to_string();
    assert!(error.contains("contracts.health"), "{error}");
}
