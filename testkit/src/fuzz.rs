//! Shared pieces of the proptest fuzz targets: byte and JSON generators and a byte-level
//! mutator that turns a real message into a near miss. Included by each `fuzz_*` test file (and
//! by the end-to-end RPC fuzz test of the `redline-tests` crate, through `#[path]`).

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// `cases` per target with a per-case time limit. A non-zero `timeout` makes proptest run the
/// target in a child process, so a stack overflow or abort fails the test (with its input)
/// rather than killing the test binary.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        timeout: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Any JSON value nested a few levels, objects keyed by random names or by `keys` (the field
/// names of the type under test, so that objects get close to the real shape).
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        // Numbers as Cosmos JSON writes them (strings), including absurd ones.
        "-?[0-9]{1,45}(\\.[0-9]{0,20})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        let key = if keys.is_empty() {
            "[a-z_]{1,16}".boxed()
        } else {
            prop_oneof![
                "[a-z_]{1,16}".boxed(),
                prop::sample::select(keys).prop_map(String::from).boxed(),
            ]
            .boxed()
        };
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip {
        at: usize,
        bits: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        data: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    /// Replaces a run of digits with another number (huge, negative, fractional, exponent).
    Number {
        at: usize,
        with: String,
    },
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            prop_oneof![
                bytes(8),
                prop::sample::select(vec![
                    b"\"".to_vec(),
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"[".to_vec(),
                    b",".to_vec(),
                    b"null".to_vec(),
                    b"\\u0000".to_vec(),
                    b"\xff\xfe".to_vec(),
                ]),
            ]
        )
            .prop_map(|(at, data)| Mutation::Insert { at, data }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "-1",
                "0",
                "18446744073709551616",
                "340282366920938463463374607431768211456",
                "1e400",
                "0.5",
                "-0",
                "1E2",
                "\"7\"",
                "99999999999999999999999999999999999999999999999999",
            ])
        )
            .prop_map(|(at, with)| Mutation::Number {
                at,
                with: with.to_string()
            }),
    ]
}

pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..max)
}

pub fn apply(data: &mut Vec<u8>, mutation: &Mutation) {
    let len = data.len().max(1);
    match mutation {
        Mutation::Flip { at, bits } => {
            if let Some(byte) = data.get_mut(at % len) {
                *byte ^= bits;
            }
        }
        Mutation::Truncate { at } => data.truncate(at % len),
        Mutation::Insert { at, data: insert } => {
            let at = (at % len).min(data.len());
            data.splice(at..at, insert.iter().copied());
        }
        Mutation::Delete { at, len: n } => {
            let at = (at % len).min(data.len());
            let end = (at + n).min(data.len());
            data.drain(at..end);
        }
        Mutation::Duplicate { at, len: n } => {
            let at = (at % len).min(data.len());
            let end = (at + n).min(data.len());
            let copy = data[at..end].to_vec();
            data.splice(end..end, copy);
        }
        Mutation::Number { at, with } => {
            let starts: Vec<usize> = (0..data.len())
                .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
                .collect();
            if starts.is_empty() {
                return;
            }
            let start = starts[at % starts.len()];
            let end = data[start..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(data.len(), |p| start + p);
            data.splice(start..end, with.bytes());
        }
    }
}

/// `original` with every mutation applied in order.
pub fn mutated(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut data = original.to_vec();
    for m in mutations {
        apply(&mut data, m);
    }
    data
}
