//! Notifications against a real HTTP receiver on loopback (testkit's, recording every request) and
//! real CSV files: payload shapes, routing by category, dead and slow targets, secrets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use cosmwasm_std::{SignedDecimal, Uint128};
use redline_pipeline::jobs::ProtocolKind;
use redline_service::notify::{
    LiquidationAttempt, LiquidationOutcome, Notifier, NotifyArgs, NotifyEvent, NotifyStats,
};
use testkit::http::WebhookReceiver as Receiver;
use testkit::wait_for;

const TOKEN: &str = "987654321:AAF-secretBotToken_xyz";
const WEBHOOK_SECRET: &str = "whSECRETwebhookPATH";

/// Settings for fast tests: short timeout and backoff.
fn args() -> NotifyArgs {
    NotifyArgs {
        notify_timeout_ms: 300,
        notify_retries: 2,
        notify_backoff_ms: 10,
        ..NotifyArgs::default()
    }
}

fn attempt(n: u64, outcome: LiquidationOutcome) -> NotifyEvent {
    NotifyEvent::from(LiquidationAttempt {
        chain_id: "devnet-1".into(),
        protocol: ProtocolKind::RedBank,
        account: format!("osmo1borrower{n}"),
        liquidator: "osmo1liquidator".into(),
        debt_denom: "uusdc".into(),
        debt_amount: Uint128::new(1_000_000 + u128::from(n)),
        collateral_denom: "uosmo".into(),
        collateral_amount: Uint128::new(2_500_000),
        profit_usd: Some(SignedDecimal::percent(1234)),
        tx_hash: Some(format!("ABCDEF{n:04}")),
        height: Some(100 + n),
        outcome,
        error: match outcome {
            LiquidationOutcome::Succeeded => None,
            LiquidationOutcome::Failed => Some("refused, code 5: \"insufficient funds\"".into()),
        },
    })
}

fn error_event(message: &str) -> NotifyEvent {
    NotifyEvent::Error {
        service: "liquidator".into(),
        message: message.into(),
    }
}

/// A notifier for `args`, which must be valid.
fn start(args: NotifyArgs) -> Notifier {
    args.start().unwrap()
}

async fn flushed(notifier: &Notifier) -> NotifyStats {
    assert!(
        notifier.flush(Duration::from_secs(20)).await,
        "notifications not flushed: {:?}",
        notifier.stats()
    );
    notifier.stats()
}

/// A loopback URL nothing listens on.
fn dead_url(path: &str) -> String {
    let port = testkit::free_port().unwrap();
    format!("http://127.0.0.1:{port}{path}")
}

#[tokio::test]
async fn discord_slack_and_telegram_payloads() {
    let receiver = Receiver::start().await.unwrap();
    let notifier = start(NotifyArgs {
        notify_liquidations: vec![
            format!(
                "discord:{}",
                receiver.url(&format!("/discord/{WEBHOOK_SECRET}"))
            ),
            format!(
                "slack:{}",
                receiver.url(&format!("/slack/{WEBHOOK_SECRET}"))
            ),
        ],
        notify_errors: vec![format!("telegram:-100777@{TOKEN}")],
        notify_telegram_api: receiver.url("/tg"),
        ..args()
    });
    notifier
        .notify(&attempt(1, LiquidationOutcome::Succeeded))
        .await;
    notifier.notify(&error_event("wallet nearly empty")).await;
    assert_eq!(
        flushed(&notifier).await,
        NotifyStats {
            sent: 3,
            ..NotifyStats::default()
        }
    );

    let discord = receiver.requests_to(&format!("/discord/{WEBHOOK_SECRET}"));
    assert_eq!(discord.len(), 1, "{discord:?}");
    let content = discord[0].body["content"].as_str().unwrap();
    assert_eq!(discord[0].body.as_object().unwrap().len(), 1);
    for part in [
        "succeeded",
        "osmo1borrower1",
        "1000001 uusdc",
        "2500000 uosmo",
        "12.34 USD",
        "ABCDEF0001",
        "height 101",
    ] {
        assert!(content.contains(part), "{part} not in {content}");
    }

    let slack = receiver.requests_to(&format!("/slack/{WEBHOOK_SECRET}"));
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0].body["text"].as_str().unwrap(), content);
    assert_eq!(slack[0].body.as_object().unwrap().len(), 1);

    let telegram = receiver.requests_to(&format!("/tg/bot{TOKEN}/sendMessage"));
    assert_eq!(telegram.len(), 1, "{:?}", receiver.requests());
    assert_eq!(telegram[0].body["chat_id"], "-100777");
    assert_eq!(
        telegram[0].body["text"],
        "[redline] liquidator error: wallet nearly empty"
    );
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn routes_by_category_into_csv_files_with_a_header() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = |name: &str| dir.path().join(name);
    let discord = format!("discord:{}", receiver.url("/discord"));
    let notifier = start(NotifyArgs {
        notify_liquidations: vec![
            format!("csvfile:{}", csv("all.csv").display()),
            discord.clone(),
        ],
        notify_successful_liquidations: vec![format!("csvfile:{}", csv("ok.csv").display())],
        // The same webhook under two flags still gets each event once.
        notify_failed_liquidations: vec![
            format!("csvfile:{}", csv("failed.csv").display()),
            discord.clone(),
        ],
        notify_errors: vec![discord],
        ..args()
    });
    assert_eq!(notifier.targets().count(), 4);
    notifier
        .notify(&attempt(1, LiquidationOutcome::Succeeded))
        .await;
    notifier
        .notify(&attempt(2, LiquidationOutcome::Failed))
        .await;
    notifier
        .notify(&attempt(3, LiquidationOutcome::Succeeded))
        .await;
    notifier.notify(&error_event("redis unreachable")).await;
    let stats = flushed(&notifier).await;
    // all.csv 3 + ok.csv 2 + failed.csv 1 + discord 4 (3 attempts, 1 error).
    assert_eq!(stats.sent, 10, "{stats:?}");
    assert_eq!(stats.failed + stats.dropped, 0);

    let header = "timestamp,chain_id,protocol,account,liquidator,outcome,debt_denom,debt_amount,\
                  collateral_denom,collateral_amount,profit_usd,tx_hash,height,error";
    let read = |name: &str| {
        let text = std::fs::read_to_string(csv(name)).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(lines[0], header, "{name}");
        lines[1..].to_vec()
    };
    let all = read("all.csv");
    assert_eq!(all.len(), 3, "{all:?}");
    let ok = read("ok.csv");
    assert_eq!(ok.len(), 2, "{ok:?}");
    for row in &ok {
        assert!(row.contains(",red_bank,"), "{row}");
        assert!(row.contains(",succeeded,uusdc,"), "{row}");
        assert!(row.ends_with(",12.34,ABCDEF0001,101,") || row.ends_with(",12.34,ABCDEF0003,103,"));
    }
    let failed = read("failed.csv");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains(",osmo1borrower2,osmo1liquidator,failed,uusdc,1000002,uosmo,2500000,"),
        "{}",
        failed[0]
    );
    // The error holds a comma and quotes: quoted, quotes doubled.
    assert!(
        failed[0].ends_with(",102,\"refused, code 5: \"\"insufficient funds\"\"\""),
        "{}",
        failed[0]
    );
    // A timestamp in RFC 3339.
    let timestamp = failed[0].split(',').next().unwrap();
    assert!(
        timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.contains('T'),
        "{timestamp}"
    );

    let discord = receiver.requests_to("/discord");
    assert_eq!(discord.len(), 4, "{discord:?}");
    let texts: Vec<&str> = discord
        .iter()
        .map(|r| r.body["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| t.contains("FAILED")).count(),
        1,
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("redis unreachable")));

    // A restarted service appends to an existing file without a second header.
    drop(notifier);
    let again = start(NotifyArgs {
        notify_successful_liquidations: vec![format!("csvfile:{}", csv("ok.csv").display())],
        ..args()
    });
    again
        .notify(&attempt(4, LiquidationOutcome::Succeeded))
        .await;
    flushed(&again).await;
    assert_eq!(read("ok.csv").len(), 3);
}

#[tokio::test]
async fn retries_server_errors_and_rate_limits_but_not_client_errors() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script("/flaky", &[(503, None), (429, Some("0"))]);
    receiver.script("/gone", &[(404, None)]);
    let notifier = start(NotifyArgs {
        notify_errors: vec![
            format!("discord:{}", receiver.url("/flaky")),
            format!("slack:{}", receiver.url("/gone")),
        ],
        ..args()
    });
    notifier.notify(&error_event("boom")).await;
    assert_eq!(
        flushed(&notifier).await,
        NotifyStats {
            sent: 1,
            failed: 1,
            retries: 2,
            ..NotifyStats::default()
        }
    );
    assert_eq!(receiver.requests_to("/flaky").len(), 3);
    // A 404 will not get better: one attempt only.
    assert_eq!(receiver.requests_to("/gone").len(), 1);
}

#[tokio::test]
async fn dead_and_slow_targets_never_block_the_caller() {
    let receiver = Receiver::start().await.unwrap();
    let notifier = start(NotifyArgs {
        notify_liquidations: vec![
            format!("discord:{}", dead_url("/dead")),
            format!("slack:{}", receiver.url("/slow")),
            format!("discord:{}", receiver.url("/healthy")),
        ],
        notify_timeout_ms: 200,
        notify_retries: 1,
        ..args()
    });
    let started = Instant::now();
    for n in 0..5 {
        notifier
            .notify(&attempt(n, LiquidationOutcome::Succeeded))
            .await;
    }
    // Waiting on the slow target would take 5 × 2 × 200 ms.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "notify took {elapsed:?}"
    );
    // The healthy target is not held up by the other two.
    wait_for(
        || async { receiver.requests_to("/healthy").len() == 5 },
        Duration::from_secs(2),
    )
    .await
    .expect("the healthy target got every notification while the others were failing");
    assert_eq!(
        flushed(&notifier).await,
        NotifyStats {
            sent: 5,
            failed: 10,
            retries: 10,
            ..NotifyStats::default()
        }
    );
}

#[tokio::test]
async fn a_full_queue_drops_instead_of_waiting() {
    let receiver = Receiver::start().await.unwrap();
    let notifier = start(NotifyArgs {
        notify_errors: vec![format!("slack:{}", receiver.url("/slow"))],
        notify_timeout_ms: 10_000,
        notify_queue_size: 2,
        ..args()
    });
    let started = Instant::now();
    for n in 0..50 {
        notifier.notify(&error_event(&format!("error {n}"))).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500),
        "notify took {elapsed:?}"
    );
    let stats = notifier.stats();
    // One in the sender's hands, two queued, the rest dropped.
    assert!(stats.dropped >= 47, "{stats:?}");
    assert!(stats.pending <= 3, "{stats:?}");
    assert!(!notifier.flush(Duration::from_millis(50)).await);
}

#[tokio::test]
async fn metrics_count_results_per_target_kind() {
    let receiver = Receiver::start().await.unwrap();
    let notifier = start(NotifyArgs {
        notify_errors: vec![
            format!("discord:{}", receiver.url("/ok")),
            format!("slack:{}", dead_url("/dead")),
        ],
        notify_retries: 0,
        ..args()
    });
    let registry = prometheus::Registry::new_custom(Some("redline".into()), None).unwrap();
    notifier.register_metrics(&registry).unwrap();
    notifier.notify(&error_event("x")).await;
    flushed(&notifier).await;
    let mut text = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut text,
    )
    .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(r#"redline_notifications_total{result="sent",target="discord"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"redline_notifications_total{result="failed",target="slack"} 1"#),
        "{text}"
    );
}

/// A `Write` into a shared buffer, to capture log output.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so the sending tasks log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn secrets_stay_out_of_logs_errors_and_debug_output() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let receiver = Receiver::start().await.unwrap();
    receiver.script(&format!("/api/bot{TOKEN}/sendMessage"), &[(401, None)]);
    let args = NotifyArgs {
        notify_liquidations: vec![format!(
            "discord:{}",
            dead_url(&format!("/{WEBHOOK_SECRET}"))
        )],
        notify_errors: vec![
            format!("telegram:-1@{TOKEN}"),
            format!("slack:{}", receiver.url(&format!("/slow/{WEBHOOK_SECRET}"))),
        ],
        notify_telegram_api: receiver.url("/api"),
        notify_timeout_ms: 100,
        notify_retries: 1,
        ..args()
    };
    let config = args.config().unwrap();
    let notifier = args.start().unwrap();
    notifier.notify(&error_event("e")).await;
    notifier
        .notify(&attempt(1, LiquidationOutcome::Failed))
        .await;
    let stats = flushed(&notifier).await;
    assert_eq!(stats.failed, 3, "{stats:?}");
    // Telegram did get the token in its path (that is how the Bot API works).
    assert_eq!(
        receiver
            .requests_to(&format!("/api/bot{TOKEN}/sendMessage"))
            .len(),
        1
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("notification not delivered"), "{logs}");
    assert!(logs.contains("telegram:-1@***"), "{logs}");
    let debug = format!("{args:?} {config:?} {notifier:?}");
    assert!(debug.contains("discord:http://127.0.0.1:"), "{debug}");
    for secret in [TOKEN, "secretBotToken", WEBHOOK_SECRET] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    notify: NotifyArgs,
}

// The only test here that reads the NOTIFY_* environment variables.
#[test]
fn flags_repeat_env_lists_split_and_errors_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("l.csv");

    let cli = Cli::try_parse_from([
        "svc",
        "--notify-errors",
        "slack:https://hooks.slack.com/services/T/B/x",
        "--notify-errors",
        &format!("telegram:42@{TOKEN}"),
        "--notify-failed-liquidations",
        &format!("csvfile:{}", csv.display()),
    ])
    .unwrap();
    let config = cli.notify.config().unwrap();
    assert_eq!(config.routes.len(), 3);
    // Flags are read in order: liquidations, successful, failed, errors.
    let kinds: Vec<&str> = config
        .routes
        .iter()
        .map(|(t, _)| t.kind().as_str())
        .collect();
    assert_eq!(kinds, ["csvfile", "slack", "telegram"]);
    assert!(config.routes[0].1.failed_liquidations && !config.routes[0].1.errors);
    assert!(config.routes[1].1.errors && config.routes[2].1.errors);

    // Env lists are comma-separated; a stray comma names no target.
    std::env::set_var(
        "NOTIFY_SUCCESSFUL_LIQUIDATIONS",
        format!("csvfile:{},telegram:7@{TOKEN},", csv.display()),
    );
    let from_env = Cli::try_parse_from(["svc"]);
    let help = Cli::command().render_long_help().to_string();
    std::env::remove_var("NOTIFY_SUCCESSFUL_LIQUIDATIONS");
    let config = from_env.unwrap().notify.config().unwrap();
    assert_eq!(config.routes.len(), 2);
    assert!(config.routes.iter().all(|(_, s)| s.successful_liquidations));
    assert!(help.contains("NOTIFY_SUCCESSFUL_LIQUIDATIONS"), "{help}");
    assert!(!help.contains("secretBotToken"), "{help}");

    let error = |flag: &str, target: &str| {
        let cli = Cli::try_parse_from(["svc", flag, target]).unwrap();
        let error = cli.notify.config().unwrap_err().to_string();
        assert!(error.starts_with(flag), "{error}");
        assert!(!error.contains("secretBotToken"), "{error}");
        error
    };
    let e = error("--notify-errors", &format!("csvfile:{}", csv.display()));
    assert!(e.contains("liquidations only"), "{e}");
    let e = error("--notify-liquidations", &format!("telegram:chat@{TOKEN}"));
    assert!(e.contains("`telegram:chat@***`"), "{e}");
    let e = error("--notify-liquidations", "telegram:5@notatoken");
    assert!(e.contains("bot token"), "{e}");
    let e = error("--notify-successful-liquidations", "mattermost:https://x/y");
    assert!(e.contains("unknown kind `mattermost`"), "{e}");
    let e = error(
        "--notify-failed-liquidations",
        "discord:hooks.example.com/abc",
    );
    assert!(e.contains("`discord:***`"), "{e}");
    let e = error("--notify-errors", "csvfile:/nonexistent-dir/x.csv");
    assert!(e.contains("/nonexistent-dir"), "{e}");

    let cli = Cli::try_parse_from(["svc", "--notify-telegram-api", "api.telegram.org"]).unwrap();
    let e = cli.notify.config().unwrap_err().to_string();
    assert!(e.starts_with("--notify-telegram-api"), "{e}");
}

#[tokio::test]
async fn no_targets_means_nothing_to_do() {
    let notifier = NotifyArgs::default().start().unwrap();
    assert!(!notifier.is_enabled());
    notifier.notify(&error_event("x")).await;
    assert_eq!(notifier.stats(), NotifyStats::default());
    assert!(!Notifier::disabled().is_enabled());
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let error = NotifyArgs::default().start().unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[tokio::test]
async fn a_repeated_error_is_sent_once_per_window() {
    let receiver = Receiver::start().await.unwrap();
    let notifier = start(NotifyArgs {
        notify_errors: vec![format!("slack:{}", receiver.url("/errors"))],
        notify_liquidations: vec![format!("discord:{}", receiver.url("/liquidations"))],
        ..args()
    });
    assert!(
        notifier
            .error("manager", "ALARM: no new block after 7")
            .await
    );
    assert!(
        !notifier
            .error("manager", "ALARM: no new block after 7")
            .await
    );
    assert!(
        notifier
            .error("manager", "ALARM: no new block after 9")
            .await
    );
    let stats = flushed(&notifier).await;
    assert_eq!(stats.sent, 2, "{stats:?}");
    let texts: Vec<String> = receiver
        .requests_to("/errors")
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "[redline] manager error: ALARM: no new block after 7",
            "[redline] manager error: ALARM: no new block after 9"
        ]
    );
    // Errors never reach a target that only takes liquidations.
    assert!(receiver.requests_to("/liquidations").is_empty());
    let quiet = start(NotifyArgs {
        notify_liquidations: vec![format!("discord:{}", receiver.url("/liquidations"))],
        ..args()
    });
    assert!(!quiet.error("manager", "nobody listens").await);
}

#[test]
fn workers_get_the_targets_as_their_env_twins() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        notify: NotifyArgs,
    }
    let cli = Cli::try_parse_from([
        "manager",
        "--notify-liquidations",
        "discord:https://discord.com/api/webhooks/1/x",
        "--notify-liquidations=csvfile:/tmp/l.csv",
        "--notify-errors",
        "slack:https://hooks.slack.com/services/T/B/y",
        "--notify-retries",
        "5",
    ])
    .unwrap();
    let env: std::collections::BTreeMap<String, String> =
        cli.notify.worker_env().into_iter().collect();
    assert_eq!(
        env["NOTIFY_LIQUIDATIONS"],
        "discord:https://discord.com/api/webhooks/1/x,csvfile:/tmp/l.csv"
    );
    assert_eq!(
        env["NOTIFY_ERRORS"],
        "slack:https://hooks.slack.com/services/T/B/y"
    );
    assert!(!env.contains_key("NOTIFY_FAILED_LIQUIDATIONS"));
    assert_eq!(env["NOTIFY_RETRIES"], "5");
    // Read back as a worker reads its environment: the same targets.
    let back = Cli::try_parse_from([
        "liquidator".to_string(),
        format!("--notify-liquidations={}", env["NOTIFY_LIQUIDATIONS"]),
    ])
    .unwrap();
    assert_eq!(
        back.notify.notify_liquidations,
        cli.notify.notify_liquidations
    );
    // Without targets the workers' own environment stays in charge.
    let none = Cli::try_parse_from(["manager"]).unwrap();
    assert!(none.notify.worker_env().is_empty());
}
