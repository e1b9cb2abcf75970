//! Credit accounts written straight into storage read, and act, like accounts opened through
//! the credit manager.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::rover::*;
    use crate::contracts_support::*;
    use cosmwasm_std::coin;
    use mars::msg::credit_manager::Action;
    use mars::msg::health::AccountKind;
    use mars::msg::oracle::ActionKind;
    use redline_devnet::contracts::{seed_credit_accounts, CreditAccountSeed, SeedError};

    fn account(owner: &str, dn: &Devnet) -> CreditAccountSeed {
        CreditAccountSeed {
            owner: dn.addr(owner),
            kind: AccountKind::Default,
            deposits: vec![],
            lends: vec![],
            debts: vec![],
        }
    }

    #[test]
    fn seeded_accounts_read_and_act_like_opened_ones() {
        let mut dn = Devnet::rover();
        dn.usdc_liquidity(1_000_000);
        let borrower = CreditAccountSeed {
            deposits: vec![coin(10_000, ATOM)],
            lends: vec![coin(4_000, OSMO)],
            debts: vec![coin(30_000, USDC)],
            ..account("borrower", &dn)
        };
        let lender = CreditAccountSeed {
            lends: vec![coin(5_000, ATOM)],
            ..account("lender", &dn)
        };
        let contracts = dn.contracts.clone();
        let ids = seed_credit_accounts(&mut dn.app, &contracts, &[borrower, lender]).unwrap();
        assert_eq!(ids, ["2", "3"]);
        let owner = dn.addr("borrower");
        assert_eq!(dn.account_tokens(&owner), ["2"]);

        let positions = dn.positions("2");
        assert_eq!(deposit_of(&positions, ATOM), 10_000);
        assert_eq!(lend_of(&positions, OSMO), 4_000);
        assert_eq!(debt_of(&positions, USDC), 30_000);
        assert_eq!(lend_of(&dn.positions("3"), ATOM), 5_000);
        assert_eq!(dn.credit_account_lend("3", ATOM).amount.u128(), 5_000);
        assert_eq!(dn.credit_manager_debt(USDC).amount.u128(), 30_000);
        // Booked as the credit manager's borrows are: uncollateralized, so that reclaiming a
        // lend is not refused for the credit manager's own (collateral-less) health.
        assert!(dn.credit_manager_debt(USDC).uncollateralized);
        dn.update_account(
            &dn.addr("lender"),
            "3",
            vec![Action::Reclaim(
                mars::msg::credit_manager::ActionCoin::exact(ATOM, 1_000u128.into()),
            )],
            &[],
        )
        .unwrap();
        assert_eq!(lend_of(&dn.positions("3"), ATOM), 4_000);
        assert_eq!(deposit_of(&dn.positions("3"), ATOM), 1_000);
        // 10,000 deposited by the borrower and the 1,000 reclaimed.
        assert_eq!(dn.balance(&dn.credit_manager(), ATOM), 11_000);
        assert_eq!(dn.balance(&owner, USDC), 30_000);
        assert!(!dn.health_values("2", ActionKind::Liquidation).liquidatable);

        // The shares are the credit manager's own: a later borrow adds to them.
        dn.update_account(&owner, "2", vec![Action::Borrow(coin(1_000, USDC))], &[])
            .unwrap();
        assert_eq!(debt_of(&dn.positions("2"), USDC), 31_000);
        assert_eq!(dn.credit_manager_debt(USDC).amount.u128(), 31_000);
    }

    #[test]
    fn seeding_refuses_without_rover_or_over_existing_debt() {
        let mut dn = Devnet::fixture();
        let contracts = dn.contracts.clone();
        let seeds = [account("a", &dn)];
        let err = seed_credit_accounts(&mut dn.app, &contracts, &seeds);
        assert!(matches!(err, Err(SeedError::NoRover)), "{err:?}");

        let mut dn = Devnet::rover();
        dn.usdc_liquidity(1_000_000);
        let contracts = dn.contracts.clone();
        let borrower = CreditAccountSeed {
            deposits: vec![coin(10_000, ATOM)],
            debts: vec![coin(1_000, USDC)],
            ..account("a", &dn)
        };
        let seeds = [borrower];
        seed_credit_accounts(&mut dn.app, &contracts, &seeds).unwrap();
        let err = seed_credit_accounts(&mut dn.app, &contracts, &seeds);
        assert!(
            matches!(&err, Err(SeedError::CreditDebtExists(denom)) if denom == USDC),
            "{err:?}"
        );
    }
}
