//! The environment a worker starts with: the manager's own chain, queue and log settings, as
//! the `env` twins of the flags every service shares, so a worker the manager starts talks to
//! the same chain and Redis as the manager, however the manager itself was configured (flags,
//! environment or both).

use std::io::IsTerminal;

use redline_service::service::ServiceArgs;
use redline_telemetry::LogFormat;

use super::ScalerError;

/// Variables a worker must not inherit from the manager: each worker names its own queue
/// consumer, and serves metrics on its own port. A worker that inherited the manager's ECS
/// task metadata endpoint would name itself after the manager's task.
pub const NOT_INHERITED: &[&str] = &[
    "QUEUE_CONSUMER",
    "METRICS_ADDR",
    redline_pipeline::ecs_task::METADATA_ENV,
];

/// `KEY=VALUE` pairs for a worker, from the manager's parsed shared flags. Unset optional
/// flags are left out (the worker's own default applies). A relative manifest path is made
/// absolute, so a worker started elsewhere still finds it.
pub fn worker_env(args: &ServiceArgs) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: String| env.push((key.to_owned(), value));

    let format = match args.log.log_format {
        LogFormat::Pretty => "pretty",
        LogFormat::Json => "json",
        // The manager prints its workers' lines where its own go: same format as its own.
        LogFormat::Auto if std::io::stderr().is_terminal() => "pretty",
        LogFormat::Auto => "json",
    };
    set("LOG_FORMAT", format.to_owned());
    set("RUST_LOG", args.log.log_level.clone());

    let chain = &args.chain;
    if let Some(path) = &chain.manifest {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        set("REDLINE_MANIFEST", absolute.display().to_string());
        set(
            "REDLINE_MANIFEST_WAIT_SECS",
            chain.manifest_wait_secs.to_string(),
        );
    }
    let optional = [
        ("CHAIN_ID", &chain.chain_id),
        ("BECH32_PREFIX", &chain.bech32_prefix),
        ("RED_BANK", &chain.red_bank),
        ("ORACLE", &chain.oracle),
        ("PARAMS", &chain.params),
        ("REWARDS_COLLECTOR", &chain.rewards_collector),
        ("SWAPPER", &chain.swapper),
        ("FEE_DENOM", &chain.fee_denom),
        ("GAS_PRICE", &chain.gas_price),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            set(key, value.clone());
        }
    }
    if let Some(rule) = chain.liquidation_rule {
        set("LIQUIDATION_RULE", rule.to_string());
    }
    if !chain.rpc.is_empty() {
        set("RPC_URLS", chain.rpc.join(","));
    }
    if !chain.ws.is_empty() {
        set("WS_URLS", chain.ws.join(","));
    }
    if let Some(block_time) = chain.block_time_ms {
        set("BLOCK_TIME_MS", block_time.to_string());
    }
    if let Some(timeout) = chain.rpc_timeout_ms {
        set("RPC_TIMEOUT_MS", timeout.to_string());
    }
    if let Some(hedge) = chain.rpc_hedge_after_ms {
        set("RPC_HEDGE_AFTER_MS", hedge.to_string());
    }

    let queue = &args.queue;
    set("REDIS_URL", queue.redis.redis_url.clone());
    if queue.redis.redis_cluster {
        set("REDIS_CLUSTER", "true".to_owned());
    }
    // Paths: the worker reads the same secret and CA files (same host, or the same mounted
    // secret in its container).
    if let Some(path) = &queue.redis.redis_password_file {
        set("REDIS_PASSWORD_FILE", path.display().to_string());
    }
    if let Some(path) = &queue.redis.redis_ca_cert {
        set("REDIS_CA_CERT", path.display().to_string());
    }
    set("QUEUE_PREFIX", queue.queue_prefix.clone());
    set("QUEUE_GROUP", queue.queue_group.clone());
    set(
        "QUEUE_VISIBILITY_TIMEOUT_MS",
        queue.queue_visibility_timeout_ms.to_string(),
    );
    set(
        "QUEUE_MAX_DELIVERIES",
        queue.queue_max_deliveries.to_string(),
    );
    set("QUEUE_BLOCK_MS", queue.queue_block_ms.to_string());
    if let Some(max_len) = queue.queue_max_len {
        set("QUEUE_MAX_LEN", max_len.to_string());
    }
    env
}

/// Splits the `KEY=VALUE` entries of a backend's list flag (`--docker-env`, `--ecs-env`,
/// `--ecs-secret`), checking each key is a usable variable name; errors name `field`. Blank
/// entries (a trailing `;` in the env twin) are skipped; whitespace around key and value is
/// dropped, the value's own `=` signs are kept.
pub fn parse_env_entries(
    backend: &'static str,
    field: &'static str,
    entries: &[String],
) -> Result<Vec<(String, String)>, ScalerError> {
    let error = |problem: String| ScalerError::config(backend, field, problem);
    entries
        .iter()
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| error(format!("`{entry}` is not KEY=VALUE")))?;
            let key = key.trim();
            let valid = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(error(format!(
                    "`{key}` is not an environment variable name"
                )));
            }
            Ok((key.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// `base` with a backend's `KEY=VALUE` flag entries (`--docker-env`, `--ecs-env`) on top;
/// errors name `field`.
pub fn with_entries(
    backend: &'static str,
    field: &'static str,
    base: Vec<(String, String)>,
    entries: &[String],
) -> Result<Vec<(String, String)>, ScalerError> {
    Ok(with_overrides(
        base,
        parse_env_entries(backend, field, entries)?,
    ))
}

/// The variable names of `env`, for `Debug` output: values may hold secrets (a mnemonic).
pub fn keys(env: &[(String, String)]) -> Vec<&str> {
    env.iter().map(|(key, _)| key.as_str()).collect()
}

/// `base` with each of `overrides` replacing the variable of the same name (or added).
pub fn with_overrides(
    mut base: Vec<(String, String)>,
    overrides: Vec<(String, String)>,
) -> Vec<(String, String)> {
    for (key, value) in overrides {
        base.retain(|(existing, _)| *existing != key);
        base.push((key, value));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaler::testing::parse;

    /// The worker environment of a manager started with `args`.
    fn worker_env_of(args: &[&str]) -> Vec<(String, String)> {
        worker_env(&parse::<ServiceArgs>(args))
    }

    fn value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn flags_become_their_env_twins() {
        let env = worker_env_of(&[
            "--manifest",
            "run/manifest.json",
            "--redis-url",
            "redis://127.0.0.1:7000",
            "--queue-prefix",
            "t1",
            "--log-format",
            "json",
            "--rpc",
            "http://a:1",
            "--rpc",
            "http://b:2",
            "--rpc-timeout-ms",
            "2500",
            "--rpc-hedge-after-ms",
            "0",
        ]);
        let get = |key: &str| value(&env, key);
        assert_eq!(get("RPC_TIMEOUT_MS"), Some("2500"));
        assert_eq!(get("RPC_HEDGE_AFTER_MS"), Some("0"));
        assert_eq!(get("REDIS_URL"), Some("redis://127.0.0.1:7000"));
        assert_eq!(get("QUEUE_PREFIX"), Some("t1"));
        assert_eq!(get("LOG_FORMAT"), Some("json"));
        assert_eq!(get("RPC_URLS"), Some("http://a:1,http://b:2"));
        let manifest = get("REDLINE_MANIFEST").unwrap();
        assert!(manifest.starts_with('/'), "{manifest}");
        assert!(manifest.ends_with("run/manifest.json"), "{manifest}");
        // Unset optional flags stay unset; per-worker variables are never passed.
        assert_eq!(get("CHAIN_ID"), None);
        assert_eq!(get("QUEUE_MAX_LEN"), None);
        for key in NOT_INHERITED {
            assert_eq!(get(key), None);
        }
    }

    /// A chain configured by flags keeps its liquidation rule in the workers (they would
    /// otherwise need it again, and a Neutron worker must not fall back to anything).
    #[test]
    fn the_liquidation_rule_reaches_the_workers() {
        let env = worker_env_of(&["--rpc", "http://a:1", "--liquidation-rule", "close_factor"]);
        assert_eq!(value(&env, "LIQUIDATION_RULE"), Some("close_factor"));
        let env = worker_env_of(&["--rpc", "http://a:1"]);
        assert_eq!(value(&env, "LIQUIDATION_RULE"), None);
    }

    #[test]
    fn redis_access_flags_are_passed_on() {
        let env = worker_env_of(&[
            "--redis-url",
            "rediss://a:7000,rediss://b:7001",
            "--redis-cluster",
            "--redis-password-file",
            "/run/secrets/redis-password",
            "--redis-ca-cert",
            "/run/redis-ca.pem",
            "--queue-prefix",
            "{t1}",
        ]);
        let get = |key: &str| value(&env, key);
        assert_eq!(get("REDIS_URL"), Some("rediss://a:7000,rediss://b:7001"));
        assert_eq!(get("REDIS_CLUSTER"), Some("true"));
        assert_eq!(
            get("REDIS_PASSWORD_FILE"),
            Some("/run/secrets/redis-password")
        );
        assert_eq!(get("REDIS_CA_CERT"), Some("/run/redis-ca.pem"));
        assert_eq!(get("QUEUE_PREFIX"), Some("{t1}"));
        assert_eq!(value(&worker_env_of(&[]), "REDIS_CLUSTER"), None);
    }

    #[test]
    fn entries_split_at_the_first_equals_sign() {
        let entries = ["A=b=c".to_string(), " ".into(), " KEY = v ".into()];
        let parsed = parse_env_entries("docker", "--docker-env", &entries).unwrap();
        assert_eq!(
            parsed,
            [
                ("A".to_string(), "b=c".to_string()),
                ("KEY".to_string(), "v".to_string())
            ]
        );
        for bad in ["NOVALUE", "1X=2", "A-B=1", "=1"] {
            let error = parse_env_entries("ecs", "--ecs-env", &[bad.to_string()]).unwrap_err();
            assert!(
                matches!(
                    error,
                    ScalerError::Config {
                        backend: "ecs",
                        field: "--ecs-env",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn overrides_replace_variables_of_the_same_name() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let merged = with_overrides(
            vec![pair("A", "1"), pair("B", "2")],
            vec![pair("B", "3"), pair("C", "4")],
        );
        assert_eq!(merged, [pair("A", "1"), pair("B", "3"), pair("C", "4")]);
    }
}
