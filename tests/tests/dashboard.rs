//! The manager's web dashboard and the liquidators' notifications, against a running pipeline:
//! a real redis-server, a devnet (300 seeded accounts, 1 s blocks) and the real `manager`
//! binary with the `process` backend, which starts the collector, the health checkers and the
//! liquidators. After ATOM falls 30 % the liquidators liquidate; then
//!
//! 1. the page, loaded in headless Chromium (`chromium --dump-dom`), shows the figures of the
//!    pipeline: the block height the manager saw (and the chain has), the liquidations and their
//!    exact profit as the attempts stream records them, every liquidator wallet's balances as
//!    the chain holds them, and the accounts closest to liquidation as the health checkers'
//!    near-liquidation set holds them; the JSON endpoint agrees;
//! 2. a screenshot of the page is saved to `target/dashboard.png`;
//! 3. every liquidation attempt the liquidators made was posted to a local HTTP receiver (a
//!    `discord:` target) and written to a `csvfile:` target, one message and one row each.
//!
//! Needs Debian's `chromium` (`make deps` installs it) and the workspace's binaries
//! (`cargo build --bins`; `make test` builds them).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use mars::value::Value as Usd;
use redline_chain::ChainClient;
use redline_liquidator::record::{notification, read_records, Outcome};
use redline_pipeline::redis_conn::RedisConn;
use redline_tests::bench::devnet;
use redline_tests::{bin_dir, SERVICES};
use serde_json::Value;
use testkit::http::{http_get_json, WebhookReceiver};
use testkit::{free_port, RedisServer};

const ACCOUNTS: usize = 300;
const BLOCK_TIME: Duration = Duration::from_secs(1);
const PREFIX: &str = "dash";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The text of the element with `id` (up to its first child tag).
fn text_of_id(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let open_end = at + dom[at..].find('>')?;
    let rest = &dom[open_end + 1..];
    Some(rest[..rest.find('<')?].trim().to_string())
}

/// Attribute `attr` of the element with `id`.
fn attr_of_id(dom: &str, id: &str, attr: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    attr_in(&dom[start..end], attr)
}

fn attr_in(tag: &str, attr: &str) -> Option<String> {
    let key = format!(" {attr}=\"");
    let at = tag.find(&key)? + key.len();
    let value = &tag[at..at + tag[at..].find('"')?];
    Some(value.replace("&amp;", "&"))
}

/// The opening tags that carry `class="{class}"`.
fn tags_with_class<'a>(dom: &'a str, class: &str) -> Vec<&'a str> {
    let needle = format!("class=\"{class}\"");
    let mut tags = Vec::new();
    let mut from = 0;
    while let Some(found) = dom[from..].find(&needle) {
        let at = from + found;
        let start = dom[..at].rfind('<').unwrap_or(at);
        let end = at + dom[at..].find('>').unwrap_or(0);
        tags.push(&dom[start..end]);
        from = at + needle.len();
    }
    tags
}

/// What the page shows, read from Chromium's serialised DOM.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    height: u64,
    liquidations: u64,
    profit_exact: String,
    profit_text: String,
    /// (wallet, denom) → base units.
    balances: BTreeMap<(String, String), String>,
    near_total: u64,
    near: Vec<(String, String)>,
    recent_txs: Vec<String>,
}

fn parse_dom(dom: &str) -> anyhow::Result<Shown> {
    let number = |id: &str| -> anyhow::Result<u64> {
        text_of_id(dom, id)
            .with_context(|| format!("#{id} is not on the page"))?
            .parse()
            .with_context(|| format!("#{id} is not a number"))
    };
    let mut balances = BTreeMap::new();
    for tag in tags_with_class(dom, "num balance") {
        let get =
            |a: &str| attr_in(tag, a).with_context(|| format!("a balance without {a}: {tag}"));
        balances.insert(
            (get("data-wallet")?, get("data-denom")?),
            get("data-amount")?,
        );
    }
    let near = tags_with_class(dom, "near-account")
        .into_iter()
        .map(|tag| {
            Ok((
                attr_in(tag, "data-account").context("near row without account")?,
                attr_in(tag, "data-hf").context("near row without hf")?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Shown {
        height: number("block-height")?,
        liquidations: number("liquidations-count")?,
        profit_exact: attr_of_id(dom, "liquidations-profit", "data-exact")
            .context("no exact profit")?,
        profit_text: text_of_id(dom, "liquidations-profit").context("no profit")?,
        balances,
        near_total: number("near-total")?,
        near,
        recent_txs: tags_with_class(dom, "liquidation")
            .into_iter()
            .filter_map(|tag| attr_in(tag, "data-tx"))
            .collect(),
    })
}

/// What the JSON endpoint says, in the page's terms.
fn expected_from_json(json: &Value) -> Shown {
    let mut balances = BTreeMap::new();
    for wallet in json["wallets"].as_array().into_iter().flatten() {
        let address = wallet["address"].as_str().unwrap_or_default();
        for (denom, amount) in wallet["balances"].as_object().into_iter().flatten() {
            balances.insert(
                (address.to_string(), denom.clone()),
                amount.as_str().unwrap_or_default().to_string(),
            );
        }
    }
    let profit = json["liquidations"]["profit_usd"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Shown {
        height: json["current_block"]["height"].as_u64().unwrap_or(0),
        liquidations: json["liquidations"]["count"].as_u64().unwrap_or(0),
        profit_text: redline_manager_usd(&profit),
        profit_exact: profit,
        balances,
        near_total: json["near_liquidation"]["total"].as_u64().unwrap_or(0),
        near: json["near_liquidation"]["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["account"].as_str().unwrap_or_default().to_string(),
                    a["health_factor"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        recent_txs: json["liquidations"]["recent"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["tx_hash"].as_str().unwrap_or_default().to_string())
            .collect(),
    }
}

/// The page's USD text for an exact amount: cut to cents, thousands separated (what a reader
/// expects; written out here rather than taken from the manager so the test checks it).
fn redline_manager_usd(exact: &str) -> String {
    let (negative, digits) = match exact.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exact),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let cents: String = fraction.chars().chain("00".chars()).take(2).collect();
    let whole: u128 = whole.parse().unwrap_or(0);
    let mut grouped = String::new();
    let text = whole.to_string();
    for (i, c) in text.chars().enumerate() {
        if i > 0 && (text.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if negative && (whole, cents.as_str()) != (0, "00") {
        "-"
    } else {
        ""
    };
    format!("{sign}{grouped}.{cents}")
}

/// Runs Chromium headless with `args` then `url`; returns its stdout.
async fn chromium(profile: &Path, args: &[String], url: &str) -> anyhow::Result<String> {
    ensure!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: `make deps` installs Debian's chromium package"
    );
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("chromium did not finish within 120 s")??;
    ensure!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_pipeline_and_liquidations_are_notified() -> anyhow::Result<()> {
    let bin = bin_dir(&SERVICES)?;
    let dir = tempfile::Builder::new().prefix("dashboard-e2e").tempdir()?;
    let log_path = dir.path().join("manager.log");
    let result = run(&bin, dir.path(), &log_path).await;
    if result.is_err() {
        redline_tests::chaos::keep_for_a_look(dir, &log_path, 60);
    }
    result
}

async fn run(bin: &Path, dir: &Path, log_path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let redis_server = RedisServer::start()?;
    let devnet = devnet::start(ACCOUNTS, 5, BLOCK_TIME).await?;
    let manifest_path = dir.join("manifest.json");
    devnet.manifest.write(&manifest_path)?;
    let receiver = WebhookReceiver::start().await?;
    let csv_path = dir.join("liquidations.csv");
    let metrics_addr = format!("127.0.0.1:{}", free_port()?);
    let dashboard_addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = tokio::process::Command::new(bin.join("manager"));
    command
        .args(["--manifest", &manifest_path.display().to_string()])
        .args(["--redis-url", &redis_server.url()])
        .args(["--queue-prefix", PREFIX, "--index-prefix", PREFIX])
        .args([
            "--backend",
            "process",
            "--bin-dir",
            &bin.display().to_string(),
        ])
        .args(["--min-health-checkers", "1", "--max-health-checkers", "2"])
        .args(["--min-liquidators", "1", "--max-liquidators", "2"])
        .args(["--metrics-addr", &metrics_addr, "--log-format", "json"])
        .args(["--dashboard-addr", &dashboard_addr])
        .args(["--worker-log-level", "warn", "--stop-grace-secs", "10"])
        .arg(format!(
            "--notify-liquidations=discord:{}",
            receiver.url("/discord/hook")
        ))
        .arg(format!(
            "--notify-liquidations=csvfile:{}",
            csv_path.display()
        ))
        .arg(format!(
            "--notify-errors=slack:{}",
            receiver.url("/slack/hook")
        ))
        .args([
            "--health-checker-arg=--workers=1",
            "--health-checker-arg=--compute-threads=1",
            "--liquidator-arg=--balance-interval-ms=1000",
            "--collector-arg=--reconcile-every-blocks=0",
            "--collector-arg=--no-progress-bar",
        ])
        .env_remove("RUST_LOG");
    let mut manager = redline_tests::spawn_logged(&mut command, log_path, "the manager")?;

    let client = redis::Client::open(redis_server.url())?;
    let mut conn = RedisConn::Standalone(client.get_connection_manager().await?);
    let chain_id = devnet.manifest.chain_id.clone();

    // The dashboard answers, blocks close, and every liquidator wallet has published.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(Some(status)) = manager.try_wait() {
            bail!("the manager exited: {status}");
        }
        if let Ok(json) = http_get_json(&dashboard_addr, "/api/dashboard").await {
            let closed = json["blocks"].as_array().map_or(0, Vec::len);
            let wallets = json["wallets"].as_array().map_or(0, Vec::len);
            if closed >= 3 && wallets >= 1 && json["near_liquidation"]["total"].as_u64() > Some(0) {
                break;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the dashboard never showed closed blocks, wallets and watched accounts"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("pipeline up after {:.1} s", started.elapsed().as_secs_f64());

    // The price drop, then wait until the liquidations stop coming.
    let drop_height = devnet.move_prices(&[("uatom", "7")]).await?;
    let attempts_key = format!("{PREFIX}:liquidator:{chain_id}:attempts");
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last = (0usize, Instant::now());
    loop {
        let liquidated = read_records(&mut conn, &attempts_key)
            .await?
            .iter()
            .filter(|r| r.outcome == Outcome::Liquidated)
            .count();
        if liquidated != last.0 {
            last = (liquidated, Instant::now());
        } else if liquidated > 0 && last.1.elapsed() >= 10 * BLOCK_TIME {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "liquidations did not settle ({liquidated} so far)"
        );
        tokio::time::sleep(BLOCK_TIME).await;
    }
    let records = read_records(&mut conn, &attempts_key).await?;
    let liquidated: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Liquidated)
        .collect();
    let profit = liquidated
        .iter()
        .fold(Usd::zero(), |sum, r| sum + r.profit_usd);
    eprintln!(
        "price drop at height {drop_height}: {} liquidations, {profit} USD profit, {} attempts recorded",
        liquidated.len(),
        records.len()
    );

    // The published balances catch up with the chain (each wallet is read after its txs).
    let deadline = Instant::now() + Duration::from_secs(60);
    let chain_balances = loop {
        let json = http_get_json(&dashboard_addr, "/api/dashboard").await?;
        let published = expected_from_json(&json).balances;
        let mut on_chain = BTreeMap::new();
        for wallet in json["wallets"].as_array().into_iter().flatten() {
            let address = wallet["address"].as_str().unwrap_or_default();
            for coin in devnet.client.balances(address).await? {
                on_chain.insert((address.to_string(), coin.denom), coin.amount.to_string());
            }
        }
        if !on_chain.is_empty() && published == on_chain {
            break on_chain;
        }
        ensure!(
            Instant::now() < deadline,
            "published balances {published:?} never matched the chain's {on_chain:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The page against the pipeline. Figures move with every block; a reading counts when the
    // JSON before and after the page load agree (the height only has to lie between them).
    let profile = dir.join("chromium-profile");
    let url = format!("http://{dashboard_addr}/");
    let mut checked = false;
    for attempt in 1..=8 {
        let before = http_get_json(&dashboard_addr, "/api/dashboard").await?;
        let dom = chromium(&profile, &["--dump-dom".to_string()], &url).await?;
        let after = http_get_json(&dashboard_addr, "/api/dashboard").await?;
        let shown = parse_dom(&dom)?;
        let (expected_before, expected_after) =
            (expected_from_json(&before), expected_from_json(&after));
        ensure!(
            expected_before.height <= shown.height && shown.height <= expected_after.height,
            "the page shows block {} outside the manager's {}..={}",
            shown.height,
            expected_before.height,
            expected_after.height
        );
        let comparable = |s: &Shown| Shown {
            height: 0,
            ..s.clone()
        };
        if comparable(&expected_before) != comparable(&expected_after) {
            eprintln!("attempt {attempt}: the figures moved during the page load; again");
            continue;
        }
        ensure!(
            comparable(&shown) == comparable(&expected_before),
            "the page shows {shown:#?}\nbut the JSON endpoint says {expected_before:#?}"
        );
        // And the JSON's figures are the pipeline's.
        let chain_height = devnet.client.latest_height().await?;
        ensure!(shown.height <= chain_height && shown.height > drop_height);
        ensure!(
            shown.liquidations as usize == liquidated.len(),
            "the page shows {} liquidations, the attempts stream has {}",
            shown.liquidations,
            liquidated.len()
        );
        ensure!(
            shown.profit_exact == profit.to_string(),
            "the page shows a profit of {} USD, the attempts stream sums to {profit}",
            shown.profit_exact
        );
        ensure!(shown.profit_text == redline_manager_usd(&profit.to_string()));
        ensure!(
            shown.balances == chain_balances,
            "the page shows balances {:?}, the chain holds {chain_balances:?}",
            shown.balances
        );
        let near_key = format!("{PREFIX}:{chain_id}:red_bank:near");
        // The page lists the lowest health factors first, as many as it has room for.
        let listed = shown.near.len().max(1);
        let near: Vec<(String, String)> = redis::cmd("ZRANGE")
            .arg(&near_key)
            .arg(0)
            .arg(listed - 1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        let near_total: u64 = redis::cmd("ZCARD")
            .arg(&near_key)
            .query_async(&mut conn)
            .await?;
        let near: Vec<(String, String)> = near
            .into_iter()
            .map(|(account, score)| {
                // Redis answers the nearest double; the health checker stored 6 decimals.
                let hf = format!("{:.6}", score.parse::<f64>().unwrap_or(f64::NAN));
                (
                    account,
                    hf.trim_end_matches('0').trim_end_matches('.').to_string(),
                )
            })
            .collect();
        if near != shown.near || near_total != shown.near_total {
            eprintln!("attempt {attempt}: the near-liquidation set moved since; again");
            continue;
        }
        let newest: Vec<String> = liquidated
            .iter()
            .rev()
            .take(shown.recent_txs.len())
            .map(|r| r.tx_hash.clone())
            .collect();
        ensure!(
            shown.recent_txs == newest,
            "recent liquidations {:?}, the stream's newest {newest:?}",
            shown.recent_txs
        );
        eprintln!(
            "page at block {}: {} liquidations, ${} profit, {} balances, {} of {} watched accounts listed",
            shown.height,
            shown.liquidations,
            shown.profit_text,
            shown.balances.len(),
            shown.near.len(),
            shown.near_total
        );
        checked = true;
        break;
    }
    ensure!(checked, "the figures never held still for a page load");

    // The screenshot, next to the build's other outputs.
    let target = bin
        .parent()
        .context("the binaries' directory has no parent")?;
    let screenshot = target.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &profile,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1600".to_string(),
        ],
        &url,
    )
    .await?;
    let png = std::fs::read(&screenshot)
        .with_context(|| format!("no screenshot at {}", screenshot.display()))?;
    ensure!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "the screenshot is not a real PNG"
    );
    eprintln!("screenshot: {} ({} bytes)", screenshot.display(), png.len());

    // Notifications: one message and one CSV row per notified attempt.
    let expected: Vec<_> = records
        .iter()
        .filter_map(|r| notification(r, &chain_id))
        .collect();
    ensure!(
        expected.len() >= liquidated.len(),
        "fewer notified attempts than liquidations"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let messages = loop {
        let messages = receiver.texts_to("/discord/hook", "content");
        if messages.len() >= expected.len() {
            break messages;
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {} liquidation notifications arrived",
            messages.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(
        messages.len() == expected.len(),
        "{} messages for {} attempts",
        messages.len(),
        expected.len()
    );
    for attempt in &expected {
        let hash = attempt.tx_hash.clone().unwrap_or_default();
        ensure!(
            messages
                .iter()
                .any(|m| m.contains(&attempt.account) && m.contains(&hash)),
            "no message for {} (tx {hash})",
            attempt.account
        );
    }
    ensure!(
        messages.iter().any(|m| m.contains("Liquidation succeeded")),
        "no success message: {messages:?}"
    );
    let csv = std::fs::read_to_string(&csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    let rows: Vec<&str> = csv
        .lines()
        .filter(|line| !line.starts_with("timestamp,"))
        .collect();
    ensure!(
        csv.starts_with("timestamp,chain_id,protocol,account,liquidator,outcome"),
        "the CSV has no header: {csv}"
    );
    ensure!(
        rows.len() == expected.len(),
        "{} CSV rows for {} attempts",
        rows.len(),
        expected.len()
    );
    for attempt in expected.iter().filter(|a| a.tx_hash.is_some()) {
        let hash = attempt.tx_hash.as_deref().unwrap_or_default();
        ensure!(
            rows.iter()
                .any(|row| row.contains(&attempt.account) && row.contains(hash)),
            "no CSV row for {} (tx {hash})",
            attempt.account
        );
    }
    let succeeded = rows.iter().filter(|r| r.contains(",succeeded,")).count();
    ensure!(succeeded == liquidated.len());
    eprintln!(
        "notifications: {} messages and {} CSV rows ({succeeded} successes)",
        messages.len(),
        rows.len()
    );

    // A clean stop.
    let pid = manager.id().context("manager pid")?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(40), manager.wait())
        .await
        .context("the manager did not stop within 40 s of SIGTERM")??;
    ensure!(status.success(), "the manager exited with {status}");
    devnet.shutdown().await;
    drop(redis_server);
    Ok(())
}
