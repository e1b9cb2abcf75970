//! A model of the scaler redline replaces: Mars's high/low queue watermark
//! (`manager/src/scaler/queue_watermark.go` in mars-protocol/multichain-liquidator-bot), kept as
//! the baseline the [`crate::autoscale::Autoscaler`] is measured against in [`crate::sim`].
//!
//! Behaviour modelled, as read from that file and its caller (one check per new block, before
//! the block's work is queued, so the queue holds only what is left over):
//!
//! - while a deployment is under way (workers starting), nothing happens;
//! - below the minimum count: +1;
//! - items left in the queue ≤ the low watermark: a low violation; after 10 of them (counted
//!   cumulatively, reset only when they trigger) −1, never below the minimum;
//! - items ≥ the high watermark: a high violation; after 10 of them +1, never above the
//!   maximum.
//!
//! Mars ran it with low = 0 and high = 1: scale down when the queue is empty at a block, up
//! when anything is left over.

use crate::autoscale::{Observation, ScalingStrategy};

/// Violations before the watermark scaler acts (`watermarkViolationMax` in Mars).
pub const MARS_VIOLATION_MAX: u32 = 10;

#[derive(Debug, Clone)]
pub struct Watermark {
    /// Items at or below which the queue counts as a low violation.
    pub low: u64,
    /// Items at or above which the queue counts as a high violation.
    pub high: u64,
    pub violation_max: u32,
    pub min_workers: u32,
    pub max_workers: u32,
    /// Work units per queue item (Mars counted queue entries, i.e. jobs, not accounts).
    pub units_per_item: u64,
    current: u32,
    low_violations: u32,
    high_violations: u32,
}

impl Watermark {
    /// Mars's settings (low 0, high 1, 10 violations) with the given bounds and starting count.
    pub fn mars(min_workers: u32, max_workers: u32, units_per_item: u64, current: u32) -> Self {
        Self {
            low: 0,
            high: 1,
            violation_max: MARS_VIOLATION_MAX,
            min_workers,
            max_workers,
            units_per_item: units_per_item.max(1),
            current,
            low_violations: 0,
            high_violations: 0,
        }
    }
}

impl ScalingStrategy for Watermark {
    fn name(&self) -> &'static str {
        "Mars high/low watermark"
    }

    fn decide(&mut self, observation: &Observation) -> u32 {
        if observation.pending > 0 {
            return self.current;
        }
        if self.min_workers > 0 && self.current < self.min_workers {
            self.current += 1;
            return self.current;
        }
        let items = observation.backlog.div_ceil(self.units_per_item);
        if items <= self.low {
            self.low_violations += 1;
            if self.low_violations >= self.violation_max {
                self.low_violations = 0;
                if self.current > self.min_workers {
                    self.current -= 1;
                }
            }
        }
        if items >= self.high {
            self.high_violations += 1;
            if self.high_violations >= self.violation_max {
                self.high_violations = 0;
                if self.current < self.max_workers {
                    self.current += 1;
                }
            }
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_over(backlog: u64) -> Observation {
        Observation {
            backlog,
            ..Observation::default()
        }
    }

    #[test]
    fn moves_one_worker_after_ten_violations() {
        let mut watermark = Watermark::mars(1, 5, 100, 2);
        for block in 1..=9 {
            assert_eq!(watermark.decide(&left_over(500)), 2, "block {block}");
        }
        assert_eq!(watermark.decide(&left_over(500)), 3);
        // Violations are cumulative: 9 empty blocks, a busy one, then one more empty block.
        for _ in 0..9 {
            assert_eq!(watermark.decide(&left_over(0)), 3);
        }
        assert_eq!(watermark.decide(&left_over(1)), 3);
        assert_eq!(watermark.decide(&left_over(0)), 2);
    }

    #[test]
    fn waits_while_deploying_and_respects_bounds() {
        let mut watermark = Watermark::mars(2, 3, 1, 0);
        let starting = Observation {
            pending: 1,
            ..left_over(10)
        };
        assert_eq!(watermark.decide(&starting), 0);
        assert_eq!(watermark.decide(&left_over(0)), 1);
        assert_eq!(watermark.decide(&left_over(0)), 2);
        for _ in 0..30 {
            watermark.decide(&left_over(0));
        }
        assert_eq!(watermark.current, 2);
        for _ in 0..50 {
            watermark.decide(&left_over(10));
        }
        assert_eq!(watermark.current, 3);
    }
}
