//! The liquidator's mnemonic never leaks: a whole run (devnet, manager, collector, health
//! checker, liquidator, with liquidations) is made twice, with the mnemonic given once by
//! `MNEMONIC` and once by `MNEMONIC_FILE` (the manifest carries none), and every output of the
//! run is searched for it:
//!
//! - stdout and stderr of every process (the manager prints its workers' lines), with the
//!   redline crates logging at debug level;
//! - `/metrics` and `/health` of the manager and of every worker;
//! - every Redis key, read by type (strings, hashes, lists, sets, sorted sets, streams) and as
//!   `DUMP` bytes;
//! - the liquidator's CSV file, and the command lines of the worker processes.
//!
//! What counts as a leak: the phrase; any three of its words in a row, whatever separates
//! them (spaces, commas, quotes, JSON arrays, newlines); the hex of the BIP-39 seed; the hex
//! of the private key of any of the first eight wallets derived from it. The detector is
//! checked on planted leaks first, so the test can fail.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cosmrs::bip32::{DerivationPath, Language, Mnemonic, XPrv};
use redis::aio::ConnectionManager;
use redline_tests::bench::devnet;
use redline_tests::chaos::{self, LiquidationTally, Pipeline, PipelineOptions};
use testkit::free_port;
use testkit::http::http_get;

/// What would betray the mnemonic, and the search for it.
struct Leaks {
    phrase: String,
    /// Every three consecutive words of the phrase, space-joined.
    trigrams: Vec<String>,
    /// Lowercase hex of the seed and of the derived private keys.
    hexes: Vec<(String, String)>,
}

impl Leaks {
    fn of(phrase: &str) -> anyhow::Result<Self> {
        let words: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
        let trigrams = words.windows(3).map(|w| w.join(" ")).collect();
        let mnemonic = Mnemonic::new(words.join(" "), Language::English)
            .map_err(|e| anyhow::anyhow!("the test mnemonic: {e}"))?;
        let seed = mnemonic.to_seed("");
        let mut hexes = vec![("seed".to_string(), hex::encode(seed.as_bytes()))];
        for index in 0..8 {
            let path: DerivationPath = format!("m/44'/118'/0'/0/{index}").parse()?;
            let key = XPrv::derive_from_path(seed.as_bytes(), &path)?;
            hexes.push((format!("private key {index}"), hex::encode(key.to_bytes())));
        }
        Ok(Leaks {
            phrase: words.join(" "),
            trigrams,
            hexes,
        })
    }

    /// What of the mnemonic `text` gives away, if anything.
    fn find(&self, text: &str) -> Vec<String> {
        // JSON and Rust escapes (`\n`, `\t`) separate words as the characters they stand for.
        let lower = text
            .to_lowercase()
            .replace("\\n", " ")
            .replace("\\t", " ")
            .replace("\\r", " ");
        let mut found = Vec::new();
        if lower.contains(&self.phrase) {
            found.push("the phrase".to_string());
        }
        let tokens: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|t| !t.is_empty())
            .collect();
        let triples: HashSet<String> = tokens.windows(3).map(|w| w.join(" ")).collect();
        for trigram in &self.trigrams {
            if triples.contains(trigram) {
                found.push(format!("the words `{trigram}` in a row"));
            }
        }
        for (what, hex) in &self.hexes {
            if lower.contains(hex.as_str()) {
                found.push(format!("the {what} in hex"));
            }
        }
        found
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Env,
    File,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mnemonic_appears_in_no_output_of_a_run() -> anyhow::Result<()> {
    for source in [Source::Env, Source::File] {
        let dir = tempfile::Builder::new().prefix("secrets").tempdir()?;
        let result = run(source, dir.path()).await;
        if result.is_err() {
            eprintln!(
                "manager log, last lines:\n{}",
                chaos::tail(&dir.path().join("manager.log"), 60)
            );
            eprintln!("kept {}", dir.keep().display());
            return result;
        }
    }
    Ok(())
}

async fn run(source: Source, dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let defaults = PipelineOptions::default();
    let devnet = devnet::start(defaults.accounts, defaults.seed, defaults.block_time).await?;
    let phrase = devnet
        .manifest
        .liquidator_mnemonic
        .clone()
        .context("the devnet names its liquidator mnemonic")?;
    let leaks = Leaks::of(&phrase)?;
    // The detector catches planted leaks in the shapes a careless log would use.
    let words: Vec<&str> = phrase.split_whitespace().collect();
    for planted in [
        format!("mnemonic={phrase}"),
        format!("{:?}", words),
        format!("{{\"m\":\"{}\"}}", words[5..9].join("\\n")),
        format!("key {}", leaks.hexes[1].1.to_uppercase()),
    ] {
        anyhow::ensure!(
            !leaks.find(&planted).is_empty(),
            "the detector misses {planted}"
        );
    }

    let mut env = vec![(
        "RUST_LOG".to_string(),
        "info,redline_service=debug,redline_pipeline=debug,redline_chain=debug,redline_collector=debug,redline_health_checker=debug,\
         redline_liquidator=debug,redline_manager=debug"
            .to_string(),
    )];
    match source {
        Source::Env => env.push(("MNEMONIC".into(), phrase.clone())),
        Source::File => {
            let path = dir.join("mnemonic");
            std::fs::write(&path, format!("{phrase}\n"))?;
            env.push(("MNEMONIC_FILE".into(), path.display().to_string()));
        }
    }
    let worker_metrics: BTreeMap<&str, String> = [
        ("collector", free_port()?),
        ("health-checker", free_port()?),
        ("liquidator", free_port()?),
    ]
    .into_iter()
    .map(|(service, port)| (service, format!("127.0.0.1:{port}")))
    .collect();
    let csv = dir.join("liquidations.csv");
    let mut manager_args: Vec<String> = worker_metrics
        .iter()
        .map(|(service, addr)| format!("--{service}-arg=--metrics-addr={addr}"))
        .collect();
    manager_args.push(format!("--liquidator-arg=--csv={}", csv.display()));
    manager_args.push(format!("--worker-log-level={}", env[0].1.clone()));
    let options = PipelineOptions {
        strip_mnemonic: true,
        env,
        manager_args,
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::start_on(dir, options, devnet).await?;
    let manifest_text = std::fs::read_to_string(&p.manifest_path)?;
    anyhow::ensure!(
        leaks.find(&manifest_text).is_empty(),
        "the manifest the services read still carries the mnemonic"
    );
    p.wait_on_time("the pipeline to settle", 0, 3, Duration::from_secs(180))
        .await?;
    let chain = p.chain()?;
    let drop_height = p.devnet.move_prices(&[("uatom", "7")]).await?;
    let liquidatable = chain.profitable_left(&p.devnet.borrowers).await?;
    chain
        .wait_all_liquidated(&liquidatable, Duration::from_secs(180))
        .await?;
    let last = chain.height().await?;
    let tally = LiquidationTally::of(&chain.liquidations(drop_height, last).await?);
    anyhow::ensure!(
        tally.total > 0,
        "no liquidation: the liquidator never signed with the mnemonic"
    );

    // Everything the run shows.
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut endpoints = vec![("manager", p.metrics_addr.clone())];
    endpoints.extend(worker_metrics.iter().map(|(s, a)| (*s, a.clone())));
    for (service, addr) in &endpoints {
        for path in ["/metrics", "/health"] {
            let (status, body) = http_get(addr, path)
                .await
                .with_context(|| format!("{service} {path} on {addr}"))?;
            anyhow::ensure!(status == 200, "{service} {path}: HTTP {status}");
            outputs.push((format!("{service} {path}"), body));
        }
    }
    for service in ["collector", "health-checker", "liquidator"] {
        for pid in p.workers(service) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            outputs.push((
                format!("{service} command line"),
                String::from_utf8_lossy(&cmdline).replace('\0', " "),
            ));
        }
    }
    let mut conn = p.conn.clone();
    let keys = redis_contents(&mut conn, &mut outputs).await?;
    p.stop().await?;
    outputs.push(("stdout and stderr of every process".into(), p.log()));
    outputs.push((
        "liquidations CSV".into(),
        std::fs::read_to_string(&csv).context("the liquidator's CSV")?,
    ));

    let mut leaked = Vec::new();
    for (what, text) in &outputs {
        let found = leaks.find(text);
        if !found.is_empty() {
            leaked.push(format!("{what}: {}", found.join(", ")));
        }
    }
    let bytes: usize = outputs.iter().map(|(_, t)| t.len()).sum();
    eprintln!(
        "mnemonic by {source:?}: {} liquidations; searched {} outputs ({bytes} bytes, {keys} Redis keys) in {:.0} s: {}",
        tally.total,
        outputs.len(),
        started.elapsed().as_secs_f64(),
        if leaked.is_empty() { "no leak".to_string() } else { leaked.join("; ") }
    );
    anyhow::ensure!(leaked.is_empty(), "the mnemonic leaked: {leaked:?}");
    p.devnet.shutdown().await;
    Ok(())
}

/// Reads every key by its type, and its `DUMP`, into `outputs`; returns how many keys.
async fn redis_contents(
    conn: &mut ConnectionManager,
    outputs: &mut Vec<(String, String)>,
) -> anyhow::Result<usize> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1_000)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for key in &keys {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(conn).await?;
        let value: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(key).query_async(conn).await?,
            "hash" => redis::cmd("HGETALL").arg(key).query_async(conn).await?,
            "list" => {
                redis::cmd("LRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .query_async(conn)
                    .await?
            }
            "set" => redis::cmd("SMEMBERS").arg(key).query_async(conn).await?,
            "zset" => {
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(conn)
                    .await?
            }
            "stream" => {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg("-")
                    .arg("+")
                    .query_async(conn)
                    .await?
            }
            _ => redis::Value::Nil,
        };
        let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query_async(conn).await?;
        let mut text = String::new();
        flatten(&value, &mut text);
        outputs.push((format!("Redis {kind} {key}"), text));
        outputs.push((
            format!("Redis DUMP {key}"),
            String::from_utf8_lossy(&dump.unwrap_or_default()).into_owned(),
        ));
    }
    Ok(keys.len())
}

/// Every string and number in a reply, one per line.
fn flatten(value: &redis::Value, out: &mut String) {
    match value {
        redis::Value::BulkString(bytes) => {
            out.push_str(&String::from_utf8_lossy(bytes));
            out.push('\n');
        }
        redis::Value::SimpleString(s) => {
            out.push_str(s);
            out.push('\n');
        }
        redis::Value::Int(i) => {
            out.push_str(&i.to_string());
            out.push('\n');
        }
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|v| flatten(v, out))
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        other => {
            out.push_str(&format!("{other:?}"));
            out.push('\n');
        }
    }
}
