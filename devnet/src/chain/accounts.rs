//! x/auth as the devnet keeps it: account numbers, sequences and public keys.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub number: u64,
    pub sequence: u64,
    /// Compressed secp256k1 key, known once the account signed a tx.
    pub pubkey: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub struct Accounts {
    by_address: HashMap<String, Account>,
    next_number: u64,
}

impl Accounts {
    pub fn get(&self, address: &str) -> Option<&Account> {
        self.by_address.get(address)
    }

    pub fn get_mut(&mut self, address: &str) -> Option<&mut Account> {
        self.by_address.get_mut(address)
    }

    /// Creates the account on first sight, as x/bank does when an address first receives coins.
    pub fn ensure(&mut self, address: &str) -> &mut Account {
        if !self.by_address.contains_key(address) {
            let number = self.next_number;
            self.next_number += 1;
            self.by_address.insert(
                address.to_string(),
                Account {
                    number,
                    sequence: 0,
                    pubkey: None,
                },
            );
        }
        self.by_address
            .get_mut(address)
            .expect("the account was inserted above")
    }

    /// Forgets an account a simulation opened.
    pub fn remove(&mut self, address: &str) {
        self.by_address.remove(address);
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_assigned_once_in_order() {
        let mut accounts = Accounts::default();
        assert_eq!(accounts.ensure("a").number, 0);
        assert_eq!(accounts.ensure("b").number, 1);
        accounts.ensure("a").sequence = 5;
        assert_eq!(accounts.ensure("a").number, 0);
        assert_eq!(accounts.get("a").unwrap().sequence, 5);
        assert_eq!(accounts.len(), 2);
    }
}
