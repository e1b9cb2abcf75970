//! Interest accrues over block time as Mars accrues it: indexes move linearly at the rates of
//! the elapsed period, the reserve factor's share goes to the rewards collector as collateral,
//! and every figure matches `mars::math::interest`.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Uint128};
    use mars::math::interest;
    use mars::msg::red_bank::{ExecuteMsg, Market, QueryMsg};

    const YEAR: u64 = 31_536_000;

    fn market(dn: &Devnet, denom: &str) -> Market {
        dn.query::<Option<Market>>(&QueryMsg::Market {
            denom: denom.into(),
        })
        .unwrap()
    }

    #[test]
    fn debt_and_deposits_grow_with_block_time() {
        let mut dn = Devnet::fixture();
        let (lender, borrower) = lender_and_borrower(&mut dn, 100_000, 10_000);
        dn.borrow(&borrower, 50_000, USDC).unwrap();

        // Utilization 0.5: borrow rate 0.07 · 0.5 / 0.8 = 0.04375,
        // liquidity rate 0.04375 · 0.5 · (1 − 0.1) = 0.0196875.
        let m = market(&dn, USDC);
        assert_eq!(m.borrow_rate, dec("0.04375"));
        assert_eq!(m.liquidity_rate, dec("0.0196875"));
        assert_eq!(m.indexes_last_updated, START_TIME);

        dn.advance(YEAR);
        let now = START_TIME + YEAR;
        // One year later: debt 50,000 · 1.04375 = 52,187.5, ceiled to 52,188; deposit
        // 100,000 · 1.0196875 = 101,968.75, truncated to 101,968.
        let debt = dn.debt(&borrower, USDC);
        assert_eq!(debt.amount_scaled, Uint128::new(50_000_000_000));
        assert_eq!(debt.amount, Uint128::new(52_188));
        assert_eq!(
            debt.amount,
            interest::underlying_debt_amount(debt.amount_scaled, &m, now).unwrap()
        );
        assert_eq!(dn.collateral(&lender, USDC).amount, Uint128::new(101_968));

        // Any action on the market accrues: repay 1 uusdc.
        dn.mint(&borrower, vec![coin(1, USDC)]);
        dn.execute(
            &borrower,
            &ExecuteMsg::Repay { on_behalf_of: None },
            &[coin(1, USDC)],
        )
        .unwrap();
        let expected = interest::apply_accumulated_interests(&m, now).unwrap();
        let m2 = market(&dn, USDC);
        assert_eq!(m2.borrow_index, dec("1.04375"));
        assert_eq!(m2.liquidity_index, dec("1.0196875"));
        assert_eq!(m2.indexes_last_updated, now);
        // Interest 2,188, protocol share ⌊218.8⌋ = 218, credited as scaled collateral
        // ⌊218,000,000 / 1.0196875⌋ = 213,790,989 (worth 217 after truncation).
        assert_eq!(expected.reward_amount, Uint128::new(218));
        assert_eq!(expected.reward_amount_scaled, Uint128::new(213_790_989));
        let rewards = dn.collateral(&dn.contracts.rewards_collector.clone(), USDC);
        assert_eq!(rewards.amount_scaled, Uint128::new(213_790_989));
        assert_eq!(rewards.amount, Uint128::new(217));
        assert_eq!(
            m2.collateral_total_scaled,
            Uint128::new(100_000_000_000 + 213_790_989)
        );
        assert_eq!(dn.debt(&borrower, USDC).amount, Uint128::new(52_187));
        // Rates reset from the new utilization, as the shared math computes them.
        let mut after_repay = expected.market.clone();
        after_repay.debt_total_scaled = m2.debt_total_scaled;
        let rates = interest::update_interest_rates(&after_repay, now).unwrap();
        assert_eq!(m2.borrow_rate, rates.borrow_rate);
        assert_eq!(m2.liquidity_rate, rates.liquidity_rate);

        // Half a year more accrues at the new rates.
        dn.advance(YEAR / 2);
        let later = now + YEAR / 2;
        let debt = dn.debt(&borrower, USDC);
        assert_eq!(
            debt.amount,
            interest::underlying_debt_amount(debt.amount_scaled, &m2, later).unwrap()
        );
        assert!(debt.amount > Uint128::new(52_187));
        // Interest makes the position less healthy without any price move.
        let before = dn.position(&borrower).total_collateralized_debt;
        dn.advance(10 * YEAR);
        assert!(dn.position(&borrower).total_collateralized_debt > before);
    }

    #[test]
    fn no_interest_without_time_or_borrowers() {
        let mut dn = Devnet::fixture();
        let lender = dn.addr("lender");
        dn.deposit(&lender, 100_000, USDC);
        dn.advance(YEAR);
        assert_eq!(dn.collateral(&lender, USDC).amount, Uint128::new(100_000));
        let m = market(&dn, USDC);
        assert!(m.borrow_rate.is_zero());
        assert!(m.liquidity_rate.is_zero());
    }
}
