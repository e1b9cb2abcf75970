//! What gets notified, and how it reads in a chat message and in a CSV row.

use cosmwasm_std::{SignedDecimal, Uint128};
use serde::Serialize;

use redline_pipeline::jobs::ProtocolKind;

/// How a liquidation attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationOutcome {
    /// The liquidation transaction was included and succeeded.
    Succeeded,
    /// It was refused (simulation, CheckTx, DeliverTx) or never made it into a block.
    Failed,
}

impl LiquidationOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            LiquidationOutcome::Succeeded => "succeeded",
            LiquidationOutcome::Failed => "failed",
        }
    }
}

/// One liquidation a liquidator tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiquidationAttempt {
    pub chain_id: String,
    pub protocol: ProtocolKind,
    /// The liquidated account (Red Bank user address, or credit-manager account id).
    pub account: String,
    /// The liquidator's wallet address.
    pub liquidator: String,
    pub debt_denom: String,
    /// Debt repaid (or offered, when the attempt failed), in the debt denom's base units.
    pub debt_amount: Uint128,
    pub collateral_denom: String,
    /// Collateral received (or expected, when the attempt failed), in base units.
    pub collateral_amount: Uint128,
    /// Profit in USD as the liquidator reckons it: realised when known (negative for a failed
    /// tx that spent its fee), else the plan's expected profit.
    pub profit_usd: Option<SignedDecimal>,
    /// Hash of the liquidation transaction, once it was signed.
    pub tx_hash: Option<String>,
    /// Block the transaction was included in.
    pub height: Option<u64>,
    pub outcome: LiquidationOutcome,
    /// Why it failed.
    pub error: Option<String>,
}

/// Something an operator wants to hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NotifyEvent {
    /// Goes to `--notify-liquidations` and, by outcome, to `--notify-successful-liquidations`
    /// or `--notify-failed-liquidations`. Boxed: it is large beside the other variant.
    LiquidationAttempt(Box<LiquidationAttempt>),
    /// Goes to `--notify-errors`.
    Error { service: String, message: String },
}

impl From<LiquidationAttempt> for NotifyEvent {
    fn from(attempt: LiquidationAttempt) -> Self {
        NotifyEvent::LiquidationAttempt(Box::new(attempt))
    }
}

impl NotifyEvent {
    /// The event as one human-readable message.
    pub fn text(&self) -> String {
        match self {
            NotifyEvent::LiquidationAttempt(a) => {
                // The two outcomes read alike but for these words around the amounts.
                let (verdict, before_debt, before_collateral) = match a.outcome {
                    LiquidationOutcome::Succeeded => ("succeeded", " repaid", ", received"),
                    LiquidationOutcome::Failed => ("FAILED", ", repaying", " for"),
                };
                let mut text = format!(
                    "[redline] Liquidation {verdict} on {} ({}): account {}{before_debt} {} {}\
                     {before_collateral} {} {}",
                    a.chain_id,
                    a.protocol,
                    a.account,
                    a.debt_amount,
                    a.debt_denom,
                    a.collateral_amount,
                    a.collateral_denom
                );
                if let Some(profit) = a.profit_usd {
                    text.push_str(&format!(", profit {profit} USD"));
                }
                if let Some(hash) = &a.tx_hash {
                    text.push_str(&format!("; tx {hash}"));
                }
                if let Some(height) = a.height {
                    text.push_str(&format!(" at height {height}"));
                }
                text.push_str(&format!("; liquidator {}", a.liquidator));
                if let Some(error) = &a.error {
                    text.push_str(&format!("; error: {error}"));
                }
                text
            }
            NotifyEvent::Error { service, message } => {
                format!("[redline] {service} error: {message}")
            }
        }
    }
}

/// Columns of a `csvfile:` target, one row per liquidation attempt.
pub(crate) const CSV_HEADER: [&str; 14] = [
    "timestamp",
    "chain_id",
    "protocol",
    "account",
    "liquidator",
    "outcome",
    "debt_denom",
    "debt_amount",
    "collateral_denom",
    "collateral_amount",
    "profit_usd",
    "tx_hash",
    "height",
    "error",
];

pub(crate) fn csv_header_line() -> String {
    csv_line(CSV_HEADER.iter().map(|s| s.to_string()))
}

/// The CSV row of a liquidation attempt notified at `at_ms` (Unix milliseconds).
pub(crate) fn csv_row(attempt: &LiquidationAttempt, at_ms: u64) -> String {
    let a = attempt;
    csv_line([
        rfc3339(at_ms),
        a.chain_id.clone(),
        a.protocol.to_string(),
        a.account.clone(),
        a.liquidator.clone(),
        a.outcome.as_str().to_string(),
        a.debt_denom.clone(),
        a.debt_amount.to_string(),
        a.collateral_denom.clone(),
        a.collateral_amount.to_string(),
        a.profit_usd.map(|p| p.to_string()).unwrap_or_default(),
        a.tx_hash.clone().unwrap_or_default(),
        a.height.map(|h| h.to_string()).unwrap_or_default(),
        a.error.clone().unwrap_or_default(),
    ])
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let mut line = fields
        .into_iter()
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn rfc3339(at_ms: u64) -> String {
    let secs = i64::try_from(at_ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(at_ms % 1000).unwrap_or(0) * 1_000_000;
    tendermint::Time::from_unix_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|_| at_ms.to_string())
}

/// `text` cut to at most `max_chars` characters (chat services refuse longer messages), with an
/// ellipsis when it was cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv_line(["a".into(), "b,c".into(), "say \"hi\"".into(), "x\ny".into()]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\n"
        );
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn liquidation_texts_say_what_happened() {
        let attempt = |outcome| {
            NotifyEvent::from(LiquidationAttempt {
                chain_id: "devnet-1".into(),
                protocol: ProtocolKind::RedBank,
                account: "osmo1borrower".into(),
                liquidator: "osmo1liquidator".into(),
                debt_denom: "uusdc".into(),
                debt_amount: Uint128::new(10),
                collateral_denom: "uosmo".into(),
                collateral_amount: Uint128::new(25),
                profit_usd: None,
                tx_hash: None,
                height: None,
                outcome,
                error: None,
            })
        };
        let protocol = ProtocolKind::RedBank;
        assert_eq!(
            attempt(LiquidationOutcome::Succeeded).text(),
            format!(
                "[redline] Liquidation succeeded on devnet-1 ({protocol}): account osmo1borrower \
                 repaid 10 uusdc, received 25 uosmo; liquidator osmo1liquidator"
            )
        );
        assert_eq!(
            attempt(LiquidationOutcome::Failed).text(),
            format!(
                "[redline] Liquidation FAILED on devnet-1 ({protocol}): account osmo1borrower, \
                 repaying 10 uusdc for 25 uosmo; liquidator osmo1liquidator"
            )
        );
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
    }
}
