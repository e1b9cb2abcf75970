//! The Grafana dashboard in `deploy/grafana/redline.json` is valid and only queries metrics the
//! services register: every `redline_<name>` in a query must appear as the string literal
//! `"<name>"` in a metrics-defining source file of a service (the registry adds the `redline_`
//! prefix; histograms add `_bucket`, `_sum` and `_count`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

const PREFIX: &str = "redline_";
const SERVICE_SOURCES: &[&str] = &[
    "collector/src",
    "health-checker/src",
    "liquidator/src",
    "manager/src",
    "mars/src",
    "chain/src",
    "pipeline/src",
    "service/src",
];

fn dashboard() -> Value {
    let path = testkit::workspace_root().join("deploy/grafana/redline.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for panel in panels {
            out.push(panel);
            if let Some(nested) = panel["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().expect("a panels array"),
        &mut out,
    );
    out
}

/// The `redline_*` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(found) = expr[from..].find(PREFIX) {
        let start = from + found;
        // Part of a longer identifier (e.g. `not_redline_x`): not a metric name of ours.
        let inside_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(expr.len(), |n| start + n);
        if !inside_word {
            names.push(expr[start..end].to_string());
        }
        from = end;
    }
    names
}

/// `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// String literals of the files that define Prometheus metrics, with whether the file defines
/// a histogram.
fn registered_literals() -> BTreeMap<String, bool> {
    let root = testkit::workspace_root();
    let mut files = Vec::new();
    for dir in SERVICE_SOURCES {
        rust_files(&root.join(dir), &mut files);
    }
    let mut literals = BTreeMap::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if !text.contains("prometheus") {
            continue;
        }
        let histogram = text.contains("Histogram");
        let mut rest = text.as_str();
        while let Some(open) = rest.find('"') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('"') else {
                break;
            };
            let literal = &after[..close];
            if !literal.is_empty()
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                let entry = literals.entry(literal.to_string()).or_insert(false);
                *entry |= histogram;
            }
            rest = &after[close + 1..];
        }
    }
    literals
}

#[test]
fn dashboard_is_a_grafana_dashboard() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "redline-pipeline");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
        "a datasource variable lets the dashboard be imported against any Prometheus"
    );

    let panels = panels(&dashboard);
    let mut ids = HashSet::new();
    let mut queries = 0;
    for panel in &panels {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "panel {id} has no title");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel `{title}` is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel `{title}`"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel `{title}` queries nothing");
        let mut ref_ids = HashSet::new();
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            assert!(
                !metric_names(expr).is_empty(),
                "panel `{title}`: `{expr}` queries no redline metric"
            );
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "panel `{title}`: unbalanced parentheses in `{expr}`"
            );
            assert!(ref_ids.insert(target["refId"].as_str().unwrap().to_string()));
            queries += 1;
        }
    }
    assert!(queries >= 20, "only {queries} queries");
}

#[test]
fn dashboard_only_queries_registered_metrics() {
    let literals = registered_literals();
    let dashboard = dashboard();
    let mut queried = BTreeSet::new();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queried.extend(metric_names(target["expr"].as_str().unwrap_or_default()));
        }
    }
    let mut unknown = Vec::new();
    for full in &queried {
        let name = full.strip_prefix(PREFIX).unwrap();
        let registered = literals.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|base| literals.get(base) == Some(&true))
            });
        if !registered {
            unknown.push(full.clone());
        }
    }
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics no service registers: {unknown:?}"
    );
    // The sections the dashboard exists for.
    for needed in [
        "redline_manager_last_block_height",
        "redline_collector_index_lag_blocks",
        "redline_health_accounts_checked_total",
        "redline_liquidator_attempts_total",
        "redline_liquidator_profit_usd_total",
        "redline_manager_backlog_units",
        "redline_manager_workers",
    ] {
        assert!(queried.contains(needed), "{needed} is not on the dashboard");
    }
}

#[test]
fn metric_names_are_read_from_expressions() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.95, sum by (le) (rate(redline_a_bucket[5m]))) + redline_b{x=\"y\"}"
        ),
        ["redline_a_bucket", "redline_b"]
    );
    assert!(metric_names("sum(not_redline_x)").is_empty());
}

/// The dashboard has a chain selector and every query keeps to the chains it selects (the
/// services label every metric with `chain_id`).
#[test]
fn every_query_is_filtered_by_the_chain_variable() {
    let dashboard = dashboard();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let chain = variables
        .iter()
        .find(|v| v["name"] == "chain")
        .expect("a `chain` variable");
    assert!(chain["query"]["query"]
        .as_str()
        .is_some_and(|q| q.contains("chain_id")));
    let mut exprs = 0;
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            exprs += 1;
            let selectors = expr.matches("chain_id=~\"$chain\"").count();
            assert_eq!(
                selectors,
                metric_names(expr).len(),
                "each metric of `{expr}` must be filtered by chain_id=~\"$chain\""
            );
        }
    }
    assert!(exprs > 10, "only {exprs} queries found");
}
