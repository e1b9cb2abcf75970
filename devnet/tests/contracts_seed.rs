//! Bulk seeding: 100,000 borrowers written into the Red Bank in one call, consistent with the
//! contract's own bookkeeping and the bank.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use std::time::Instant;

    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Uint128};
    use mars::msg::red_bank::{Market, QueryMsg, UserHealthStatus};
    use redline_devnet::contracts::{seed_positions, SeedError, SeedPosition};

    #[test]
    fn seeds_100k_borrowers_quickly_and_consistently() {
        let mut dn = Devnet::fixture();
        let lender = dn.addr("seed-lender");
        let n: usize = 100_000;
        let mut positions = Vec::with_capacity(n + 1);
        positions.push(SeedPosition {
            user: lender.clone(),
            account_id: None,
            collateral: vec![coin(10_000_000_000u128, USDC)],
            debt: vec![],
        });
        for i in 0..n {
            let user = dn.addr(&format!("borrower-{i}"));
            // 1,000 uatom (value 10,000) against 4,000..6,999 uusdc: liquidation HF 1.14..2.0.
            positions.push(SeedPosition {
                user,
                account_id: None,
                collateral: vec![coin(1_000, ATOM)],
                debt: vec![coin(4_000 + (i % 3_000) as u128, USDC)],
            });
        }
        let borrowed: u128 = positions
            .iter()
            .flat_map(|p| p.debt.iter())
            .map(|c| Uint128::try_from(c.amount).unwrap().u128())
            .sum();

        let started = Instant::now();
        let summary = seed_positions(&mut dn.app, &dn.contracts, &positions).unwrap();
        let elapsed = started.elapsed();
        println!("seeded {} positions in {elapsed:?}", summary.positions);
        assert!(elapsed.as_secs() < 60, "seeding took {elapsed:?}");
        assert_eq!(summary.borrowed[USDC], Uint128::new(borrowed));
        assert_eq!(summary.deposited[ATOM], Uint128::new(1_000 * n as u128));

        // Bank: the Red Bank holds deposits minus loans; borrowers hold their loans.
        let red_bank = dn.contracts.red_bank.clone();
        assert_eq!(dn.balance(&red_bank, USDC), 10_000_000_000 - borrowed);
        assert_eq!(dn.balance(&red_bank, ATOM), 1_000 * n as u128);
        let last = positions.last().unwrap().user.clone();
        assert_eq!(dn.balance(&last, USDC), 4_000 + ((n - 1) % 3_000) as u128);

        // Contract state: totals and per-user positions.
        let market: Market = dn
            .query::<Option<Market>>(&QueryMsg::Market { denom: USDC.into() })
            .unwrap();
        assert_eq!(market.debt_total_scaled, Uint128::new(borrowed * 1_000_000));
        assert!(
            !market.borrow_rate.is_zero(),
            "rates follow the seeded utilization"
        );
        let first = positions[1].user.clone();
        assert_eq!(dn.debt(&first, USDC).amount, Uint128::new(4_000));
        assert_eq!(
            dn.position(&first).health_status,
            UserHealthStatus::Borrowing {
                max_ltv_hf: dec("1.75"),
                liq_threshold_hf: dec("2"),
            }
        );

        // Seeded accounts behave like any other: the riskiest becomes liquidatable when ATOM falls.
        let riskiest = positions[3_000].user.clone(); // 6,999 uusdc against 1,000 uatom
        dn.set_price(ATOM, "7.5");
        let liquidator = dn.liquidator(vec![coin(1_000, USDC)]);
        let res = dn
            .liquidate(&liquidator, &riskiest, ATOM, &[coin(1_000, USDC)])
            .unwrap();
        assert_eq!(liquidate_attr(&res, "debt_amount"), "1000");
        // And a seeded borrower can repay out of the wallet the loan landed in.
        dn.execute(
            &first,
            &mars::msg::red_bank::ExecuteMsg::Repay { on_behalf_of: None },
            &[coin(4_000, USDC)],
        )
        .unwrap();
        assert_eq!(
            dn.position(&first).health_status,
            UserHealthStatus::NotBorrowing
        );
    }

    #[test]
    fn seeding_refuses_unknown_markets_and_overdrawn_liquidity() {
        let mut dn = Devnet::fixture();
        let user = dn.addr("user");
        let err = seed_positions(
            &mut dn.app,
            &dn.contracts,
            &[SeedPosition {
                user: user.clone(),
                account_id: None,
                collateral: vec![coin(5, "uion")],
                debt: vec![],
            }],
        )
        .unwrap_err();
        assert!(matches!(err, SeedError::UnknownMarket { .. }), "{err}");
        let err = seed_positions(
            &mut dn.app,
            &dn.contracts,
            &[SeedPosition {
                user,
                account_id: None,
                collateral: vec![coin(1_000, ATOM)],
                debt: vec![coin(10, USDC)],
            }],
        )
        .unwrap_err();
        assert!(
            matches!(err, SeedError::DebtExceedsLiquidity { .. }),
            "{err}"
        );
    }
}
