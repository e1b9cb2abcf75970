//! The case measured on the real Mars contracts, reproduced to the unit through the devnet's
//! cw-multi-test app. Block time stays fixed, so no interest accrues.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Uint128};
    use mars::msg::red_bank::UserHealthStatus;

    #[test]
    fn mars_fixture_reproduced_to_the_unit() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        let liquidator = dn.addr("liquidator");
        let rewards_collector = dn.contracts.rewards_collector.clone();

        // Healthy at ATOM = 10: collateral 100,000, debt 65,000.
        let position = dn.position(&borrower);
        assert_eq!(position.total_enabled_collateral, Uint128::new(100_000));
        assert_eq!(position.total_collateralized_debt, Uint128::new(65_000));
        assert_eq!(position.weighted_max_ltv_collateral, Uint128::new(70_000));
        assert_eq!(
            position.weighted_liquidation_threshold_collateral,
            Uint128::new(80_000)
        );
        assert_eq!(
            position.health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: dec("1.076923076923076923"),
                liq_threshold_hf: dec("1.230769230769230769"),
            }
        );
        assert_eq!(dn.balance(&borrower, USDC), 65_000);

        dn.mint(&liquidator, vec![coin(30_000, USDC)]);
        assert_err(
            dn.liquidate(&liquidator, &borrower, ATOM, &[coin(30_000, USDC)]),
            "User's health factor is not less than 1 and thus cannot be liquidated",
        );

        // ATOM falls to 7.5: HF 0.923.
        dn.set_price(ATOM, "7.5");
        let position = dn.position(&borrower);
        assert_eq!(position.total_enabled_collateral, Uint128::new(75_000));
        assert_eq!(
            position.health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: dec("0.807692307692307692"),
                liq_threshold_hf: dec("0.923076923076923076"),
            }
        );

        let res = dn
            .liquidate(&liquidator, &borrower, ATOM, &[coin(30_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "user"), borrower.to_string());
        assert_eq!(liquidate_attr(&res, "liquidator"), liquidator.to_string());
        assert_eq!(liquidate_attr(&res, "recipient"), liquidator.to_string());
        assert_eq!(liquidate_attr(&res, "collateral_denom"), ATOM);
        assert_eq!(liquidate_attr(&res, "collateral_amount"), "4400");
        assert_eq!(
            liquidate_attr(&res, "collateral_amount_scaled"),
            "4400000000"
        );
        assert_eq!(liquidate_attr(&res, "debt_denom"), USDC);
        assert_eq!(liquidate_attr(&res, "debt_amount"), "30000");
        assert_eq!(liquidate_attr(&res, "debt_amount_scaled"), "30000000000");
        // contracts v2.1 reports neither prices nor the protocol fee.
        let wasm = res
            .events
            .iter()
            .find(|e| {
                e.ty == "wasm"
                    && e.attributes
                        .iter()
                        .any(|a| a.key == "action" && a.value == "liquidate")
            })
            .unwrap();
        assert!(!wasm.attributes.iter().any(|a| a.key.ends_with("_price")));
        assert!(!wasm
            .attributes
            .iter()
            .any(|a| a.key.starts_with("protocol_fee")));

        // 4,360 to the liquidator and 40 to the rewards collector, as Red Bank collateral.
        assert_eq!(dn.collateral(&liquidator, ATOM).amount, Uint128::new(4_360));
        assert!(dn.collateral(&liquidator, ATOM).enabled);
        assert_eq!(
            dn.collateral(&rewards_collector, ATOM).amount,
            Uint128::new(40)
        );
        assert_eq!(dn.balance(&liquidator, USDC), 0, "nothing to refund");

        // The borrower keeps 5,600 uatom and owes 35,000 uusdc: HF 0.96.
        assert_eq!(dn.collateral(&borrower, ATOM).amount, Uint128::new(5_600));
        assert_eq!(dn.debt(&borrower, USDC).amount, Uint128::new(35_000));
        let position = dn.position(&borrower);
        assert_eq!(position.total_enabled_collateral, Uint128::new(42_000));
        assert_eq!(position.total_collateralized_debt, Uint128::new(35_000));
        assert_eq!(
            position.health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: dec("0.84"),
                liq_threshold_hf: dec("0.96"),
            }
        );

        // The liquidator turns its collateral shares into coins.
        dn.execute(
            &liquidator,
            &mars::msg::red_bank::ExecuteMsg::Withdraw {
                denom: ATOM.into(),
                amount: None,
                recipient: None,
                account_id: None,
                liquidation_related: None,
            },
            &[],
        )
        .unwrap();
        assert_eq!(dn.balance(&liquidator, ATOM), 4_360);
    }

    #[test]
    fn liquidation_pricing_query_and_kind() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        // A liquidation price apart from the default one: liquidations (and only they) see it.
        let owner = dn.contracts.owner.clone();
        let oracle = dn.contracts.oracle.clone();
        redline_devnet::contracts::set_prices(
            &mut dn.app,
            &owner,
            &oracle,
            &[mars::msg::oracle::PriceUpdate {
                denom: ATOM.into(),
                price: dec("10"),
                liquidation_price: Some(dec("7.5")),
            }],
        )
        .unwrap();
        let default: mars::msg::red_bank::UserPositionResponse = dn.position(&borrower);
        let liquidation: mars::msg::red_bank::UserPositionResponse = dn.query(
            &mars::msg::red_bank::QueryMsg::UserPositionLiquidationPricing {
                user: borrower.to_string(),
                account_id: None,
            },
        );
        assert_eq!(default.total_enabled_collateral, Uint128::new(100_000));
        assert_eq!(liquidation.total_enabled_collateral, Uint128::new(75_000));

        let liquidator = dn.liquidator(vec![coin(30_000, USDC)]);
        let res = dn
            .liquidate(&liquidator, &borrower, ATOM, &[coin(30_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "collateral_amount"), "4400");
    }

    /// Raw state uses Mars's namespaces and key shapes, so raw-state scans read a devnet as they
    /// read a real Red Bank: `debts` keyed (address, denom), `colls` keyed (UserId JSON, denom).
    #[test]
    fn raw_state_has_mars_keys() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        let raw = dn.app.dump_wasm_raw(&dn.contracts.red_bank);

        fn length_prefixed(part: &[u8]) -> Vec<u8> {
            let mut out = (part.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(part);
            out
        }
        let mut debt_key = length_prefixed(b"debts");
        debt_key.extend(length_prefixed(borrower.as_bytes()));
        debt_key.extend_from_slice(USDC.as_bytes());
        let debt = raw.iter().find(|(k, _)| *k == debt_key).expect("debt key");
        let debt: mars::msg::red_bank::Debt = serde_json::from_slice(&debt.1).unwrap();
        assert_eq!(debt.amount_scaled, Uint128::new(65_000_000_000));
        assert!(!debt.uncollateralized);

        let user_id = mars::msg::red_bank::UserId::red_bank(borrower.clone());
        let mut coll_key = length_prefixed(b"colls");
        coll_key.extend(length_prefixed(&user_id.key_bytes()));
        coll_key.extend_from_slice(ATOM.as_bytes());
        let coll = raw
            .iter()
            .find(|(k, _)| *k == coll_key)
            .expect("collateral key");
        let coll: mars::msg::red_bank::Collateral = serde_json::from_slice(&coll.1).unwrap();
        assert_eq!(coll.amount_scaled, Uint128::new(10_000_000_000));
        assert!(coll.enabled);

        let mut market_key = length_prefixed(b"markets");
        market_key.extend_from_slice(ATOM.as_bytes());
        assert!(raw.iter().any(|(k, _)| *k == market_key));
    }
}
