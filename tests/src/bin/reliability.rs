//! `make reliability`: renders RELIABILITY.md from the report fragments the fault tests
//! (`chaos_kill`, `chaos_redis`, `chaos_rpc`) wrote (see `redline_tests::chaos::report`).
//! `make reliability` runs those tests first; this binary only reads their fragments.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use redline_tests::chaos::report;

#[derive(Debug, Parser)]
#[command(
    name = "reliability",
    about = "Writes RELIABILITY.md from the fault tests' report fragments"
)]
struct Cli {
    /// Where the fault tests wrote their fragments (default: target/reliability of the
    /// workspace).
    #[arg(long, env = report::DIR_ENV)]
    dir: Option<PathBuf>,
    /// Where to write the report.
    #[arg(long, default_value = "RELIABILITY.md")]
    output: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = cli.dir.unwrap_or_else(report::dir);
    let fragments = report::read_dir(&dir)?;
    let source = dir
        .strip_prefix(testkit::workspace_root())
        .unwrap_or(&dir)
        .display()
        .to_string();
    let markdown = report::render(&fragments, &source)?;
    std::fs::write(&cli.output, markdown)
        .with_context(|| format!("writing {}", cli.output.display()))?;
    eprintln!(
        "wrote {} from {} fragments in {}",
        cli.output.display(),
        fragments.len(),
        dir.display()
    );
    Ok(())
}
