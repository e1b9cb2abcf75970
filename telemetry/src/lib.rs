//! Logging setup shared by every binary: human-readable on a terminal, JSON lines in production.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format: `auto` picks `pretty` on a terminal and `json` elsewhere (ECS, files).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Log filter in `tracing` EnvFilter syntax, e.g. `info,redline_service=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--log-level `{value}` is not a valid filter: {reason}")]
    BadFilter { value: String, reason: String },
}

/// Installs the global subscriber. Safe to call twice (the second call is a no-op), which keeps
/// in-process tests that start several services from failing.
pub fn init(args: &LogArgs) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|e| TelemetryError::BadFilter {
        value: args.log_level.clone(),
        reason: e.to_string(),
    })?;
    let json = match args.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filter_names_the_flag() {
        let args = LogArgs {
            log_format: LogFormat::Json,
            log_level: "info,[[[".into(),
        };
        let err = init(&args).unwrap_err().to_string();
        assert!(err.contains("--log-level"), "{err}");
    }
}
