//! The Red Bank's peers, read from the address provider on every call as Mars does.

use std::collections::HashMap;

use cosmwasm_std::{Addr, Deps};
use mars::msg::address_provider::MarsAddressType;

use super::{RedBankError, RedBankResult, CONFIG};
use crate::contracts::address_provider::query_address_map;

pub struct Peers {
    addresses: HashMap<MarsAddressType, Addr>,
}

impl Peers {
    pub fn load(deps: Deps) -> RedBankResult<Self> {
        let config = CONFIG.load(deps.storage)?;
        Ok(Peers {
            addresses: query_address_map(deps, &config.address_provider)?,
        })
    }

    fn required(&self, address_type: MarsAddressType) -> RedBankResult<&Addr> {
        self.addresses
            .get(&address_type)
            .ok_or(RedBankError::AddressNotSet(address_type))
    }

    pub fn oracle(&self) -> RedBankResult<&Addr> {
        self.required(MarsAddressType::Oracle)
    }

    pub fn params(&self) -> RedBankResult<&Addr> {
        self.required(MarsAddressType::Params)
    }

    pub fn rewards_collector(&self) -> RedBankResult<&Addr> {
        self.required(MarsAddressType::RewardsCollector)
    }

    /// Rover's credit manager, absent on a chain without Rover.
    pub fn credit_manager(&self) -> Option<&Addr> {
        self.addresses.get(&MarsAddressType::CreditManager)
    }

    pub fn is_credit_manager(&self, addr: &Addr) -> bool {
        self.credit_manager() == Some(addr)
    }
}
