//! Rover on the devnet: deployment, credit account actions with Mars's bookkeeping (coin
//! balances, debt shares, lends in the Red Bank), the health contract's values and the
//! checks that refuse an action.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::rover::*;
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Addr, Decimal, Uint128};
    use cw_multi_test::Executor;
    use mars::msg::account_nft::{self, MinterResponse};
    use mars::msg::address_provider;
    use mars::msg::credit_manager::{
        Action, ActionCoin, CallbackMsg, ConfigResponse, ExecuteMsg, QueryMsg, SharesResponseItem,
    };
    use mars::msg::health::{AccountKind, HealthState};
    use mars::msg::oracle::ActionKind;

    #[test]
    fn deploy_connects_rover_and_opens_the_rewards_collector_account() {
        let dn = Devnet::rover();
        let rover = dn.rover_contracts();
        let manifest = dn.contracts.manifest_contracts();
        assert_eq!(
            manifest.credit_manager,
            Some(rover.credit_manager.to_string())
        );
        let registered: address_provider::AddressResponseItem = dn
            .query_on(
                &dn.contracts.address_provider,
                &address_provider::QueryMsg::Address(
                    address_provider::MarsAddressType::CreditManager,
                ),
            )
            .unwrap();
        assert_eq!(registered.address, rover.credit_manager.to_string());
        let minter: MinterResponse = dn
            .query_on(&rover.account_nft, &account_nft::QueryMsg::Minter {})
            .unwrap();
        assert_eq!(minter.minter, Some(rover.credit_manager.to_string()));
        // The rewards collector got the first account.
        let config: ConfigResponse = dn
            .query_on(&rover.credit_manager, &QueryMsg::Config {})
            .unwrap();
        let rewards = config.rewards_collector.unwrap();
        assert_eq!(rewards.account_id, "1");
        assert_eq!(rewards.address, dn.contracts.rewards_collector.to_string());
        assert_eq!(dn.account_tokens(&dn.contracts.rewards_collector), ["1"]);
        assert_eq!(config.health_contract, rover.health.to_string());
    }

    /// Deposit 10,000 uatom, borrow 20,000 uusdc and lend 5,000 of it; then the health
    /// contract's figures at prices 10 and 1 (LTV / LT: uatom 0.7 / 0.8, uusdc 0.75 / 0.8):
    /// collateral 100,000 + 15,000 + 5,000 = 120,000;
    /// max-LTV-weighted 70,000 + 11,250 + 3,750 = 85,000; LT-weighted 80,000 + 12,000 + 4,000
    /// = 96,000; debt 20,000.
    /// A user's account of `kind` holding 10,000 uatom, with 200,000 uusdc to borrow.
    fn funded_account(dn: &mut Devnet, kind: AccountKind) -> (Addr, String) {
        dn.usdc_liquidity(200_000);
        let user = dn.addr("user");
        let id = dn.open_account(&user, kind);
        dn.fund_account(&user, &id, 10_000, ATOM);
        (user, id)
    }

    /// `positions` takes an `action` on core-contracts (its health contract asks with one) and
    /// refuses the field on the v2.1 line, whose message has none: the parse error Mars's
    /// contract gives.
    #[test]
    fn positions_take_an_action_on_core_contracts_only() {
        for (config, core) in [(fixture_config(), false), (neutron_config(), true)] {
            let mut dn = Devnet::rover_with(config);
            let (_, id) = funded_account(&mut dn, AccountKind::Default);
            let asked = dn.query_on::<mars::msg::credit_manager::Positions>(
                &dn.credit_manager(),
                &QueryMsg::Positions {
                    account_id: id.clone(),
                    action: Some(ActionKind::Liquidation),
                },
            );
            if core {
                assert_eq!(asked.unwrap(), dn.positions(&id));
            } else {
                assert!(
                    asked.as_ref().is_err_and(|e| e.contains(
                        "Error parsing into type mars_types::credit_manager::QueryMsg: unknown field `action`"
                    )),
                    "{asked:?}"
                );
            }
        }
    }

    #[test]
    fn account_deposits_borrows_lends_and_is_valued_by_the_health_contract() {
        let mut dn = Devnet::rover();
        let (user, id) = funded_account(&mut dn, AccountKind::Default);
        assert_eq!(id, "2");
        assert_eq!(dn.account_tokens(&user), vec![id.clone()]);
        dn.update_account(
            &user,
            &id,
            vec![
                Action::Borrow(coin(20_000, USDC)),
                Action::Lend(exact(USDC, 5_000)),
            ],
            &[],
        )
        .unwrap();

        let positions = dn.positions(&id);
        assert_eq!(deposit_of(&positions, ATOM), 10_000);
        assert_eq!(deposit_of(&positions, USDC), 15_000);
        assert_eq!(lend_of(&positions, USDC), 5_000);
        assert_eq!(debt_of(&positions, USDC), 20_000);
        // First borrow of a denom: 1,000,000 shares per coin.
        assert_eq!(positions.debts[0].shares, Uint128::new(20_000_000_000));

        // The Red Bank: the credit manager owes in its own name, the lend sits under
        // {"addr": credit manager, "acc_id": "2"}.
        let cm = dn.credit_manager();
        let debt = dn.credit_manager_debt(USDC);
        assert_eq!(debt.amount, Uint128::new(20_000));
        assert!(debt.uncollateralized);
        let lent = dn.credit_account_lend(&id, USDC);
        assert_eq!(lent.amount, Uint128::new(5_000));
        assert_eq!(dn.balance(&cm, ATOM), 10_000);
        assert_eq!(dn.balance(&cm, USDC), 15_000);

        let values = dn.health_values(&id, ActionKind::Default);
        assert_eq!(values.health.total_collateral_value, Uint128::new(120_000));
        assert_eq!(
            values.health.max_ltv_adjusted_collateral,
            Uint128::new(85_000)
        );
        assert_eq!(
            values.health.liquidation_threshold_adjusted_collateral,
            Uint128::new(96_000)
        );
        assert_eq!(values.health.total_debt_value, Uint128::new(20_000));
        assert_eq!(
            values.health.liquidation_health_factor,
            Some(Decimal::from_ratio(96_000u128, 20_000u128))
        );
        assert!(!values.liquidatable);

        let shares: Vec<SharesResponseItem> = dn
            .query_on(
                &cm,
                &QueryMsg::AllDebtShares {
                    start_after: None,
                    limit: None,
                },
            )
            .unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].account_id, id);
    }

    #[test]
    fn account_reclaims_repays_and_refunds_everything_to_its_owner() {
        let mut dn = Devnet::rover();
        let (user, id) = funded_account(&mut dn, AccountKind::Default);
        dn.update_account(
            &user,
            &id,
            vec![
                Action::Borrow(coin(20_000, USDC)),
                Action::Lend(ActionCoin::account_balance(USDC)),
            ],
            &[],
        )
        .unwrap();
        dn.update_account(
            &user,
            &id,
            vec![
                Action::Reclaim(ActionCoin::account_balance(USDC)),
                Action::Repay {
                    recipient_account_id: None,
                    coin: ActionCoin::account_balance(USDC),
                },
                Action::RefundAllCoinBalances {},
            ],
            &[],
        )
        .unwrap();
        let positions = dn.positions(&id);
        assert!(positions.deposits.is_empty(), "{positions:?}");
        assert!(positions.debts.is_empty());
        assert!(positions.lends.is_empty());
        assert_eq!(dn.balance(&user, ATOM), 10_000);
        assert!(dn.credit_manager_debt(USDC).amount.is_zero());
    }

    /// 2,000 uatom (20,000 at price 10) sold through the 0.3 % pool for uusdc; the account is
    /// credited with exactly what the credit manager's balance grew by.
    #[test]
    fn swap_books_what_the_pool_returned() {
        let mut dn = Devnet::rover();
        let user = dn.addr("user");
        let id = dn.open_account(&user, AccountKind::Default);
        dn.fund_account(&user, &id, 2_000, ATOM);
        let cm = dn.credit_manager();
        let usdc_before = dn.balance(&cm, USDC);
        dn.update_account(
            &user,
            &id,
            vec![Action::SwapExactIn {
                coin_in: ActionCoin::account_balance(ATOM),
                denom_out: USDC.into(),
                min_receive: Uint128::new(1),
                route: None,
            }],
            &[],
        )
        .unwrap();
        let positions = dn.positions(&id);
        assert_eq!(deposit_of(&positions, ATOM), 0);
        let received = dn.balance(&cm, USDC) - usdc_before;
        assert!(received > 19_000 && received < 20_000, "{received}");
        assert_eq!(deposit_of(&positions, USDC), received);
    }

    /// Borrowed coins stay in the account (and count as collateral) until withdrawn. With them
    /// withdrawn, 10,000 uatom (100,000 at price 10, max LTV 0.7) allow 70,000 of debt:
    /// 80,000 leaves the max-LTV health factor at 70,000 / 80,000 = 0.875.
    #[test]
    fn borrowing_past_max_ltv_is_refused() {
        let mut dn = Devnet::rover();
        let (user, id) = funded_account(&mut dn, AccountKind::Default);
        assert_err(
            dn.update_account(&user, &id, borrow_and_withdraw(80_000), &[]),
            "Actions resulted in exceeding maximum allowed loan-to-value. Max LTV health factor: \"0.875\"",
        );
        dn.update_account(&user, &id, borrow_and_withdraw(70_000), &[])
            .unwrap();
        assert_eq!(dn.balance(&user, USDC), 70_000);
    }

    fn borrow_and_withdraw(amount: u128) -> Vec<Action> {
        vec![
            Action::Borrow(coin(amount, USDC)),
            Action::Withdraw(exact(USDC, amount)),
        ]
    }

    #[test]
    fn only_the_owner_acts_and_funds_must_match_the_deposits() {
        let mut dn = Devnet::rover();
        let user = dn.addr("user");
        let stranger = dn.addr("stranger");
        let id = dn.open_account(&user, AccountKind::Default);
        assert_err(
            dn.update_account(&stranger, &id, vec![], &[]),
            &format!("\"{stranger}\" is not the owner of \"{id}\""),
        );
        dn.mint(&user, vec![coin(1_000, ATOM), coin(5, OSMO)]);
        assert_err(
            dn.update_account(
                &user,
                &id,
                vec![Action::Deposit(coin(900, ATOM))],
                &[coin(1_000, ATOM)],
            ),
            "Sent fund mismatch. Expected: Uint128(900), received Uint128(1000)",
        );
        assert_err(
            dn.update_account(
                &user,
                &id,
                vec![Action::Deposit(coin(1_000, ATOM))],
                &[coin(1_000, ATOM), coin(5, OSMO)],
            ),
            "Extra funds received: 5uosmo",
        );
        assert_err(
            dn.update_account(&user, &id, vec![Action::Borrow(coin(0, USDC))], &[]),
            "No coin amount set for action",
        );
        assert_err(
            dn.update_account(
                &user,
                &id,
                vec![Action::Reclaim(ActionCoin::account_balance(ATOM))],
                &[],
            ),
            "Nothing lent to reclaim",
        );
        assert_err(
            dn.update_account(
                &user,
                &id,
                vec![Action::Repay {
                    recipient_account_id: None,
                    coin: ActionCoin::account_balance(USDC),
                }],
                &[],
            ),
            "No debt to repay",
        );
    }

    #[test]
    fn callbacks_cannot_be_sent_from_outside() {
        let mut dn = Devnet::rover();
        let user = dn.addr("user");
        let cm = dn.credit_manager();
        let callback = ExecuteMsg::Callback(CallbackMsg::AssertMaxLtv {
            account_id: "1".into(),
            prev_health_state: HealthState::Healthy,
        });
        let err = dn
            .app
            .execute_contract(user, cm, &callback, &[])
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("Callbacks cannot be invoked externally"),
            "{err:#}"
        );
    }

    /// An HLS account may owe only one denom.
    #[test]
    fn hls_account_rules_are_enforced() {
        let mut dn = Devnet::rover();
        let lender = dn.addr("osmo lender");
        dn.deposit(&lender, 200_000, OSMO);
        let (user, id) = funded_account(&mut dn, AccountKind::HighLeveredStrategy);
        assert_err(
            dn.update_account(
                &user,
                &id,
                vec![
                    Action::Borrow(coin(1_000, USDC)),
                    Action::Borrow(coin(1_000, OSMO)),
                ],
                &[],
            ),
            "\"Account has more than one debt denom\"",
        );
        assert_err(
            dn.update_account(&user, &id, vec![Action::Borrow(coin(1_000, USDC))], &[]),
            "\"uusdc does not have HLS parameters\"",
        );
    }
}
