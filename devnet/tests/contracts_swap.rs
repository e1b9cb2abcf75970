//! The constant-product swap contract, with numbers worked out by hand.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Addr, Uint128};
    use cw_multi_test::Executor;
    use mars::msg::swapper::{
        ExecuteMsg, InstantiateMsg, PoolResponse, QueryMsg, SimulateSwapResponse,
    };
    use redline_devnet::contracts::{new_app, swapper_contract, DevnetApp};

    struct Pool {
        app: DevnetApp,
        swapper: Addr,
        owner: Addr,
    }

    /// 1,000,000 uatom against 10,000,000 uusdc, fee 0.3%.
    fn pool() -> Pool {
        let mut app = new_app("osmo", block0());
        let owner = app.api().addr_make("owner");
        let code = app.store_code(swapper_contract());
        let swapper = app
            .instantiate_contract(
                code,
                owner.clone(),
                &InstantiateMsg {
                    owner: owner.to_string(),
                },
                &[],
                "swapper",
                None,
            )
            .unwrap();
        app.execute_contract(
            owner.clone(),
            swapper.clone(),
            &ExecuteMsg::CreatePool {
                denoms: [USDC.into(), ATOM.into()],
                fee: dec("0.003"),
            },
            &[],
        )
        .unwrap();
        app.sudo(cw_multi_test::SudoMsg::Bank(
            cw_multi_test::BankSudo::Mint {
                to_address: owner.to_string(),
                amount: vec![coin(1_000_000, ATOM), coin(10_000_000, USDC)],
            },
        ))
        .unwrap();
        app.execute_contract(
            owner.clone(),
            swapper.clone(),
            &ExecuteMsg::ProvideLiquidity {
                denoms: [ATOM.into(), USDC.into()],
            },
            &[coin(1_000_000, ATOM), coin(10_000_000, USDC)],
        )
        .unwrap();
        Pool {
            app,
            swapper,
            owner,
        }
    }

    impl Pool {
        fn simulate(&self, amount: u128, offer: &str, ask: &str) -> SimulateSwapResponse {
            self.app
                .wrap()
                .query_wasm_smart(
                    &self.swapper,
                    &QueryMsg::SimulateSwap {
                        offer: coin(amount, offer),
                        ask_denom: ask.into(),
                    },
                )
                .unwrap()
        }

        fn swap(
            &mut self,
            trader: &Addr,
            funds: &[cosmwasm_std::Coin],
            ask: &str,
            min: u128,
        ) -> Result<(), String> {
            self.app
                .execute_contract(
                    trader.clone(),
                    self.swapper.clone(),
                    &ExecuteMsg::Swap {
                        ask_denom: ask.into(),
                        min_receive: Uint128::new(min),
                    },
                    funds,
                )
                .map(|_| ())
                .map_err(|e| e.to_string())
        }

        fn reserves(&self) -> PoolResponse {
            self.app
                .wrap()
                .query_wasm_smart(
                    &self.swapper,
                    &QueryMsg::Pool {
                        denoms: [ATOM.into(), USDC.into()],
                    },
                )
                .unwrap()
        }

        fn balance(&self, who: &Addr, denom: &str) -> u128 {
            Uint128::try_from(self.app.wrap().query_balance(who, denom).unwrap().amount)
                .unwrap()
                .u128()
        }
    }

    #[test]
    fn constant_product_by_hand() {
        let mut pool = pool();
        let trader = pool.app.api().addr_make("trader");
        pool.app
            .sudo(cw_multi_test::SudoMsg::Bank(
                cw_multi_test::BankSudo::Mint {
                    to_address: trader.to_string(),
                    amount: vec![coin(10_000, ATOM), coin(50_000, USDC)],
                },
            ))
            .unwrap();

        // Sell 10,000 uatom: fee ⌈10,000 · 0.003⌉ = 30, net 9,970,
        // return ⌊10,000,000 · 9,970 / (1,000,000 + 9,970)⌋ = ⌊98,715.80⌋ = 98,715.
        let sim = pool.simulate(10_000, ATOM, USDC);
        assert_eq!(sim.fee_amount, Uint128::new(30));
        assert_eq!(sim.return_amount, Uint128::new(98_715));
        let err = pool
            .swap(&trader, &[coin(10_000, ATOM)], USDC, 98_716)
            .unwrap_err();
        assert!(err.contains("less than min_receive"), "{err}");
        pool.swap(&trader, &[coin(10_000, ATOM)], USDC, 98_715)
            .unwrap();
        assert_eq!(pool.balance(&trader, USDC), 50_000 + 98_715);
        assert_eq!(pool.balance(&trader, ATOM), 0);
        let reserves = pool.reserves();
        assert_eq!(
            reserves.assets,
            [coin(1_010_000, ATOM), coin(9_901_285, USDC)],
            "the fee stays in the pool"
        );
        assert_eq!(pool.balance(&pool.swapper.clone(), ATOM), 1_010_000);

        // Back the other way: 50,000 uusdc, fee 150, net 49,850,
        // return ⌊1,010,000 · 49,850 / (9,901,285 + 49,850)⌋ = ⌊5,059.57⌋ = 5,059.
        let sim = pool.simulate(50_000, USDC, ATOM);
        assert_eq!(sim.fee_amount, Uint128::new(150));
        assert_eq!(sim.return_amount, Uint128::new(5_059));
        pool.swap(&trader, &[coin(50_000, USDC)], ATOM, 0).unwrap();
        assert_eq!(pool.balance(&trader, ATOM), 5_059);
    }

    #[test]
    fn swap_rejections() {
        let mut pool = pool();
        let trader = pool.app.api().addr_make("trader");
        pool.app
            .sudo(cw_multi_test::SudoMsg::Bank(
                cw_multi_test::BankSudo::Mint {
                    to_address: trader.to_string(),
                    amount: vec![coin(10, ATOM), coin(10, USDC), coin(10, OSMO)],
                },
            ))
            .unwrap();
        let err = pool.swap(&trader, &[], USDC, 0).unwrap_err();
        assert!(err.contains("No funds sent"), "{err}");
        let err = pool
            .swap(&trader, &[coin(1, ATOM), coin(1, USDC)], USDC, 0)
            .unwrap_err();
        assert!(err.contains("Sent more than one denomination"), "{err}");
        let err = pool.swap(&trader, &[coin(1, OSMO)], USDC, 0).unwrap_err();
        assert!(err.contains("no pool for uosmo and uusdc"), "{err}");
        // One unit pays a one-unit fee and buys nothing.
        let err = pool.swap(&trader, &[coin(1, ATOM)], USDC, 0).unwrap_err();
        assert!(
            err.contains("pool has no liquidity to pay out uusdc"),
            "{err}"
        );
        // Only the owner opens pools; fees stay below one.
        let err = pool
            .app
            .execute_contract(
                trader.clone(),
                pool.swapper.clone(),
                &ExecuteMsg::CreatePool {
                    denoms: [OSMO.into(), USDC.into()],
                    fee: dec("0.003"),
                },
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("Caller is not owner"), "{err}");
        let owner = pool.owner.clone();
        let err = pool
            .app
            .execute_contract(
                owner,
                pool.swapper.clone(),
                &ExecuteMsg::CreatePool {
                    denoms: [OSMO.into(), USDC.into()],
                    fee: dec("1"),
                },
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("fee must be in [0, 1)"), "{err}");
    }

    #[test]
    fn deployed_pools_are_balanced_at_oracle_prices() {
        let dn = Devnet::fixture();
        let swapper = dn.contracts.swapper.clone().unwrap();
        let pools: Vec<PoolResponse> = dn
            .app
            .wrap()
            .query_wasm_smart(
                &swapper,
                &QueryMsg::Pools {
                    start_after: None,
                    limit: None,
                },
            )
            .unwrap();
        assert_eq!(pools.len(), 3, "one pool per pair of the three assets");
        let atom_usdc = pools
            .iter()
            .find(|p| p.assets[0].denom == ATOM && p.assets[1].denom == USDC)
            .unwrap();
        // 10,000,000,000 of value per side: 1e9 uatom at 10, 1e10 uusdc at 1.
        assert_eq!(
            atom_usdc.assets,
            [coin(1_000_000_000, ATOM), coin(10_000_000_000, USDC)]
        );
    }
}
