//! The params contract refuses invalid risk parameters as Mars's does, and only its owner may
//! change them; the oracle and address provider answer Mars's queries.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{Decimal, Uint128};
    use mars::msg::address_provider::{self, AddressResponseItem, MarsAddressType};
    use mars::msg::oracle::{self, ActionKind, PriceResponse};
    use mars::msg::params::{ExecuteMsg, QueryMsg};
    use mars::types::AssetParams;

    #[test]
    fn invalid_asset_params_are_refused() {
        let mut dn = Devnet::fixture();
        let base = dn.asset_params_of(ATOM);
        type Edit = fn(&mut AssetParams);
        let cases: Vec<(&str, Edit)> = vec![
            ("max_loan_to_value", |p| p.max_loan_to_value = dec("1")),
            ("liquidation_threshold", |p| {
                p.liquidation_threshold = dec("1.01")
            }),
            ("liquidation_threshold", |p| {
                p.liquidation_threshold = dec("0.7")
            }),
            ("starting_lb", |p| {
                p.liquidation_bonus.starting_lb = dec("0.11")
            }),
            ("slope", |p| p.liquidation_bonus.slope = dec("0.99")),
            ("slope", |p| p.liquidation_bonus.slope = dec("5.01")),
            ("min_lb", |p| p.liquidation_bonus.min_lb = dec("0.101")),
            ("max_lb", |p| p.liquidation_bonus.max_lb = dec("0.049")),
            ("max_lb", |p| p.liquidation_bonus.max_lb = dec("0.31")),
            ("max_lb", |p| {
                p.liquidation_bonus.min_lb = dec("0.08");
                p.liquidation_bonus.max_lb = dec("0.06");
            }),
            ("protocol_liquidation_fee", |p| {
                p.protocol_liquidation_fee = dec("1")
            }),
            ("denom", |p| p.denom = "1x".into()),
        ];
        for (field, edit) in cases {
            let mut params = base.clone();
            edit(&mut params);
            let err = dn.update_asset_params(params.clone()).unwrap_err();
            let named = if field == "denom" {
                err.contains("Invalid denom")
            } else {
                err.contains(field)
            };
            assert!(named, "{params:?}: {err}");
        }
        // Boundaries that are allowed.
        let mut edge = base.clone();
        edge.liquidation_threshold = dec("1");
        edge.liquidation_bonus.starting_lb = dec("0.1");
        edge.liquidation_bonus.slope = dec("5");
        edge.liquidation_bonus.min_lb = dec("0.05");
        edge.liquidation_bonus.max_lb = dec("0.05");
        dn.update_asset_params(edge.clone()).unwrap();
        assert_eq!(dn.asset_params_of(ATOM), edge);
        assert_eq!(dn.asset_params_of(ATOM).deposit_cap, base.deposit_cap);
    }

    #[test]
    fn target_health_factor_range_and_owner() {
        let mut dn = Devnet::fixture();
        let params = dn.contracts.params.clone();
        let thf: Decimal = dn
            .query_on(&params, &QueryMsg::TargetHealthFactor {})
            .unwrap();
        assert_eq!(thf, dec("1.05"));
        let set_target = |value: &str| ExecuteMsg::UpdateTargetHealthFactor(dec(value));
        for bad in ["0.99", "2.01"] {
            assert_err(
                dn.execute_as_owner(&params, &set_target(bad)),
                "target_health_factor",
            );
        }
        for good in ["1", "2"] {
            dn.execute_as_owner(&params, &set_target(good)).unwrap();
        }
        let stranger = dn.addr("stranger");
        assert_err(
            dn.execute_on(&stranger, &params, &set_target("1.1")),
            "Caller is not owner",
        );

        let all: Vec<AssetParams> = dn
            .query_on(
                &params,
                &QueryMsg::AllAssetParams {
                    start_after: Some(ATOM.into()),
                    limit: Some(1),
                },
            )
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].denom, OSMO);
        let total: mars::msg::params::TotalDepositResponse = dn
            .query_on(&params, &QueryMsg::TotalDeposit { denom: ATOM.into() })
            .unwrap();
        assert_eq!(total.amount, Uint128::zero());
    }

    #[test]
    fn oracle_and_address_provider_answer_mars_queries() {
        let mut dn = Devnet::fixture();
        let oracle_addr = dn.contracts.oracle.clone();
        let price = |denom: &str, kind| oracle::QueryMsg::Price {
            denom: denom.into(),
            kind,
        };
        let atom: PriceResponse = dn
            .query_on(&oracle_addr, &price(ATOM, Some(ActionKind::Liquidation)))
            .unwrap();
        assert_eq!(atom.price, dec("10"));
        dn.set_price(OSMO, "0.5");
        let prices: Vec<PriceResponse> = dn
            .query_on(
                &oracle_addr,
                &oracle::QueryMsg::Prices {
                    start_after: None,
                    limit: None,
                    kind: None,
                },
            )
            .unwrap();
        assert_eq!(
            prices
                .iter()
                .map(|p| (p.denom.as_str(), p.price))
                .collect::<Vec<_>>(),
            vec![(ATOM, dec("10")), (OSMO, dec("0.5")), (USDC, dec("1"))]
        );
        assert_err(
            dn.query_on::<PriceResponse>(&oracle_addr, &price("uion", None)),
            "price source not found for denom: uion",
        );
        let stranger = dn.addr("stranger");
        assert_err(
            dn.execute_on(
                &stranger,
                &oracle_addr,
                &oracle::ExecuteMsg::SetPrices { prices: vec![] },
            ),
            "Caller is not owner",
        );

        let item: AddressResponseItem = dn
            .query_on(
                &dn.contracts.address_provider,
                &address_provider::QueryMsg::Address(MarsAddressType::RedBank),
            )
            .unwrap();
        assert_eq!(item.address, dn.contracts.red_bank.to_string());
        assert!(item.address.starts_with("osmo1"));
    }
}
