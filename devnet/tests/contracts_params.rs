//! The params contract refuses invalid risk parameters as Mars's does, and only its owner may
//! change them; the oracle and address provider answer Mars's queries.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{Decimal, Uint128};
    use cw_multi_test::Executor;
    use mars::msg::address_provider::{self, AddressResponseItem, MarsAddressType};
    use mars::msg::oracle::{self, ActionKind, PriceResponse};
    use mars::msg::params::{AssetParamsUpdate, ExecuteMsg, QueryMsg};
    use mars::types::AssetParams;

    fn update(dn: &mut Devnet, params: AssetParams) -> Result<(), String> {
        let owner = dn.contracts.owner.clone();
        let contract = dn.contracts.params.clone();
        dn.app
            .execute_contract(
                owner,
                contract,
                &ExecuteMsg::UpdateAssetParams(AssetParamsUpdate::AddOrUpdate { params }),
                &[],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn atom(dn: &Devnet) -> AssetParams {
        dn.app
            .wrap()
            .query_wasm_smart::<Option<AssetParams>>(
                &dn.contracts.params,
                &QueryMsg::AssetParams { denom: ATOM.into() },
            )
            .unwrap()
            .unwrap()
    }

    #[test]
    fn invalid_asset_params_are_refused() {
        let mut dn = Devnet::fixture();
        let base = atom(&dn);
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
            let err = update(&mut dn, params.clone()).unwrap_err();
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
        update(&mut dn, edge.clone()).unwrap();
        assert_eq!(atom(&dn), edge);
        assert_eq!(atom(&dn).deposit_cap, base.deposit_cap);
    }

    #[test]
    fn target_health_factor_range_and_owner() {
        let mut dn = Devnet::fixture();
        let owner = dn.contracts.owner.clone();
        let params = dn.contracts.params.clone();
        let thf: Decimal = dn
            .app
            .wrap()
            .query_wasm_smart(&params, &QueryMsg::TargetHealthFactor {})
            .unwrap();
        assert_eq!(thf, dec("1.05"));
        for bad in ["0.99", "2.01"] {
            let err = dn
                .app
                .execute_contract(
                    owner.clone(),
                    params.clone(),
                    &ExecuteMsg::UpdateTargetHealthFactor(dec(bad)),
                    &[],
                )
                .unwrap_err()
                .to_string();
            assert!(err.contains("target_health_factor"), "{err}");
        }
        for good in ["1", "2"] {
            dn.app
                .execute_contract(
                    owner.clone(),
                    params.clone(),
                    &ExecuteMsg::UpdateTargetHealthFactor(dec(good)),
                    &[],
                )
                .unwrap();
        }
        let stranger = dn.addr("stranger");
        let err = dn
            .app
            .execute_contract(
                stranger,
                params.clone(),
                &ExecuteMsg::UpdateTargetHealthFactor(dec("1.1")),
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("Caller is not owner"), "{err}");

        let all: Vec<AssetParams> = dn
            .app
            .wrap()
            .query_wasm_smart(
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
            .app
            .wrap()
            .query_wasm_smart(&params, &QueryMsg::TotalDeposit { denom: ATOM.into() })
            .unwrap();
        assert_eq!(total.amount, Uint128::zero());
    }

    #[test]
    fn oracle_and_address_provider_answer_mars_queries() {
        let mut dn = Devnet::fixture();
        let price: PriceResponse = dn
            .app
            .wrap()
            .query_wasm_smart(
                &dn.contracts.oracle,
                &oracle::QueryMsg::Price {
                    denom: ATOM.into(),
                    kind: Some(ActionKind::Liquidation),
                },
            )
            .unwrap();
        assert_eq!(price.price, dec("10"));
        dn.set_price(OSMO, "0.5");
        let prices: Vec<PriceResponse> = dn
            .app
            .wrap()
            .query_wasm_smart(
                &dn.contracts.oracle,
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
        let err = dn
            .app
            .wrap()
            .query_wasm_smart::<PriceResponse>(
                &dn.contracts.oracle,
                &oracle::QueryMsg::Price {
                    denom: "uion".into(),
                    kind: None,
                },
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("price source not found for denom: uion"),
            "{err}"
        );
        let stranger = dn.addr("stranger");
        let oracle_addr = dn.contracts.oracle.clone();
        let err = dn
            .app
            .execute_contract(
                stranger,
                oracle_addr,
                &oracle::ExecuteMsg::SetPrices { prices: vec![] },
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("Caller is not owner"), "{err}");

        let item: AddressResponseItem = dn
            .app
            .wrap()
            .query_wasm_smart(
                &dn.contracts.address_provider,
                &address_provider::QueryMsg::Address(MarsAddressType::RedBank),
            )
            .unwrap();
        assert_eq!(item.address, dn.contracts.red_bank.to_string());
        assert!(item.address.starts_with("osmo1"));
    }
}
