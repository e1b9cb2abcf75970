//! Every way the Red Bank refuses an action, with Mars's messages, and the refund of excess
//! debt coins.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Uint128};
    use mars::msg::params::{EmergencyUpdate, ExecuteMsg as ParamsMsg, RedBankEmergencyUpdate};
    use mars::msg::red_bank::{ExecuteMsg, UserHealthStatus};

    fn liquidatable() -> (Devnet, cosmwasm_std::Addr, cosmwasm_std::Addr) {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        dn.set_price(ATOM, "7.5");
        let liquidator = dn.liquidator(vec![coin(100_000, USDC), coin(100_000, ATOM)]);
        (dn, borrower, liquidator)
    }

    #[test]
    fn cannot_liquidate_self() {
        let (mut dn, borrower, _) = liquidatable();
        dn.mint(&borrower, vec![coin(1_000, USDC)]);
        assert_err(
            dn.liquidate(&borrower, &borrower, ATOM, &[coin(1_000, USDC)]),
            "User cannot issue liquidation of own account",
        );
    }

    #[test]
    fn cannot_liquidate_healthy_position() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        let liquidator = dn.liquidator(vec![coin(1_000, USDC)]);
        assert_err(
            dn.liquidate(&liquidator, &borrower, ATOM, &[coin(1_000, USDC)]),
            "User's health factor is not less than 1 and thus cannot be liquidated",
        );
    }

    #[test]
    fn cannot_liquidate_disabled_collateral() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        dn.deposit(&borrower, 1_000, OSMO);
        dn.set_collateral_enabled(&borrower, OSMO, false).unwrap();
        assert!(!dn.collateral(&borrower, OSMO).enabled);
        dn.set_price(ATOM, "7.5");
        let liquidator = dn.liquidator(vec![coin(1_000, USDC)]);
        assert_err(
            dn.liquidate(&liquidator, &borrower, OSMO, &[coin(1_000, USDC)]),
            r#"User can't be liquidated for asset "uosmo" not being used as collateral"#,
        );
        // Disabled collateral does not count in health either.
        assert_eq!(
            dn.position(&borrower).total_enabled_collateral,
            Uint128::new(75_000)
        );
    }

    #[test]
    fn disabling_collateral_that_keeps_the_account_alive_is_refused() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        assert_err(
            dn.set_collateral_enabled(&borrower, ATOM, false),
            "User's health factor can't be less than 1 after disabling collateral",
        );
    }

    #[test]
    fn cannot_liquidate_collateral_the_user_does_not_have() {
        let (mut dn, borrower, liquidator) = liquidatable();
        assert_err(
            dn.liquidate(&liquidator, &borrower, USDC, &[coin(1_000, USDC)]),
            "User has no balance in specified collateral asset to be liquidated",
        );
    }

    #[test]
    fn cannot_liquidate_debt_the_user_does_not_have() {
        let (mut dn, borrower, liquidator) = liquidatable();
        assert_err(dn.liquidate(&liquidator, &borrower, ATOM, &[coin(1_000, ATOM)]), "User has no outstanding debt in the specified debt asset and thus cannot be liquidated");
    }

    #[test]
    fn liquidate_needs_exactly_one_coin() {
        let (mut dn, borrower, liquidator) = liquidatable();
        assert_err(
            dn.liquidate(&liquidator, &borrower, ATOM, &[]),
            "No funds sent",
        );
        assert_err(
            dn.liquidate(
                &liquidator,
                &borrower,
                ATOM,
                &[coin(1_000, ATOM), coin(1_000, USDC)],
            ),
            "Sent more than one denomination",
        );
    }

    #[test]
    fn excess_debt_coin_is_refunded() {
        let (mut dn, borrower, liquidator) = liquidatable();
        // Capped by the target health factor: (1.05·65,000 − 60,000) / (1.05 − 0.8·1.1) = 48,529.
        let res = dn
            .liquidate(&liquidator, &borrower, ATOM, &[coin(60_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "debt_amount"), "48529");
        // floor(floor(48,529 · 1.1) / 7.5) = floor(53,381 / 7.5) = 7,117.
        assert_eq!(liquidate_attr(&res, "collateral_amount"), "7117");
        // fee = floor(ceil(floor(48,529 · 0.1) · 0.1) / 7.5) = floor(486 / 7.5) = 64.
        assert_eq!(
            dn.collateral(&liquidator, ATOM).amount,
            Uint128::new(7_117 - 64)
        );
        assert_eq!(
            dn.collateral(&dn.contracts.rewards_collector.clone(), ATOM)
                .amount,
            Uint128::new(64)
        );
        assert_eq!(dn.balance(&liquidator, USDC), 100_000 - 48_529);
        assert_eq!(
            dn.debt(&borrower, USDC).amount,
            Uint128::new(65_000 - 48_529)
        );
        // Left at about the target health factor.
        let hf = liq_threshold_hf(&dn.position(&borrower));
        assert!(hf >= dec("1.05") && hf < dec("1.051"), "{hf}");
    }

    /// Mars removed its health-after check in Sep 2023 ("Should be possible to liquidate even if
    /// HF decrease after liquidation"): an underwater account is liquidated, its health factor
    /// falls, and the liquidator is paid the minimum bonus.
    #[test]
    fn underwater_liquidation_lowers_health_and_pays_the_bonus() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        // 10,000 uatom at 6 = 60,000 against 65,000 uusdc debt: under water (CR 0.923).
        // HF = ⌊48,000 / 65,000⌋ = 0.738461538461538461; LB = min(0.01 + 2·0.2615…,
        // max(min(0, 0.1), 0.02)) = 0.02. LT·(1 + LB) = 0.816 < THF 1.05, so the cap is
        // ⌊(68,250 − 48,000) / 0.234⌋ = 86,538; the collateral bound ⌊⌊60,000 / 1.02⌋ / 1⌋ =
        // 58,823. Sent 10,000: repaid 10,000.
        dn.set_price(ATOM, "6");
        let liquidator = dn.liquidator(vec![coin(10_000, USDC)]);
        let res = dn
            .liquidate(&liquidator, &borrower, ATOM, &[coin(10_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "debt_amount"), "10000");
        // Seized ⌊⌊10,000 · 1.02⌋ / 6⌋ = ⌊10,200 / 6⌋ = 1,700.
        assert_eq!(liquidate_attr(&res, "collateral_amount"), "1700");
        // Fee ⌊⌈⌊10,000 · 0.02⌋ · 0.1⌉ / 6⌋ = ⌊20 / 6⌋ = 3: the liquidator gets 1,697 uatom,
        // worth 10,182 uusdc for the 10,000 it repaid.
        assert_eq!(dn.collateral(&liquidator, ATOM).amount, Uint128::new(1_697));
        assert_eq!(dn.balance(&liquidator, USDC), 0, "nothing to refund");
        // Health after: 8,300 uatom · 6 · 0.8 = 39,840 against 55,000: 0.724363… < 0.738….
        let position = dn.position(&borrower);
        assert_eq!(position.total_collateralized_debt, Uint128::new(55_000));
        assert_eq!(liq_threshold_hf(&position), dec("0.724363636363636363"));
    }

    #[test]
    fn borrow_and_withdraw_checks() {
        let mut dn = Devnet::fixture();
        let (_, borrower) = lender_and_borrower(&mut dn, 200_000, 10_000);
        // Max LTV 0.7 of 100,000.
        assert_err(
            dn.borrow(&borrower, 70_001, USDC),
            "Borrow amount exceeds maximum allowed given current collateral value",
        );
        dn.borrow(&borrower, 70_000, USDC).unwrap();
        assert_err(
            dn.borrow(&borrower, 200_000, USDC),
            "Borrow amount must be greater than 0 and less or equal available liquidity",
        );
        // Withdrawing keeps the liquidation threshold (0.8): 70,000 / 0.8 = 87,500 must stay.
        let withdraw = |amount: u128| ExecuteMsg::Withdraw {
            denom: ATOM.into(),
            amount: Some(Uint128::new(amount)),
            recipient: None,
            account_id: None,
            liquidation_related: None,
        };
        assert_err(
            dn.execute(&borrower, &withdraw(1_251), &[]),
            "User's health factor can't be less than 1 after withdraw",
        );
        let res = dn.execute(&borrower, &withdraw(1_250), &[]).unwrap();
        assert_eq!(wasm_attr(&res, "withdraw", "amount").unwrap(), "1250");
        assert_err(
            dn.execute(&borrower, &withdraw(0), &[]),
            "Withdraw amount must be greater than 0",
        );
        // Payments where none are expected.
        dn.mint(&borrower, vec![coin(1, ATOM)]);
        assert_err(
            dn.execute(&borrower, &withdraw(1), &[coin(1, ATOM)]),
            "This message does no accept funds",
        );
        // Borrowing disabled in params.
        let params = dn.contracts.params.clone();
        dn.execute_as_owner(
            &params,
            &ParamsMsg::EmergencyUpdate(EmergencyUpdate::RedBank(
                RedBankEmergencyUpdate::DisableBorrowing(USDC.into()),
            )),
        )
        .unwrap();
        assert_err(
            dn.borrow(&borrower, 1, USDC),
            r#"Borrow for "uusdc" is not enabled"#,
        );
    }

    #[test]
    fn repay_refunds_excess_and_clears_debt() {
        let mut dn = Devnet::fixture();
        let borrower = fixture_borrower(&mut dn);
        dn.mint(&borrower, vec![coin(10_000, USDC)]);
        let res = dn
            .execute(
                &borrower,
                &ExecuteMsg::Repay { on_behalf_of: None },
                &[coin(75_000, USDC)],
            )
            .unwrap();
        assert_eq!(wasm_attr(&res, "repay", "amount").unwrap(), "65000");
        assert_eq!(dn.balance(&borrower, USDC), 10_000);
        assert_eq!(
            dn.position(&borrower).health_status,
            UserHealthStatus::NotBorrowing
        );
        assert_err(
            dn.execute(
                &borrower,
                &ExecuteMsg::Repay { on_behalf_of: None },
                &[coin(1, USDC)],
            ),
            "Cannot repay 0 debt",
        );
    }

    #[test]
    fn deposit_cap_and_unlisted_denoms() {
        let mut cfg = fixture_config();
        cfg.assets[2].params.deposit_cap = Uint128::new(1_000);
        let mut dn = Devnet::with_config(&cfg);
        let user = dn.addr("user");
        dn.deposit(&user, 1_000, OSMO);
        dn.mint(&user, vec![coin(1, OSMO), coin(5, "uion")]);
        let deposit = ExecuteMsg::Deposit {
            account_id: None,
            on_behalf_of: None,
        };
        assert_err(
            dn.execute(&user, &deposit, &[coin(1, OSMO)]),
            r#"Deposit Cap exceeded for "uosmo""#,
        );
        assert_err(
            dn.execute(&user, &deposit, &[coin(5, "uion")]),
            "Market not found",
        );
        // Only the credit manager may use account ids.
        assert_err(
            dn.execute(
                &user,
                &ExecuteMsg::Deposit {
                    account_id: Some("1".into()),
                    on_behalf_of: None,
                },
                &[coin(1, OSMO)],
            ),
            "Unauthorized",
        );
    }
}
