//! The external strategy model with real child processes (`sh -c` scripts).

use std::str::FromStr;
use std::time::{Duration, Instant};

use cosmwasm_std::{Decimal, Uint128};
use mars::value::Value;
use redline_liquidator::model::{ModelArgs, ModelStrategy};
use redline_liquidator::strategy::{Opportunity, Strategy};

fn opportunity(account: &str, profit: &str, debt: u128) -> Opportunity {
    Opportunity {
        chain_id: "devnet-1".into(),
        protocol: "red_bank".into(),
        account: account.into(),
        height: 10,
        candidate_height: 9,
        liquidation_health_factor: Some(Decimal::percent(95)),
        debt_denom: "uusdc".into(),
        collateral_denom: "uatom".into(),
        debt_to_repay: Uint128::new(debt),
        collateral_to_receive: Uint128::new(debt / 10),
        liquidation_bonus: Decimal::percent(5),
        debt_price: Decimal::one(),
        collateral_price: Decimal::from_str("10").unwrap(),
        expected_profit_usd: Value::from_str(profit).unwrap(),
        wallet: "osmo1wallet".into(),
    }
}

/// A shell model: one answer per input line, picked by the account in the line.
fn shell_model(script_body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.sh");
    std::fs::write(&path, script_body).unwrap();
    let command = format!("sh {}", path.display());
    (dir, command)
}

const ANSWERS: &str = r#"
while IFS= read -r line; do
  case "$line" in
    *'"account":"go"'*) echo '{"go":true}' ;;
    *'"account":"capped"'*) echo '{"go":true,"max_repay":"123"}' ;;
    *'"account":"garbage"'*) echo 'definitely not json' ;;
    *'"account":"hang"'*) sleep 30 ;;
    *) echo "declining $line" >&2; echo '{"go":false}' ;;
  esac
done
"#;

#[tokio::test]
async fn a_model_answers_go_no_go_and_caps() {
    let (_dir, command) = shell_model(ANSWERS);
    let model = ModelStrategy::new(command, Duration::from_secs(5));
    let go = model.decide(&opportunity("go", "5", 1000)).await;
    assert!(go.go);
    assert_eq!(go.max_repay, None);
    let capped = model.decide(&opportunity("capped", "5", 1000)).await;
    assert!(capped.go);
    assert_eq!(capped.max_repay, Some(Uint128::new(123)));
    let no = model.decide(&opportunity("other", "5", 1000)).await;
    assert!(!no.go);
    assert_eq!(model.starts(), 1, "one child answers every question");
}

#[tokio::test]
async fn garbage_is_no_go_and_restarts_the_model() {
    let (_dir, command) = shell_model(ANSWERS);
    let model = ModelStrategy::new(command, Duration::from_secs(5));
    assert!(model.decide(&opportunity("go", "5", 1000)).await.go);
    let garbage = model.decide(&opportunity("garbage", "5", 1000)).await;
    assert!(!garbage.go);
    let reason = garbage.reason.unwrap();
    assert!(reason.contains("definitely not json"), "{reason}");
    assert!(model.decide(&opportunity("go", "5", 1000)).await.go);
    assert_eq!(model.starts(), 2, "the garbage answer restarted the model");
}

#[tokio::test]
async fn a_hanging_model_times_out_to_no_go() {
    let (_dir, command) = shell_model(ANSWERS);
    let model = ModelStrategy::new(command, Duration::from_millis(300));
    let started = Instant::now();
    let hung = model.decide(&opportunity("hang", "5", 1000)).await;
    assert!(!hung.go);
    assert!(hung.reason.unwrap().contains("no answer within"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(model.decide(&opportunity("go", "5", 1000)).await.go);
    assert_eq!(model.starts(), 2);
}

#[tokio::test]
async fn a_model_that_exits_is_restarted_on_the_next_opportunity() {
    // Answers one opportunity, then exits.
    let (_dir, command) = shell_model("read -r line; echo '{\"go\":true}'\n");
    let model = ModelStrategy::new(command, Duration::from_secs(5));
    assert!(model.decide(&opportunity("a", "5", 1000)).await.go);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(model.decide(&opportunity("b", "5", 1000)).await.go);
    assert_eq!(model.starts(), 2);
}

#[tokio::test]
async fn a_model_that_cannot_start_is_no_go() {
    let model = ModelStrategy::new("exit 3", Duration::from_secs(5));
    let decision = model.decide(&opportunity("a", "5", 1000)).await;
    assert!(!decision.go);
    assert!(decision.reason.unwrap().contains("exited"));
}

#[tokio::test]
async fn the_sample_python_model_goes_above_the_profit_threshold() {
    let script = testkit::workspace_root().join("examples/model.py");
    let command = format!(
        "MODEL_MIN_PROFIT_USD=2 MODEL_MAX_REPAY=500 python3 {}",
        script.display()
    );
    let model = ModelStrategy::new(command, Duration::from_secs(10));
    let poor = model.decide(&opportunity("poor", "1.5", 1000)).await;
    assert!(!poor.go);
    let rich = model.decide(&opportunity("rich", "2.5", 1000)).await;
    assert!(rich.go);
    assert_eq!(rich.max_repay, Some(Uint128::new(500)));
    let small = model.decide(&opportunity("small", "3", 100)).await;
    assert!(small.go);
    assert_eq!(small.max_repay, None);
}

#[test]
fn flags_are_validated() {
    let none = ModelArgs {
        command: None,
        timeout_ms: 2000,
    };
    assert!(none.validate().unwrap().is_none());
    // A bad flag is refused with the flag named.
    let bad = [("  ", 2000, "--model"), ("cat", 0, "--model-timeout-ms")];
    for (command, timeout_ms, named) in bad {
        let args = ModelArgs {
            command: Some(command.into()),
            timeout_ms,
        };
        let error = args.validate().unwrap_err().to_string();
        assert!(
            error.contains(named),
            "{command:?}, {timeout_ms} ms: {error}"
        );
    }
}
