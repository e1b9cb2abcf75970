//! The App's key-value store with one level of scratch space on top.
//!
//! cw-multi-test keeps its own per-`execute_multi` cache, but a chain needs two more: a tx whose
//! messages succeed must still be rolled back when it runs out of gas (while its fee stays paid),
//! and `Simulate` must run a whole tx and then forget it. Both open an overlay, run, then
//! commit or discard it.

use std::collections::BTreeMap;
use std::iter::Peekable;

use cosmwasm_std::{Order, Record, Storage};

#[derive(Default)]
pub struct ChainStorage {
    base: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Pending writes: `Some(value)` is a set, `None` a delete.
    overlay: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl ChainStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts collecting writes aside. Overlays do not nest: the chain opens at most one per tx.
    pub fn begin_overlay(&mut self) {
        debug_assert!(self.overlay.is_none(), "overlays do not nest");
        self.overlay = Some(BTreeMap::new());
    }

    pub fn commit_overlay(&mut self) {
        if let Some(overlay) = self.overlay.take() {
            for (key, value) in overlay {
                match value {
                    Some(value) => {
                        self.base.insert(key, value);
                    }
                    None => {
                        self.base.remove(&key);
                    }
                }
            }
        }
    }

    pub fn discard_overlay(&mut self) {
        self.overlay = None;
    }

    pub fn len(&self) -> usize {
        self.base.len()
    }

    pub fn is_empty(&self) -> bool {
        self.base.is_empty()
    }
}

fn bounds(start: Option<&[u8]>, end: Option<&[u8]>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let start = start.map(<[u8]>::to_vec).unwrap_or_default();
    match end {
        Some(end) if end <= start.as_slice() => None,
        end => Some((start, end.map(<[u8]>::to_vec))),
    }
}

type EntryIter<'a, V> = Box<dyn Iterator<Item = (&'a Vec<u8>, &'a V)> + 'a>;

fn range_of<'a, V>(
    map: &'a BTreeMap<Vec<u8>, V>,
    start: &[u8],
    end: Option<&[u8]>,
    order: Order,
) -> EntryIter<'a, V> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let upper = match end {
        Some(end) => Excluded(end.to_vec()),
        None => Unbounded,
    };
    let iter = map.range((Included(start.to_vec()), upper));
    match order {
        Order::Ascending => Box::new(iter),
        Order::Descending => Box::new(iter.rev()),
    }
}

/// Merges the base range with the overlay range; the overlay wins on equal keys and its
/// deletes hide base entries.
struct Merged<'a> {
    base: Peekable<EntryIter<'a, Vec<u8>>>,
    overlay: Peekable<EntryIter<'a, Option<Vec<u8>>>>,
    order: Order,
}

impl Iterator for Merged<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            let take_base = match (self.base.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((bk, _)), Some((ok, _))) => {
                    if bk == ok {
                        self.base.next();
                        false
                    } else {
                        match self.order {
                            Order::Ascending => bk < ok,
                            Order::Descending => bk > ok,
                        }
                    }
                }
            };
            if take_base {
                let (k, v) = self.base.next()?;
                return Some((k.clone(), v.clone()));
            }
            let (k, v) = self.overlay.next()?;
            if let Some(v) = v {
                return Some((k.clone(), v.clone()));
            }
        }
    }
}

impl Storage for ChainStorage {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(overlay) = &self.overlay {
            if let Some(value) = overlay.get(key) {
                return value.clone();
            }
        }
        self.base.get(key).cloned()
    }

    fn range<'a>(
        &'a self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        order: Order,
    ) -> Box<dyn Iterator<Item = Record> + 'a> {
        let Some((start, end)) = bounds(start, end) else {
            return Box::new(std::iter::empty());
        };
        let base = range_of(&self.base, &start, end.as_deref(), order);
        match &self.overlay {
            None => Box::new(base.map(|(k, v)| (k.clone(), v.clone()))),
            Some(overlay) => Box::new(Merged {
                base: base.peekable(),
                overlay: range_of(overlay, &start, end.as_deref(), order).peekable(),
                order,
            }),
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        match &mut self.overlay {
            Some(overlay) => {
                overlay.insert(key.to_vec(), Some(value.to_vec()));
            }
            None => {
                self.base.insert(key.to_vec(), value.to_vec());
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        match &mut self.overlay {
            Some(overlay) => {
                overlay.insert(key.to_vec(), None);
            }
            None => {
                self.base.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &ChainStorage, order: Order) -> Vec<Vec<u8>> {
        s.range(None, None, order).map(|(k, _)| k).collect()
    }

    #[test]
    fn overlay_shadows_and_rolls_back() {
        let mut s = ChainStorage::new();
        s.set(b"a", b"1");
        s.set(b"c", b"3");
        s.set(b"e", b"5");
        s.begin_overlay();
        s.set(b"b", b"2");
        s.remove(b"c");
        s.set(b"e", b"50");
        assert_eq!(s.get(b"c"), None);
        assert_eq!(s.get(b"e"), Some(b"50".to_vec()));
        assert_eq!(
            keys(&s, Order::Ascending),
            vec![b"a".to_vec(), b"b".to_vec(), b"e".to_vec()]
        );
        assert_eq!(
            keys(&s, Order::Descending),
            vec![b"e".to_vec(), b"b".to_vec(), b"a".to_vec()]
        );
        let bounded: Vec<_> = s
            .range(Some(b"b"), Some(b"e"), Order::Ascending)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(bounded, vec![b"b".to_vec()]);
        s.discard_overlay();
        assert_eq!(s.get(b"c"), Some(b"3".to_vec()));
        assert_eq!(keys(&s, Order::Ascending).len(), 3);

        s.begin_overlay();
        s.remove(b"a");
        s.set(b"z", b"26");
        s.commit_overlay();
        assert_eq!(
            keys(&s, Order::Ascending),
            vec![b"c".to_vec(), b"e".to_vec(), b"z".to_vec()]
        );
    }

    #[test]
    fn empty_and_inverted_ranges() {
        let mut s = ChainStorage::new();
        s.set(b"a", b"1");
        assert_eq!(s.range(Some(b"b"), Some(b"a"), Order::Ascending).count(), 0);
        assert_eq!(
            s.range(Some(b"a"), Some(b"a"), Order::Descending).count(),
            0
        );
    }
}
