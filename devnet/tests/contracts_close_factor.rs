//! core-contracts (Neutron) params and liquidations, with numbers written out by hand from
//! core-contracts' `calculate_liquidation_amounts`: no target health factor, one liquidation
//! repays at most `⌊debt × close_factor⌋` of the debt asset, bonus and fee as on Osmosis.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Decimal, Uint128};
    use mars::msg::params::{ExecuteMsg, QueryMsg};

    /// 10,000 uatom at 7.5 (LT 0.8), 65,000 uusdc debt: HF 60,000 / 65,000 = 0.923…, CR 1.153….
    /// LB = min(0.01 + 2 · 0.0769… = 0.1638…, max(min(0.1538…, 0.1), 0.02) = 0.1) = 0.1.
    /// Offered 65,000: repaid min(65,000, ⌊65,000 · 0.9⌋ = 58,500, ⌊75,000 / 1.1⌋ = 68,181)
    /// = 58,500 (the target health factor 1.05 of the Osmosis fixture would stop at 48,529).
    /// Seized ⌊⌊58,500 · 1.1⌋ / 7.5⌋ = ⌊64,350 / 7.5⌋ = 8,580; bonus value ⌊58,500 · 0.1⌋ =
    /// 5,850, fee ⌈5,850 · 0.1⌉ = 585 → ⌊585 / 7.5⌋ = 78 uatom; the liquidator gets 8,502 and
    /// 6,500 uusdc back.
    #[test]
    fn the_close_factor_caps_one_liquidation() {
        let mut dn = Devnet::with_config(&neutron_config());
        let borrower = fixture_borrower(&mut dn);
        let rewards_collector = dn.contracts.rewards_collector.clone();
        dn.set_price(ATOM, "7.5");
        let liquidator = dn.liquidator(vec![coin(65_000, USDC)]);

        let res = dn
            .liquidate(&liquidator, &borrower, ATOM, &[coin(65_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "debt_amount"), "58500");
        assert_eq!(liquidate_attr(&res, "collateral_amount"), "8580");
        // core-contracts also reports the prices and the protocol fee.
        assert_eq!(liquidate_attr(&res, "collateral_price"), "7.5");
        assert_eq!(liquidate_attr(&res, "debt_price"), "1");
        assert_eq!(liquidate_attr(&res, "protocol_fee_denom"), ATOM);
        assert_eq!(liquidate_attr(&res, "protocol_fee_amount"), "78");
        assert_eq!(dn.collateral(&liquidator, ATOM).amount, Uint128::new(8_502));
        assert_eq!(
            dn.collateral(&rewards_collector, ATOM).amount,
            Uint128::new(78)
        );
        assert_eq!(
            dn.balance(&liquidator, USDC),
            6_500,
            "the excess is refunded"
        );
        assert_eq!(dn.collateral(&borrower, ATOM).amount, Uint128::new(1_420));
        assert_eq!(dn.debt(&borrower, USDC).amount, Uint128::new(6_500));
    }

    #[test]
    fn the_params_contract_has_no_target_health_factor() {
        let mut dn = Devnet::with_config(&neutron_config());
        let params = dn.contracts.params.clone();
        let error = dn
            .query_on::<Decimal>(&params, &QueryMsg::TargetHealthFactor {})
            .unwrap_err();
        assert!(
            error.contains("unknown variant `target_health_factor`"),
            "{error}"
        );
        assert_err(
            dn.execute_as_owner(&params, &ExecuteMsg::UpdateTargetHealthFactor(dec("1.1"))),
            "unknown variant `update_target_health_factor`",
        );
    }

    #[test]
    fn each_line_refuses_the_other_lines_params() {
        let mut neutron = Devnet::with_config(&neutron_config());
        let mut params = neutron.asset_params_of(ATOM);
        assert_eq!(params.close_factor, Some(dec("0.9")));
        params.close_factor = None;
        params.credit_manager.withdraw_enabled = None;
        params.red_bank.withdraw_enabled = None;
        assert_err(
            neutron.update_asset_params(params),
            "missing field `close_factor`",
        );

        let mut osmosis = Devnet::fixture();
        let mut params = osmosis.asset_params_of(ATOM);
        params.close_factor = Some(dec("0.9"));
        params.credit_manager.withdraw_enabled = Some(true);
        params.red_bank.withdraw_enabled = Some(true);
        assert_err(
            osmosis.update_asset_params(params),
            "unknown field `close_factor`",
        );

        // A close factor over one is refused as core-contracts refuses it.
        let mut params = neutron.asset_params_of(ATOM);
        params.close_factor = Some(dec("1.1"));
        assert_err(neutron.update_asset_params(params), "close_factor");
    }
}
