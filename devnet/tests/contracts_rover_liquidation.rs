//! Liquidating a credit account from the liquidator's own credit account, with the amounts
//! worked out by hand from Mars's formulas, and every refusal with Mars's message.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::rover::*;
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Addr, Coin, Uint128};
    use cw_multi_test::AppResponse;
    use mars::msg::credit_manager::{Action, LiquidateRequest};
    use mars::msg::health::{AccountKind, HealthQueryShape, HealthValuesResponse, PerpsHealth};
    use mars::msg::oracle::ActionKind;

    /// The fixture's borrower as a credit account: 10,000 uatom (price 10, LT 0.8) kept in
    /// the account, 65,000 uusdc borrowed and withdrawn to the owner's wallet. At price 10 its
    /// liquidation health factor is 80,000 / 65,000 = 1.230769230769230769.
    /// `lend` moves the uatom into the Red Bank first.
    fn borrower_account(dn: &mut Devnet, lend: Option<Action>) -> String {
        dn.usdc_liquidity(200_000);
        let owner = dn.addr("borrower");
        let id = dn.open_account(&owner, AccountKind::Default);
        dn.mint(&owner, vec![coin(10_000, ATOM)]);
        let mut actions = vec![Action::Deposit(coin(10_000, ATOM))];
        actions.extend(lend);
        actions.extend([
            Action::Borrow(coin(65_000, USDC)),
            Action::Withdraw(exact(USDC, 65_000)),
        ]);
        dn.update_account(&owner, &id, actions, &[coin(10_000, ATOM)])
            .unwrap();
        id
    }

    /// 10,000 uatom kept as a coin balance.
    fn deposit_borrower(dn: &mut Devnet) -> String {
        borrower_account(dn, None)
    }

    /// A liquidator's account holding `usdc` uusdc of its own.
    fn liquidator_account(dn: &mut Devnet, usdc: u128) -> (Addr, String) {
        let liquidator = dn.addr("liquidator");
        let id = dn.open_account(&liquidator, AccountKind::Default);
        if usdc > 0 {
            dn.fund_account(&liquidator, &id, usdc, USDC);
        }
        (liquidator, id)
    }

    /// Borrow the debt coin and liquidate with it, as Mars's bot does in one transaction.
    fn borrow_and_liquidate(
        liquidatee: &str,
        debt: u128,
        request: LiquidateRequest,
    ) -> Vec<Action> {
        vec![
            Action::Borrow(coin(debt, USDC)),
            Action::Liquidate {
                liquidatee_account_id: liquidatee.into(),
                debt_coin: coin(debt, USDC),
                request,
            },
        ]
    }

    fn deposit_request() -> LiquidateRequest {
        LiquidateRequest::Deposit(ATOM.into())
    }

    /// A borrower's account to liquidate and a liquidator's own account.
    struct Liquidation {
        dn: Devnet,
        liquidatee: String,
        liquidator: Addr,
        own: String,
    }

    impl Liquidation {
        /// The borrower (its uatom lent first when `lend`), a liquidator holding `usdc`
        /// uusdc, and ATOM at `atom_price` (the fixture's 10 when `None`).
        fn new(lend: Option<Action>, usdc: u128, atom_price: Option<&str>) -> Self {
            let mut dn = Devnet::rover();
            let liquidatee = borrower_account(&mut dn, lend);
            let (liquidator, own) = liquidator_account(&mut dn, usdc);
            if let Some(price) = atom_price {
                dn.set_price(ATOM, price);
            }
            Liquidation {
                dn,
                liquidatee,
                liquidator,
                own,
            }
        }

        /// The deposit borrower after ATOM fell to 7.5, liquidatable.
        fn after_price_drop(usdc: u128) -> Self {
            Self::new(None, usdc, Some("7.5"))
        }

        fn run(&mut self, actions: Vec<Action>) -> Result<AppResponse, String> {
            self.dn
                .update_account(&self.liquidator, &self.own, actions, &[])
        }

        fn borrow_and_liquidate(
            &mut self,
            debt: u128,
            request: LiquidateRequest,
        ) -> Result<AppResponse, String> {
            let actions = borrow_and_liquidate(&self.liquidatee, debt, request);
            self.run(actions)
        }

        /// Liquidates with coins the liquidator's account already holds.
        fn liquidate_only(&mut self, debt_coin: Coin) -> Result<AppResponse, String> {
            self.run(vec![Action::Liquidate {
                liquidatee_account_id: self.liquidatee.clone(),
                debt_coin,
                request: deposit_request(),
            }])
        }

        /// The liquidatee's LT-weighted collateral and debt at liquidation prices.
        fn assert_liquidatee_health(&self, lt_adjusted_collateral: u128, debt: u128) {
            let values = self
                .dn
                .health_values(&self.liquidatee, ActionKind::Liquidation);
            assert_eq!(
                values.health.liquidation_threshold_adjusted_collateral,
                Uint128::new(lt_adjusted_collateral)
            );
            assert_eq!(values.health.total_debt_value, Uint128::new(debt));
        }
    }

    /// ATOM 10 → 7.5 (default and liquidation price alike), THF 1.05; uatom LB 0.01 / 2 /
    /// 0.02 / 0.1, protocol fee 0.1. Health at liquidation prices:
    ///   collateral = floor(10,000 · 7.5) = 75,000; LT-weighted floor(75,000 · 0.8) = 60,000;
    ///   debt = ceil(65,000 · 1) = 65,000; HF = 60,000 / 65,000 = 0.923076923076923076.
    /// Bonus: 0.01 + 2 · (1 − HF) = 0.163846…; cap max(min(CR − 1, 0.1), 0.02) with
    ///   CR = 75,000 / 65,000 = 1.1538… → min(0.1538…, 0.1) = 0.1; LB = min(0.1638…, 0.1) = 0.1.
    /// Repay cap: LT·(1 + LB) = 0.88 < 1.05, so
    ///   floor((floor(1.05 · 65,000) − 60,000) / (1.05 − 0.88)) = floor(8,250 / 0.17) = 48,529;
    ///   from collateral floor(75,000 / 1.1) = 68,181; requested 30,000 → repay 30,000.
    /// Seized floor(floor(30,000 · 1.1) / 7.5) = 4,400 uatom; bonus value floor(30,000 · 0.1)
    ///   = 3,000; fee value ceil(3,000 · 0.1) = 300; fee floor(300 / 7.5) = 40 uatom;
    ///   liquidator receives 4,400 − 40 = 4,360 uatom (worth 32,700 > 30,000 repaid).
    #[test]
    fn liquidation_of_a_deposit_moves_the_hand_computed_amounts() {
        let mut l = Liquidation::after_price_drop(10_000);

        let values = l.dn.health_values(&l.liquidatee, ActionKind::Liquidation);
        assert_eq!(values.health.total_collateral_value, Uint128::new(75_000));
        l.assert_liquidatee_health(60_000, 65_000);
        assert_eq!(
            values.health.liquidation_health_factor,
            Some(dec("0.923076923076923076"))
        );
        assert!(values.liquidatable);

        let res = l.borrow_and_liquidate(30_000, deposit_request()).unwrap();
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "coin_debt_repaid").unwrap(),
            "30000uusdc"
        );
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "coin_liquidated").unwrap(),
            "4400uatom"
        );
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "protocol_fee_coin").unwrap(),
            "40uatom"
        );

        // Liquidatee: 10,000 − 4,400 = 5,600 uatom; debt 65,000 − 30,000 = 35,000 (its
        // 65e9 shares less 95e9 · 30,000 / 95,000 = 30e9 repaid); the repaid uusdc passed
        // through its balance and is gone.
        let dn = &l.dn;
        let after = dn.positions(&l.liquidatee);
        assert_eq!(deposit_of(&after, ATOM), 5_600);
        assert_eq!(deposit_of(&after, USDC), 0);
        assert_eq!(debt_of(&after, USDC), 35_000);
        assert_eq!(after.debts[0].shares, Uint128::new(35_000_000_000));

        // Liquidator: its 10,000 uusdc, the 4,360 uatom received, and the 30,000 it borrowed
        // (30,000 · 65e9 / 65,000 = 30e9 shares).
        let own_after = dn.positions(&l.own);
        assert_eq!(deposit_of(&own_after, ATOM), 4_360);
        assert_eq!(deposit_of(&own_after, USDC), 10_000);
        assert_eq!(debt_of(&own_after, USDC), 30_000);
        assert_eq!(own_after.debts[0].shares, Uint128::new(30_000_000_000));

        // The rewards collector's credit account (id 1) got the 40 uatom fee.
        let fee = dn.positions("1");
        assert_eq!(deposit_of(&fee, ATOM), 40);

        // The credit manager owes the Red Bank 65,000 + 30,000 − 30,000 and still holds the
        // 10,000 uatom, now split 5,600 / 4,360 / 40.
        let cm = dn.credit_manager();
        assert_eq!(dn.credit_manager_debt(USDC).amount, Uint128::new(65_000));
        assert_eq!(dn.balance(&cm, ATOM), 10_000);

        // Still liquidatable: floor(5,600 · 7.5 · 0.8) = 33,600 against 35,000.
        l.assert_liquidatee_health(33_600, 35_000);
    }

    /// Offering the whole 65,000 debt: the target-health-factor cap of 48,529 (worked out
    /// above) binds. Seized floor(floor(48,529 · 1.1) / 7.5) = floor(53,381 / 7.5) = 7,117;
    /// fee floor(ceil(floor(48,529 · 0.1) · 0.1) / 7.5) = floor(486 / 7.5) = 64; received
    /// 7,053. What the liquidator borrowed beyond the repayment stays in its account.
    #[test]
    fn the_target_health_factor_caps_the_repayment() {
        let mut l = Liquidation::after_price_drop(40_000);
        l.borrow_and_liquidate(65_000, deposit_request()).unwrap();
        let dn = &l.dn;
        let after = dn.positions(&l.liquidatee);
        assert_eq!(deposit_of(&after, ATOM), 10_000 - 7_117);
        assert_eq!(debt_of(&after, USDC), 65_000 - 48_529);
        let own_after = dn.positions(&l.own);
        assert_eq!(deposit_of(&own_after, ATOM), 7_053);
        assert_eq!(deposit_of(&own_after, USDC), 40_000 + 65_000 - 48_529);
        assert_eq!(deposit_of(&dn.positions("1"), ATOM), 64);
        // The account is left just above the target: floor(floor(2,883 · 7.5) · 0.8) = 17,297
        // against 16,471.
        l.assert_liquidatee_health(17_297, 16_471);
    }

    /// core-contracts (Neutron): no target health factor; the uusdc close factor 0.9 caps the
    /// repayment (the Red Bank fixture's figures, `contracts_close_factor`): offered 65,000,
    /// repaid min(65,000, ⌊65,000 · 0.9⌋ = 58,500, ⌊75,000 / 1.1⌋ = 68,181) = 58,500; seized
    /// ⌊⌊58,500 · 1.1⌋ / 7.5⌋ = 8,580 uatom; fee ⌊⌈⌊58,500 · 0.1⌋ · 0.1⌉ / 7.5⌋ = ⌊585 / 7.5⌋
    /// = 78; received 8,502. The health contract takes no `kind` (a query with one is refused)
    /// and answers with the perps fields; `positions` lists the (empty) perps.
    #[test]
    fn on_core_contracts_the_close_factor_caps_a_credit_account_liquidation() {
        let mut dn = Devnet::rover_with(neutron_config());
        let liquidatee = borrower_account(&mut dn, None);
        let (liquidator, own) = liquidator_account(&mut dn, 40_000);
        dn.set_price(ATOM, "7.5");

        let health = dn.rover_contracts().health;
        let with_kind = dn.query_on::<HealthValuesResponse>(
            &health,
            &HealthQueryShape::WithKind.health_values(
                &liquidatee,
                AccountKind::Default,
                ActionKind::Liquidation,
            ),
        );
        assert!(
            with_kind
                .as_ref()
                .is_err_and(|e| e.contains("unknown field `kind`")),
            "{with_kind:?}"
        );
        let values = dn.health_values(&liquidatee, ActionKind::Liquidation);
        assert!(values.liquidatable);
        assert_eq!(values.perps, Some(PerpsHealth::none_held()));
        assert_eq!(dn.positions(&liquidatee).perps, Some(vec![]));

        let actions = borrow_and_liquidate(&liquidatee, 65_000, deposit_request());
        let res = dn.update_account(&liquidator, &own, actions, &[]).unwrap();
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "coin_debt_repaid").unwrap(),
            "58500uusdc"
        );
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "coin_liquidated").unwrap(),
            "8580uatom"
        );
        assert_eq!(
            wasm_attr(&res, "liquidate_deposit", "protocol_fee_coin").unwrap(),
            "78uatom"
        );
        let after = dn.positions(&liquidatee);
        assert_eq!(deposit_of(&after, ATOM), 10_000 - 8_580);
        assert_eq!(debt_of(&after, USDC), 65_000 - 58_500);
        let own_after = dn.positions(&own);
        assert_eq!(deposit_of(&own_after, ATOM), 8_502);
        assert_eq!(deposit_of(&own_after, USDC), 40_000 + 65_000 - 58_500);
        assert_eq!(deposit_of(&dn.positions("1"), ATOM), 78);
    }

    /// The same figures when the 10,000 uatom are lent: the 4,400 seized are reclaimed from
    /// the Red Bank (the lend keeps 5,600) and credited 4,360 / 40 as coin balances.
    #[test]
    fn liquidation_of_a_lend_reclaims_from_the_red_bank() {
        let lend = Action::Lend(exact(ATOM, 10_000));
        let mut l = Liquidation::new(Some(lend), 10_000, Some("7.5"));
        l.borrow_and_liquidate(30_000, LiquidateRequest::Lend(ATOM.into()))
            .unwrap();

        let dn = &l.dn;
        let after = dn.positions(&l.liquidatee);
        assert_eq!(lend_of(&after, ATOM), 5_600);
        assert_eq!(deposit_of(&after, ATOM), 0);
        assert_eq!(debt_of(&after, USDC), 35_000);
        assert_eq!(deposit_of(&dn.positions(&l.own), ATOM), 4_360);
        assert_eq!(deposit_of(&dn.positions("1"), ATOM), 40);
        let cm = dn.credit_manager();
        let lent = dn.credit_account_lend(&l.liquidatee, ATOM);
        assert_eq!(lent.amount, Uint128::new(5_600));
        assert_eq!(dn.balance(&cm, ATOM), 4_400);
    }

    #[test]
    fn cannot_liquidate_own_account() {
        let mut dn = Devnet::rover();
        let liquidatee = deposit_borrower(&mut dn);
        dn.set_price(ATOM, "7.5");
        let owner = dn.addr("borrower");
        assert_err(
            dn.update_account(
                &owner,
                &liquidatee,
                borrow_and_liquidate(&liquidatee, 1_000, deposit_request()),
                &[],
            ),
            "Cannot request liquidation on own credit account",
        );
    }

    /// At price 10 the liquidation health factor is 80,000 / 65,000.
    #[test]
    fn cannot_liquidate_a_healthy_account() {
        let mut l = Liquidation::new(None, 10_000, None);
        let liquidatee = l.liquidatee.clone();
        assert_err(
            l.borrow_and_liquidate(30_000, deposit_request()),
            &format!(
                "\"{liquidatee}\" is not a liquidatable credit account. Health factor: \"1.230769230769230769\"."
            ),
        );
    }

    #[test]
    fn requested_coin_and_debt_must_be_held_by_the_liquidatee() {
        let mut l = Liquidation::after_price_drop(10_000);
        assert_err(
            l.borrow_and_liquidate(1_000, LiquidateRequest::Deposit(OSMO.into())),
            "uosmo is not an available coin to request",
        );
        assert_err(
            l.borrow_and_liquidate(1_000, LiquidateRequest::Lend(ATOM.into())),
            "Nothing lent to reclaim",
        );
        l.dn.fund_account(&l.liquidator, &l.own, 1_000, OSMO);
        assert_err(l.liquidate_only(coin(1_000, OSMO)), "No debt to repay");
    }

    /// Repaying 10 uusdc seizes floor(floor(10 · 1.1) / 7.5) = 1 uatom; the fee
    /// floor(ceil(floor(10 · 0.1) · 0.1) / 7.5) = 0, so the liquidator gets 1 uatom worth
    /// floor(7.5) = 7, less than the 10 it paid.
    #[test]
    fn an_unprofitable_liquidation_is_refused() {
        let mut l = Liquidation::after_price_drop(10_000);
        assert_err(
            l.borrow_and_liquidate(10, deposit_request()),
            "Paying down Coin { denom: \"uusdc\", amount: Uint128(10) } for Coin { denom: \"uatom\", amount: Uint128(1) } does not result in a profit for the liquidator",
        );
    }

    /// The debt is paid from the liquidator's own coin balance, which must hold it.
    #[test]
    fn liquidator_must_hold_the_debt_coin() {
        let mut l = Liquidation::after_price_drop(10_000);
        assert_err(l.liquidate_only(coin(30_000, USDC)), "Cannot Sub with");
    }

    /// The liquidator's account must itself end healthy at max LTV: with nothing of its own,
    /// borrowing 30,000 to receive 4,360 uatom leaves floor(32,700 · 0.7) = 22,890 of
    /// max-LTV collateral against 30,000, a health factor of 0.763.
    #[test]
    fn liquidator_account_must_end_healthy() {
        let mut l = Liquidation::after_price_drop(0);
        assert_err(
            l.borrow_and_liquidate(30_000, deposit_request()),
            "Actions resulted in exceeding maximum allowed loan-to-value. Max LTV health factor: \"0.763\"",
        );
    }
}
