//! What the reports (BENCHMARKS.md, RELIABILITY.md) record about the machine and the checkout
//! they were measured on.

use std::path::Path;
use std::process::Command;

/// The trimmed output of `program args`, run in `dir` (else the current directory), when it
/// succeeds.
pub fn command_output(dir: Option<&Path>, program: &str, args: &[&str]) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The CPU model, from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
}

/// The total memory, from /proc/meminfo: `N.N GiB`.
pub fn memory() -> Option<String> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
}

/// The CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The short commit hash of the checkout at `dir` (else the current directory), with "(with
/// uncommitted changes)" when `git status --porcelain` with `status_flags` lists anything;
/// `unknown` outside a checkout.
pub fn commit(dir: Option<&Path>, status_flags: &[&str]) -> String {
    let git = |args: &[&str]| command_output(dir, "git", args);
    let Some(hash) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    let status: Vec<&str> = ["status", "--porcelain"]
        .into_iter()
        .chain(status_flags.iter().copied())
        .collect();
    if git(&status).is_some_and(|s| !s.is_empty()) {
        format!("{hash} (with uncommitted changes)")
    } else {
        hash
    }
}
