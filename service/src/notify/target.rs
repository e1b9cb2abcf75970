//! Notification targets as operators write them (`discord:URL`, `slack:URL`,
//! `telegram:CHAT@TOKEN`, `csvfile:PATH`), parsed and validated, and always shown redacted:
//! webhook URLs and bot tokens are credentials (anyone holding one can post to the channel).

use std::fmt;
use std::path::PathBuf;

use url::Url;

/// What a target is, for logs and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Discord,
    Slack,
    Telegram,
    CsvFile,
}

impl TargetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetKind::Discord => "discord",
            TargetKind::Slack => "slack",
            TargetKind::Telegram => "telegram",
            TargetKind::CsvFile => "csvfile",
        }
    }

    fn from_prefix(prefix: &str) -> Option<TargetKind> {
        match prefix {
            "discord" => Some(TargetKind::Discord),
            "slack" => Some(TargetKind::Slack),
            "telegram" => Some(TargetKind::Telegram),
            "csvfile" => Some(TargetKind::CsvFile),
            _ => None,
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a notification goes. `Debug` and `Display` show it redacted (see
/// [`Target::redacted`]); the secrets are only reachable by the sender.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A Discord channel webhook: `POST {"content": text}`.
    Discord { webhook: Url },
    /// A Slack incoming webhook: `POST {"text": text}`.
    Slack { webhook: Url },
    /// A Telegram chat, through a bot: `POST {api}/bot{token}/sendMessage`.
    Telegram { chat_id: String, bot_token: String },
    /// A CSV file that gets one row per liquidation attempt (header written when it is empty).
    CsvFile { path: PathBuf },
}

impl Target {
    /// Parses `KIND:DESTINATION`. The error text never contains the destination's secret part.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let raw = raw.trim();
        let Some((prefix, destination)) = raw.split_once(':') else {
            return Err(TargetError {
                shown: "***".into(),
                problem: "expected KIND:DESTINATION, one of discord:URL, slack:URL, \
                          telegram:CHAT@TOKEN or csvfile:PATH"
                    .into(),
            });
        };
        let Some(kind) = TargetKind::from_prefix(prefix) else {
            // Show the prefix only when it looks like a word: a pasted bare URL or token would
            // otherwise leak through here.
            let shown = if !prefix.is_empty()
                && prefix.len() <= 16
                && prefix.chars().all(|c| c.is_ascii_alphanumeric())
            {
                format!("{prefix}:***")
            } else {
                "***".into()
            };
            return Err(TargetError {
                problem: format!(
                    "unknown kind `{}`: expected discord:URL, slack:URL, telegram:CHAT@TOKEN \
                     or csvfile:PATH",
                    shown.trim_end_matches(":***")
                ),
                shown,
            });
        };
        let fail = |shown: String, problem: &str| TargetError {
            shown,
            problem: problem.to_string(),
        };
        match kind {
            TargetKind::Discord | TargetKind::Slack => {
                let webhook = Url::parse(destination).map_err(|e| {
                    fail(
                        format!("{kind}:***"),
                        &format!("the webhook is not a URL ({e})"),
                    )
                })?;
                let shown = format!("{kind}:{}", redact_url(&webhook));
                if !matches!(webhook.scheme(), "http" | "https") {
                    return Err(fail(shown, "the webhook URL must be http:// or https://"));
                }
                if webhook.host_str().is_none_or(str::is_empty) {
                    return Err(fail(shown, "the webhook URL has no host"));
                }
                Ok(match kind {
                    TargetKind::Discord => Target::Discord { webhook },
                    _ => Target::Slack { webhook },
                })
            }
            TargetKind::Telegram => {
                // Bot tokens (`123456:ABC-def_...`) never contain `@`; chat ids may start with
                // one (`@channelname`), hence the last `@`.
                let Some((chat_id, bot_token)) = destination.rsplit_once('@') else {
                    return Err(fail(
                        "telegram:***".into(),
                        "expected telegram:CHAT_ID@BOT_TOKEN",
                    ));
                };
                let shown = format!("telegram:{chat_id}@***");
                if !valid_chat_id(chat_id) {
                    return Err(fail(
                        shown,
                        "the chat id must be a number (e.g. -1001234567890) or @channelname",
                    ));
                }
                if !valid_bot_token(bot_token) {
                    return Err(fail(
                        shown,
                        "the bot token must look like 123456789:AAH... (digits, a colon, then \
                         letters, digits, `_` or `-`)",
                    ));
                }
                Ok(Target::Telegram {
                    chat_id: chat_id.to_string(),
                    bot_token: bot_token.to_string(),
                })
            }
            TargetKind::CsvFile => {
                let shown = format!("csvfile:{destination}");
                if destination.is_empty() {
                    return Err(fail(shown, "the file path is empty"));
                }
                let path = PathBuf::from(destination);
                if path.is_dir() {
                    return Err(fail(shown, "the path is a directory"));
                }
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| std::path::Path::new("."));
                if !parent.is_dir() {
                    return Err(fail(
                        shown,
                        &format!("directory {} does not exist", parent.display()),
                    ));
                }
                Ok(Target::CsvFile { path })
            }
        }
    }

    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Discord { .. } => TargetKind::Discord,
            Target::Slack { .. } => TargetKind::Slack,
            Target::Telegram { .. } => TargetKind::Telegram,
            Target::CsvFile { .. } => TargetKind::CsvFile,
        }
    }

    /// The target without its secrets, fit for logs and errors: webhooks keep scheme and host
    /// (`discord:https://discord.com/***`), Telegram keeps the chat id (`telegram:-100123@***`),
    /// CSV files keep their path.
    pub fn redacted(&self) -> String {
        match self {
            Target::Discord { webhook } | Target::Slack { webhook } => {
                format!("{}:{}", self.kind(), redact_url(webhook))
            }
            Target::Telegram { chat_id, .. } => format!("telegram:{chat_id}@***"),
            Target::CsvFile { path } => format!("csvfile:{}", path.display()),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A target that does not parse: `shown` is the target redacted as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub shown: String,
    pub problem: String,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target `{}`: {}", self.shown, self.problem)
    }
}

impl std::error::Error for TargetError {}

/// Scheme, host and port only: a webhook's path and query carry its secret.
fn redact_url(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/***", url.scheme()),
        None => format!("{}://{host}/***", url.scheme()),
    }
}

fn valid_chat_id(chat_id: &str) -> bool {
    if let Some(name) = chat_id.strip_prefix('@') {
        return !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    let digits = chat_id.strip_prefix('-').unwrap_or(chat_id);
    !digits.is_empty() && digits.len() <= 20 && digits.chars().all(|c| c.is_ascii_digit())
}

/// The token goes into the URL path, so only the characters Telegram issues are accepted.
fn valid_bot_token(token: &str) -> bool {
    let Some((bot_id, secret)) = token.split_once(':') else {
        return false;
    };
    !bot_id.is_empty()
        && bot_id.chars().all(|c| c.is_ascii_digit())
        && !secret.is_empty()
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHsecretSECRET_token-x";

    #[test]
    fn parses_each_kind() {
        let discord = Target::parse("discord:https://discord.com/api/webhooks/1/SECRET").unwrap();
        assert_eq!(discord.kind(), TargetKind::Discord);
        assert_eq!(discord.redacted(), "discord:https://discord.com/***");
        let slack = Target::parse("slack:https://hooks.slack.com/services/T/B/SECRET").unwrap();
        assert_eq!(slack.redacted(), "slack:https://hooks.slack.com/***");
        let telegram = Target::parse(&format!("telegram:-1001234@{TOKEN}")).unwrap();
        assert_eq!(
            telegram,
            Target::Telegram {
                chat_id: "-1001234".into(),
                bot_token: TOKEN.into()
            }
        );
        assert_eq!(format!("{telegram:?}"), "telegram:-1001234@***");
        let channel = Target::parse(&format!("telegram:@my_channel@{TOKEN}")).unwrap();
        assert_eq!(channel.redacted(), "telegram:@my_channel@***");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liquidations.csv");
        let csv = Target::parse(&format!("csvfile:{}", path.display())).unwrap();
        assert_eq!(csv, Target::CsvFile { path });
    }

    #[test]
    fn errors_never_show_secrets() {
        let cases = [
            format!("telegram:{TOKEN}"),
            format!("telegram:chat@{TOKEN}"),
            "telegram:123@AAHsecretSECRET".to_string(),
            "discord:not a url AAHsecretSECRET".to_string(),
            "discord:ftp://discord.com/AAHsecretSECRET".to_string(),
            "https://discord.com/api/webhooks/AAHsecretSECRET".to_string(),
            "telegarm:1@AAHsecretSECRET".to_string(),
            "AAHsecretSECRET".to_string(),
        ];
        for raw in cases {
            let error = Target::parse(&raw).unwrap_err();
            let text = format!("{error} {error:?}");
            assert!(!text.contains("AAHsecretSECRET"), "{raw} → {text}");
        }
        let unknown = Target::parse("telegarm:1@AAHsecretSECRET").unwrap_err();
        assert_eq!(unknown.shown, "telegarm:***");
        assert!(unknown.problem.contains("unknown kind `telegarm`"));
        let bad_chat = Target::parse(&format!("telegram:chat@{TOKEN}")).unwrap_err();
        assert_eq!(bad_chat.shown, "telegram:chat@***");
        let scheme = Target::parse("discord:ftp://discord.com/AAHsecretSECRET").unwrap_err();
        assert_eq!(scheme.shown, "discord:ftp://discord.com/***");
    }

    #[test]
    fn csv_file_needs_an_existing_directory() {
        let error = Target::parse("csvfile:/no/such/dir/x.csv").unwrap_err();
        assert!(error.problem.contains("/no/such/dir"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let error = Target::parse(&format!("csvfile:{}", dir.path().display())).unwrap_err();
        assert!(error.problem.contains("directory"), "{error}");
        assert!(Target::parse("csvfile:").is_err());
    }
}
