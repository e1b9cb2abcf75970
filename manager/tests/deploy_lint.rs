//! deploy/redline.yaml (the ECS Fargate deployment) passes `cfn-lint` (PyPI, installed by
//! `make deps-py`) with informational checks on, and names only environment variables the
//! services and the ecs backend read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, Parser};
use redline_manager::scaler::ecs::EcsConfig;
use redline_manager::scaler::WorkerKind;
use redline_pipeline::index::IndexArgs;
use redline_service::service::ServiceArgs;

const PYTHON: &str = "python3";

fn template() -> PathBuf {
    testkit::workspace_root()
        .join("deploy")
        .join("redline.yaml")
}

/// Runs cfn-lint through the Python that has it (the console script's location depends on
/// how pip was set up; the module is always importable).
fn cfn_lint(path: &Path) -> std::process::Output {
    let installed = Command::new(PYTHON)
        .args(["-c", "import cfnlint"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    assert!(
        installed,
        "cfn-lint is not installed for {PYTHON}: run `make deps-py` (pip install 'moto[server]' cfn-lint)"
    );
    Command::new(PYTHON)
        .args([
            "-c",
            "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())",
            "--include-checks",
            "I",
            "--",
        ])
        .arg(path)
        .output()
        .expect("running cfn-lint")
}

#[test]
fn the_deployment_template_passes_cfn_lint() {
    let output = cfn_lint(&template());
    assert!(
        output.status.success(),
        "cfn-lint found problems in deploy/redline.yaml ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cfn_lint_catches_a_broken_template() {
    // The linter really checks: the same template with a property ECS does not have fails.
    let text = std::fs::read_to_string(template()).unwrap();
    let broken = text.replacen(
        "      NetworkMode: awsvpc\n",
        "      NetworkMode: awsvpc\n      NoSuchProperty: true\n",
        1,
    );
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, broken).unwrap();
    let output = cfn_lint(&path);
    assert!(
        !output.status.success(),
        "cfn-lint passed a broken template"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("NoSuchProperty"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[derive(Parser)]
struct Everything {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    index: IndexArgs,
    #[command(flatten)]
    ecs: EcsConfig,
}

#[test]
fn the_template_sets_only_variables_the_binaries_read() {
    let known: BTreeSet<String> = Everything::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .chain(["MNEMONIC".to_string()])
        .collect();
    let text = std::fs::read_to_string(template()).unwrap();
    let mut named = BTreeSet::new();
    for line in text.lines() {
        for piece in line.split("Name: ").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > 2 && name.chars().all(|c| !c.is_ascii_lowercase()) {
                named.insert(name);
            }
        }
    }
    assert!(
        named.contains("REDIS_URL") && named.contains("ECS_CLUSTER"),
        "{named:?}"
    );
    let unknown: Vec<&String> = named.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "deploy/redline.yaml sets variables no flag reads: {unknown:?}"
    );
    // The manager finds the worker services by prefix + service name.
    assert!(text.contains("ECS_SERVICE_PREFIX, Value: !Sub \"${AWS::StackName}-\""));
    for kind in WorkerKind::ALL {
        assert!(
            text.contains(&format!(
                "ServiceName: !Sub ${{AWS::StackName}}-{}",
                kind.service()
            )),
            "no service for {kind}"
        );
    }
    assert!(text.contains("ECS_TASK_DEFINITIONS, Value: existing"));
}
