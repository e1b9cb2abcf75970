//! The constant-product swap contract, with numbers worked out by hand.

mod contracts_support;

/// Named so `cargo test -p redline-devnet contracts` selects these tests.
mod contracts {
    use crate::contracts_support::*;
    use cosmwasm_std::{coin, Addr, Coin, Uint128};
    use cw_multi_test::{BankSudo, Executor, SudoMsg};
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
        let mut pool = Pool {
            app,
            swapper,
            owner: owner.clone(),
        };
        pool.create_pool(&owner, [USDC, ATOM], "0.003").unwrap();
        let reserves = vec![coin(1_000_000, ATOM), coin(10_000_000, USDC)];
        pool.mint(&owner, reserves.clone());
        pool.execute(
            &owner,
            &ExecuteMsg::ProvideLiquidity {
                denoms: [ATOM.into(), USDC.into()],
            },
            &reserves,
        )
        .unwrap();
        pool
    }

    impl Pool {
        fn mint(&mut self, to: &Addr, amount: Vec<Coin>) {
            self.app
                .sudo(SudoMsg::Bank(BankSudo::Mint {
                    to_address: to.to_string(),
                    amount,
                }))
                .unwrap();
        }

        /// A trader holding `coins`.
        fn trader(&mut self, coins: Vec<Coin>) -> Addr {
            let trader = self.app.api().addr_make("trader");
            self.mint(&trader, coins);
            trader
        }

        fn execute(
            &mut self,
            sender: &Addr,
            msg: &ExecuteMsg,
            funds: &[Coin],
        ) -> Result<(), String> {
            self.app
                .execute_contract(sender.clone(), self.swapper.clone(), msg, funds)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }

        fn query<T: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> T {
            self.app
                .wrap()
                .query_wasm_smart(&self.swapper, msg)
                .unwrap()
        }

        fn create_pool(
            &mut self,
            sender: &Addr,
            denoms: [&str; 2],
            fee: &str,
        ) -> Result<(), String> {
            let msg = ExecuteMsg::CreatePool {
                denoms: denoms.map(Into::into),
                fee: dec(fee),
            };
            self.execute(sender, &msg, &[])
        }

        fn simulate(&self, amount: u128, offer: &str, ask: &str) -> SimulateSwapResponse {
            self.query(&QueryMsg::SimulateSwap {
                offer: coin(amount, offer),
                ask_denom: ask.into(),
            })
        }

        fn swap(
            &mut self,
            trader: &Addr,
            funds: &[Coin],
            ask: &str,
            min: u128,
        ) -> Result<(), String> {
            let msg = ExecuteMsg::Swap {
                ask_denom: ask.into(),
                min_receive: Uint128::new(min),
            };
            self.execute(trader, &msg, funds)
        }

        fn reserves(&self) -> PoolResponse {
            self.query(&QueryMsg::Pool {
                denoms: [ATOM.into(), USDC.into()],
            })
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
        let trader = pool.trader(vec![coin(10_000, ATOM), coin(50_000, USDC)]);

        // Sell 10,000 uatom: fee ⌈10,000 · 0.003⌉ = 30, net 9,970,
        // return ⌊10,000,000 · 9,970 / (1,000,000 + 9,970)⌋ = ⌊98,715.80⌋ = 98,715.
        let sim = pool.simulate(10_000, ATOM, USDC);
        assert_eq!(sim.fee_amount, Uint128::new(30));
        assert_eq!(sim.return_amount, Uint128::new(98_715));
        assert_err(
            pool.swap(&trader, &[coin(10_000, ATOM)], USDC, 98_716),
            "less than min_receive",
        );
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
        let trader = pool.trader(vec![coin(10, ATOM), coin(10, USDC), coin(10, OSMO)]);
        assert_err(pool.swap(&trader, &[], USDC, 0), "No funds sent");
        assert_err(
            pool.swap(&trader, &[coin(1, ATOM), coin(1, USDC)], USDC, 0),
            "Sent more than one denomination",
        );
        assert_err(
            pool.swap(&trader, &[coin(1, OSMO)], USDC, 0),
            "no pool for uosmo and uusdc",
        );
        // One unit pays a one-unit fee and buys nothing.
        assert_err(
            pool.swap(&trader, &[coin(1, ATOM)], USDC, 0),
            "pool has no liquidity to pay out uusdc",
        );
        // Only the owner opens pools; fees stay below one.
        assert_err(
            pool.create_pool(&trader, [OSMO, USDC], "0.003"),
            "Caller is not owner",
        );
        let owner = pool.owner.clone();
        assert_err(
            pool.create_pool(&owner, [OSMO, USDC], "1"),
            "fee must be in [0, 1)",
        );
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
