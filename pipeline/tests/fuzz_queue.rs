//! Fuzzing queue message decoding (proptest, bounded so it runs in `make test`): arbitrary
//! stream fields, arbitrary envelope JSON and mutated real jobs go through the envelope decoder
//! into the `jobs` types, and through a real Redis stream into a consumer. Every input must end
//! as a job or an error (a dead letter), never a panic or a hang.
//!
//! The pure targets run forked (proptest's `timeout` needs it), so a stack overflow or an abort
//! fails the test with its input instead of killing the test binary.

use std::time::Duration;

use cosmwasm_std::{Decimal, Uint128};
use mars::types::Health;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use redline_pipeline::jobs::{
    AccountKey, HealthCheckJob, LiquidationCandidate, LiquidationPlan, ProtocolKind,
};
use redline_pipeline::queue::{DecodeError, Envelope, Job, Queue, QueueConfig, RedisStreamQueue};
use testkit::RedisServer;

const JOB_FIELD: &[u8] = b"job";

use testkit::fuzz::{apply, bytes, config, json_value, mutation, Mutation};

/// Field names of the job types, so generated objects get close to real payloads.
const JOB_KEYS: &[&str] = &[
    "chain_id",
    "protocol",
    "height",
    "bucket_start",
    "bucket_end",
    "accounts",
    "account",
    "found_at_ms",
    "health",
    "plan",
    "debt_denom",
    "debt_to_repay",
    "expected_profit_usd",
];

fn protocol() -> impl Strategy<Value = ProtocolKind> {
    prop_oneof![Just(ProtocolKind::RedBank), Just(ProtocolKind::Rover)]
}

fn health_check_job() -> impl Strategy<Value = HealthCheckJob> {
    (
        ".{0,16}",
        protocol(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            |(chain_id, protocol, height, bucket_start, bucket_end, accounts)| HealthCheckJob {
                chain_id,
                protocol,
                height,
                bucket_start,
                bucket_end,
                accounts,
            },
        )
}

fn decimal() -> impl Strategy<Value = Decimal> {
    any::<u128>().prop_map(|v| Decimal::new(Uint128::new(v)))
}

fn uint() -> impl Strategy<Value = Uint128> {
    any::<u128>().prop_map(Uint128::new)
}

fn liquidation_candidate() -> impl Strategy<Value = LiquidationCandidate> {
    let health = (
        (uint(), uint(), uint(), uint()),
        prop::option::of(decimal()),
        prop::option::of(decimal()),
    )
        .prop_map(|((debt, coll, ltv, liq), max_ltv_hf, liq_hf)| Health {
            total_debt_value: debt,
            total_collateral_value: coll,
            max_ltv_adjusted_collateral: ltv,
            liquidation_threshold_adjusted_collateral: liq,
            max_ltv_health_factor: max_ltv_hf,
            liquidation_health_factor: liq_hf,
        });
    let plan = ("[a-z/]{1,12}", "[a-z/]{1,12}", uint(), uint(), decimal()).prop_map(
        |(debt_denom, collateral_denom, debt_to_repay, collateral_received, profit)| {
            LiquidationPlan {
                debt_denom,
                collateral_denom,
                debt_to_repay,
                collateral_received,
                expected_profit_usd: profit,
                from_lend: false,
            }
        },
    );
    (
        ".{0,16}",
        protocol(),
        prop_oneof![
            "[a-z0-9]{0,60}".prop_map(AccountKey::Address),
            any::<u64>().prop_map(AccountKey::CreditAccount),
        ],
        any::<u64>(),
        any::<u64>(),
        health,
        prop::option::of(plan),
    )
        .prop_map(
            |(chain_id, protocol, account, height, found_at_ms, health, plan)| {
                LiquidationCandidate {
                    chain_id,
                    protocol,
                    account,
                    height,
                    found_at_ms,
                    health,
                    plan,
                    armed: false,
                }
            },
        )
}

/// The bytes a producer writes into [`JOB_FIELD`] for `job`.
fn envelope_json<J: Job>(job: &J, enqueued_at_ms: u64) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        kind: J::KIND.to_string(),
        version: J::VERSION,
        enqueued_at_ms,
        payload: job,
    })
    .unwrap()
}

/// Decodes `fields` as both job types: each must be a value or an error with a reason.
fn decode_both(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<(), TestCaseError> {
    fn one<J: Job + std::fmt::Debug>(
        fields: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Option<Envelope<J>>, TestCaseError> {
        match Envelope::<J>::from_fields(fields) {
            Ok(envelope) => {
                prop_assert_eq!(&envelope.kind, J::KIND);
                prop_assert!(envelope.version <= J::VERSION);
                Ok(Some(envelope))
            }
            Err(error) => {
                prop_assert!(!error.to_string().is_empty());
                Ok(None)
            }
        }
    }
    let health = one::<HealthCheckJob>(fields)?;
    let candidate = one::<LiquidationCandidate>(fields)?;
    // Kinds differ, so no message is both.
    prop_assert!(health.is_none() || candidate.is_none());
    Ok(())
}

/// Writes `job` as a producer would at `at`, applies `mutations` to the bytes and decodes them
/// as both job types ([`decode_both`]). When the mutations left the bytes as they were, returns
/// the envelope decoded as `J`.
fn decode_mutated<J: Job>(
    job: &J,
    at: u64,
    mutations: &[Mutation],
) -> Result<Option<Envelope<J>>, TestCaseError> {
    let original = envelope_json(job, at);
    let mut raw = original.clone();
    for m in mutations {
        apply(&mut raw, m);
    }
    let fields = vec![(JOB_FIELD.to_vec(), raw.clone())];
    decode_both(&fields)?;
    Ok((raw == original).then(|| Envelope::<J>::from_fields(&fields).unwrap()))
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Any field map at all, `job` field or not.
    #[test]
    fn arbitrary_fields_decode_or_fail(
        fields in prop::collection::vec(
            (prop_oneof![Just(JOB_FIELD.to_vec()), bytes(6)], bytes(64)),
            0..5,
        )
    ) {
        decode_both(&fields)?;
        if !fields.iter().any(|(name, _)| name == JOB_FIELD) {
            let error = Envelope::<HealthCheckJob>::from_fields(&fields).unwrap_err();
            prop_assert!(matches!(error, DecodeError::MissingJobField { .. }), "{}", error);
        }
    }

    /// Envelope-shaped JSON with arbitrary kinds, versions, times and payloads.
    #[test]
    fn arbitrary_envelopes_decode_or_fail(
        kind in prop_oneof![
            Just(serde_json::json!(HealthCheckJob::KIND)),
            Just(serde_json::json!(LiquidationCandidate::KIND)),
            json_value(JOB_KEYS),
        ],
        version in prop_oneof![any::<u32>().prop_map(serde_json::Value::from), json_value(JOB_KEYS)],
        enqueued_at_ms in prop_oneof![any::<u64>().prop_map(serde_json::Value::from), json_value(JOB_KEYS)],
        payload in json_value(JOB_KEYS),
        drop_field in prop::option::of(0usize..4),
    ) {
        let mut envelope = serde_json::json!({
            "kind": kind,
            "version": version,
            "enqueued_at_ms": enqueued_at_ms,
            "payload": payload,
        });
        if let Some(i) = drop_field {
            let name = ["kind", "version", "enqueued_at_ms", "payload"][i];
            envelope.as_object_mut().unwrap().remove(name);
        }
        let fields = vec![(JOB_FIELD.to_vec(), serde_json::to_vec(&envelope).unwrap())];
        decode_both(&fields)?;
        let well_formed = envelope
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|v| v <= u64::from(u32::MAX))
            && envelope.get("enqueued_at_ms").is_some_and(serde_json::Value::is_u64)
            && envelope.get("payload").is_some();
        let kind = envelope.get("kind").and_then(serde_json::Value::as_str);
        if well_formed && kind.is_some_and(|k| k != HealthCheckJob::KIND) {
            let error = Envelope::<HealthCheckJob>::from_fields(&fields).unwrap_err();
            prop_assert!(matches!(error, DecodeError::WrongKind { .. }), "{}", error);
        }
    }

    /// Real health-check jobs, mutated a few bytes at a time.
    #[test]
    fn mutated_health_check_jobs_decode_or_fail(
        job in health_check_job(),
        at in any::<u64>(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        if let Some(decoded) = decode_mutated(&job, at, &mutations)? {
            prop_assert_eq!(decoded.payload, job);
            prop_assert_eq!(decoded.enqueued_at_ms, at);
        }
    }

    /// Real liquidation candidates (amounts up to u128::MAX), mutated.
    #[test]
    fn mutated_liquidation_candidates_decode_or_fail(
        job in liquidation_candidate(),
        at in any::<u64>(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        if let Some(decoded) = decode_mutated(&job, at, &mutations)? {
            prop_assert_eq!(decoded.payload, job);
        }
    }

    /// A payload that is valid JSON but the wrong shape for the kind it claims.
    #[test]
    fn payloads_of_the_wrong_shape_are_bad_payloads(payload in json_value(JOB_KEYS)) {
        for kind in [HealthCheckJob::KIND, LiquidationCandidate::KIND] {
            let raw = serde_json::to_vec(&serde_json::json!({
                "kind": kind, "version": 1, "enqueued_at_ms": 0, "payload": payload,
            }))
            .unwrap();
            let fields = vec![(JOB_FIELD.to_vec(), raw)];
            decode_both(&fields)?;
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [127, 128, 129, 1_000, 100_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let payload = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let raw = format!(
                r#"{{"kind":"health-check","version":1,"enqueued_at_ms":0,"payload":{payload}}}"#
            );
            let fields = vec![(JOB_FIELD.to_vec(), raw.into_bytes())];
            assert!(Envelope::<HealthCheckJob>::from_fields(&fields).is_err());
        }
    }
}

/// Writes `fields` as one stream entry, as any producer (or a stray `XADD`) could.
async fn xadd(redis: &mut redis::aio::MultiplexedConnection, stream: &str, fields: &[Fields]) {
    for entry in fields {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*");
        for (name, value) in entry {
            cmd.arg(name.as_slice()).arg(value.as_slice());
        }
        let _: String = cmd.query_async(redis).await.unwrap();
    }
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream entry: a valid job (`true`) or arbitrary fields (`false`).
fn stream_entry() -> impl Strategy<Value = (bool, Fields)> {
    prop_oneof![
        (health_check_job(), any::<u64>())
            .prop_map(|(job, at)| (true, vec![(JOB_FIELD.to_vec(), envelope_json(&job, at))])),
        prop::collection::vec(
            (prop_oneof![Just(JOB_FIELD.to_vec()), bytes(6)], bytes(48)),
            1..4
        )
        .prop_map(|fields| (false, fields)),
        (health_check_job(), prop::collection::vec(mutation(), 1..3)).prop_map(
            |(job, mutations)| {
                let mut raw = envelope_json(&job, 1);
                for m in &mutations {
                    apply(&mut raw, m);
                }
                (false, vec![(JOB_FIELD.to_vec(), raw)])
            }
        ),
    ]
}

/// The consumer's whole path, against a real Redis: garbage in the stream is dead-lettered with
/// its exact bytes, valid jobs around it are delivered, and fetch never fails or panics.
///
/// In-process (not forked: the Redis server belongs to this test); the time limit is a tokio
/// timeout around each case instead of proptest's.
#[test]
fn a_real_consumer_dead_letters_garbage_and_delivers_the_rest() {
    let server = RedisServer::start().expect("redis-server starts");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = runtime.block_on(async {
        redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop::collection::vec(stream_entry(), 1..8);
    runner
        .run(&strategy, |entries| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let url = server.url();
            let mut redis = redis.clone();
            runtime.block_on(async move {
                tokio::time::timeout(Duration::from_secs(10), async {
                    let config = QueueConfig {
                        queue_consumer: Some("fuzz".into()),
                        queue_block_ms: 10,
                        ..QueueConfig::with_url(url)
                    };
                    let queue: RedisStreamQueue<HealthCheckJob> =
                        RedisStreamQueue::connect(&config, &format!("fuzz-{n}"))
                            .await
                            .unwrap();
                    let all: Vec<Fields> = entries.iter().map(|(_, f)| f.clone()).collect();
                    xadd(&mut redis, queue.stream(), &all).await;

                    // Which entries are valid is the decoder's call: a mutation can leave a
                    // job intact, or an arbitrary map can happen to be a job.
                    let valid: Vec<bool> = all
                        .iter()
                        .map(|f| Envelope::<HealthCheckJob>::from_fields(f).is_ok())
                        .collect();
                    for ((generated_valid, _), decoded_valid) in entries.iter().zip(&valid) {
                        if *generated_valid {
                            prop_assert!(*decoded_valid);
                        }
                    }
                    let expected_valid = valid.iter().filter(|v| **v).count();
                    let mut delivered = 0;
                    for _ in 0..50 {
                        let batch = queue.fetch(16, Duration::from_millis(10)).await.unwrap();
                        if batch.is_empty() && queue.lag().await.unwrap() == 0 {
                            break;
                        }
                        delivered += batch.len();
                        queue.ack_many(&batch).await.unwrap();
                    }
                    prop_assert_eq!(delivered, expected_valid);
                    let dead = queue.dead_letters(100).await.unwrap();
                    let garbage: Vec<&Fields> = all
                        .iter()
                        .zip(&valid)
                        .filter(|(_, v)| !**v)
                        .map(|(f, _)| f)
                        .collect();
                    prop_assert_eq!(dead.len(), garbage.len());
                    for (letter, fields) in dead.iter().zip(garbage) {
                        prop_assert!(!letter.reason.is_empty());
                        // Field names come back as text; values byte for byte.
                        let original: Vec<(String, Vec<u8>)> = fields
                            .iter()
                            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.clone()))
                            .collect();
                        prop_assert_eq!(&letter.original_fields, &original);
                    }
                    prop_assert_eq!(queue.counters().malformed, dead.len() as u64);
                    Ok(())
                })
                .await
                .map_err(|_| TestCaseError::fail("case took over 10 s"))?
            })
        })
        .unwrap();
}
