//! The environment a worker starts with: the manager's own chain, queue and log settings, as
//! the `env` twins of the flags every service shares, so a worker the manager starts talks to
//! the same chain and Redis as the manager, however the manager itself was configured (flags,
//! environment or both).

use std::io::IsTerminal;

use redline_common::service::ServiceArgs;
use redline_common::telemetry::LogFormat;

/// Variables a worker must not inherit from the manager: each worker names its own queue
/// consumer, and serves metrics on its own port.
pub const NOT_INHERITED: &[&str] = &["QUEUE_CONSUMER", "METRICS_ADDR"];

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
    if !chain.rpc.is_empty() {
        set("RPC_URLS", chain.rpc.join(","));
    }
    if !chain.ws.is_empty() {
        set("WS_URLS", chain.ws.join(","));
    }
    if let Some(block_time) = chain.block_time_ms {
        set("BLOCK_TIME_MS", block_time.to_string());
    }

    let queue = &args.queue;
    set("REDIS_URL", queue.redis_url.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        service: ServiceArgs,
    }

    #[test]
    fn flags_become_their_env_twins() {
        let cli = Cli::try_parse_from([
            "manager",
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
        ])
        .unwrap();
        let env = worker_env(&cli.service);
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
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
}
