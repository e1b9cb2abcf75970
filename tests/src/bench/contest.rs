//! The contested runs: the liquidation run with the devnet's competing bot on the chain, and
//! who won what, read from the committed blocks ([`redline_devnet::competitor::tally`]).

use std::fmt::Write as _;

use cosmwasm_std::Decimal;
use mars::value::Value;
use redline_devnet::competitor::{Contest, Style};

use super::liquidation::{percentile, Figures};
use super::targets::Target;

/// Share of contested liquidations redline must win against the baseline bot.
pub const BASELINE_SHARE_GOAL_PERCENT: u64 = 95;

/// What one contested run measured.
#[derive(Debug, Clone)]
pub struct ContestFigures {
    pub style: Style,
    /// The competitor's latency after each block.
    pub delay_ms: u64,
    /// The gas price multiple the fast competitor paid.
    pub price_multiple: Decimal,
    /// Redline's `--max-fee-share`.
    pub max_fee_share: Decimal,
    /// Redline's `--assumed-competition`.
    pub assumed_competition: u32,
    pub contest: Contest,
    /// Fees redline paid for its liquidation txs, in USD.
    pub fees_usd: Value,
}

impl ContestFigures {
    /// Contested users redline won, and all contested users.
    pub fn share(&self) -> (usize, usize) {
        (
            self.contest.contested_won_by_others(),
            self.contest.contested.len(),
        )
    }

    fn share_text(&self) -> String {
        let (won, contested) = self.share();
        if contested == 0 {
            return "no liquidation contested".to_string();
        }
        format!(
            "{won} of {contested} ({:.1} %)",
            won as f64 * 100.0 / contested as f64
        )
    }

    /// Redline's fees per million dollars of its net profit.
    pub fn fees_per_dollar(&self, profit_usd: Value) -> String {
        let fees: f64 = self.fees_usd.to_string().parse().unwrap_or(0.0);
        let profit: f64 = profit_usd.to_string().parse().unwrap_or(0.0);
        if profit <= 0.0 {
            return format!("{} USD of fees, no profit", self.fees_usd);
        }
        format!(
            "{:.2} USD per million USD of profit ({} USD of fees, {} USD of profit after them)",
            fees / profit * 1e6,
            self.fees_usd,
            profit_usd
        )
    }

    /// The contested run's own targets (its run's usual ones come from [`Figures::targets`]).
    pub fn targets(&self, figures: &Figures) -> Vec<Target> {
        let (won, contested) = self.share();
        match self.style {
            Style::Baseline => vec![Target::enforced(
                "contested liquidations won against the baseline bot",
                format!("≥ {BASELINE_SHARE_GOAL_PERCENT} %"),
                self.share_text(),
                contested > 0 && won * 100 >= contested * BASELINE_SHARE_GOAL_PERCENT as usize,
            )],
            Style::Fast => vec![Target::informational(
                format!(
                    "contested liquidations won against the fast bot (max fee share {})",
                    self.max_fee_share
                ),
                "reported",
                format!(
                    "{}; fees {}",
                    self.share_text(),
                    self.fees_per_dollar(figures.profit_usd)
                ),
                true,
            )],
        }
    }

    /// The rows this run adds to its `BENCHMARKS.md` table.
    pub fn rows(&self, figures: &Figures) -> String {
        let mut md = String::new();
        let c = &self.contest;
        let _ = writeln!(
            md,
            "| Competitor | `{}` after {} ms, gas price × {}; redline's max fee share {}, assumed competition {} |",
            self.style,
            self.delay_ms,
            match self.style {
                Style::Baseline => Decimal::one(),
                Style::Fast => self.price_multiple,
            },
            self.max_fee_share,
            self.assumed_competition
        );
        let _ = writeln!(
            md,
            "| Won (first successful liquidation, from the blocks) | redline {}, competitor {}; contested (both sent one that was included) {}, redline won {} |",
            c.won_by_others.len(),
            c.won_by_competitor.len(),
            c.contested.len(),
            self.share_text()
        );
        let _ = writeln!(
            md,
            "| Redline's failed txs, explained | {} lost to the competitor (it had liquidated an account of the tx earlier), {} otherwise; {} liquidations repaid less than sent (refunded) after the competitor had liquidated the account |",
            c.others_lost_to_competitor.len(),
            c.others_failed_otherwise.len(),
            figures.refunds_after_competitor
        );
        let _ = writeln!(
            md,
            "| Fees paid against profit | {} |",
            self.fees_per_dollar(figures.profit_usd)
        );
        let _ = writeln!(
            md,
            "| Redline's candidate's block → broadcast | p50 {} ms |",
            percentile(&figures.block_to_broadcast_ms, 50.0)
        );
        md
    }
}
