//! A discrete-time simulation of one worker pool under a load, one step per block, to compare
//! scaling strategies on the two things that matter: blocks whose work missed the deadline
//! and worker-seconds paid for.
//!
//! Each block `t`:
//! 1. the strategy sees an [`Observation`] (the work that arrived for block `t`, what is left
//!    from earlier blocks, what the workers finished during the previous block and how long
//!    they were busy, running and starting workers) and names a worker count;
//! 2. the pool moves towards it: new workers start and only work after `startup_blocks`;
//!    removed workers (starting ones first) stop at once;
//! 3. the running workers process the queue first in, first out at the true per-worker
//!    throughput (with a deterministic ± jitter per block), for one block time;
//! 4. every block whose deadline (`deadline_blocks` after it arrived) has now passed with
//!    work left is counted as missed, once;
//! 5. running and starting workers are paid for the whole block.
//!
//! Whatever is still queued when the load ends is charged as the worker-seconds it needs at
//! the true throughput, and blocks already past their deadline count as missed, so a strategy
//! cannot look cheap by leaving work behind.

use std::collections::VecDeque;

use serde::Serialize;

use crate::autoscale::{Observation, ScalingStrategy};

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub block_time_s: f64,
    /// True units per worker-second (the strategies must measure it).
    pub throughput: f64,
    /// Blocks between asking for a worker and its first work.
    pub startup_blocks: u32,
    pub deadline_blocks: u32,
    pub initial_workers: u32,
    /// Each block the pool's throughput is scaled by a factor in `[1 − jitter, 1 + jitter]`.
    pub jitter: f64,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            block_time_s: 6.0,
            throughput: 2_000.0,
            startup_blocks: 1,
            deadline_blocks: 1,
            initial_workers: 1,
            jitter: 0.1,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub strategy: &'static str,
    pub blocks: usize,
    pub missed_blocks: u64,
    pub worker_seconds: f64,
    pub peak_workers: u32,
    /// How often the asked-for count changed.
    pub scale_changes: u32,
    /// Units left when the load ended.
    pub leftover_units: u64,
    /// Workers asked for at each block.
    pub desired: Vec<u32>,
}

impl SimReport {
    /// Blocks whose work finished within the deadline.
    pub fn on_time_blocks(&self) -> u64 {
        (self.blocks as u64).saturating_sub(self.missed_blocks)
    }

    /// Worker-seconds paid per block served on time: the cost of the useful outcome
    /// (`+∞` when no block was on time).
    pub fn worker_seconds_per_on_time_block(&self) -> f64 {
        match self.on_time_blocks() {
            0 => f64::INFINITY,
            on_time => self.worker_seconds / on_time as f64,
        }
    }
}

struct QueuedBlock {
    block: usize,
    remaining: u64,
    counted_missed: bool,
}

/// A deterministic generator for the jitter (SplitMix64), so runs are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs `strategy` against `load` (units arriving per block).
pub fn simulate(config: &SimConfig, load: &[u64], strategy: &mut dyn ScalingStrategy) -> SimReport {
    let mut rng = SplitMix(config.seed);
    let mut queue: VecDeque<QueuedBlock> = VecDeque::new();
    let mut running = config.initial_workers;
    // Starting workers, as the block at which each becomes productive.
    let mut starting: VecDeque<usize> = VecDeque::new();
    let mut last_completed = 0u64;
    let mut last_busy = 0.0f64;
    let mut missed = 0u64;
    let mut worker_seconds = 0.0f64;
    let mut peak = running;
    let mut changes = 0u32;
    let mut desired_trace = Vec::with_capacity(load.len());
    let mut last_desired = running;
    let deadline = config.deadline_blocks.max(1) as usize;

    for (block, &arrived) in load.iter().enumerate() {
        while starting.front().is_some_and(|&ready| ready <= block) {
            starting.pop_front();
            running += 1;
        }
        let backlog: u64 = queue.iter().map(|q| q.remaining).sum();
        let observation = Observation {
            arrived,
            backlog,
            completed: last_completed,
            busy_worker_seconds: last_busy,
            block_interval_s: if block == 0 { 0.0 } else { config.block_time_s },
            running,
            pending: starting.len() as u32,
        };
        let desired = strategy.decide(&observation);
        if desired != last_desired {
            changes += 1;
            last_desired = desired;
        }
        desired_trace.push(desired);
        let total = running + starting.len() as u32;
        if desired > total {
            for _ in total..desired {
                let ready = block + config.startup_blocks as usize;
                if ready <= block {
                    running += 1;
                } else {
                    starting.push_back(ready);
                }
            }
        } else {
            let mut excess = total - desired;
            while excess > 0 && starting.pop_back().is_some() {
                excess -= 1;
            }
            running -= excess.min(running);
        }
        peak = peak.max(running + starting.len() as u32);

        if arrived > 0 {
            queue.push_back(QueuedBlock {
                block,
                remaining: arrived,
                counted_missed: false,
            });
        }
        let factor = 1.0 + config.jitter * (2.0 * rng.next_unit() - 1.0);
        let rate = config.throughput * factor;
        let capacity = (f64::from(running) * rate * config.block_time_s).floor() as u64;
        let mut left = capacity;
        while left > 0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            let done = front.remaining.min(left);
            front.remaining -= done;
            left -= done;
            if front.remaining == 0 {
                queue.pop_front();
            }
        }
        let completed = capacity - left;
        last_completed = completed;
        last_busy = if running == 0 {
            0.0
        } else {
            // Busy until the queue ran dry, or all block long.
            let busy_s = (completed as f64 / (f64::from(running) * rate)).min(config.block_time_s);
            busy_s * f64::from(running)
        };
        for queued in queue.iter_mut() {
            if !queued.counted_missed && queued.block + deadline <= block + 1 {
                queued.counted_missed = true;
                missed += 1;
            }
        }
        worker_seconds += f64::from(running + starting.len() as u32) * config.block_time_s;
    }
    let leftover: u64 = queue.iter().map(|q| q.remaining).sum();
    worker_seconds += leftover as f64 / config.throughput;
    // Work that outlived the simulation missed its deadline unless the deadline is still ahead.
    missed += queue
        .iter()
        .filter(|q| !q.counted_missed && q.block + deadline < load.len())
        .count() as u64;
    SimReport {
        strategy: strategy.name(),
        blocks: load.len(),
        missed_blocks: missed,
        worker_seconds,
        peak_workers: peak,
        scale_changes: changes,
        leftover_units: leftover,
        desired: desired_trace,
    }
}

/// Load shapes, in units arriving per block.
pub mod load {
    /// `level` every block.
    pub fn steady(level: u64, blocks: usize) -> Vec<u64> {
        vec![level; blocks]
    }

    /// `low` for `lead` blocks, a linear ramp to `high` over `ramp` blocks, then `high` for
    /// `hold` blocks.
    pub fn rising(low: u64, high: u64, lead: usize, ramp: usize, hold: usize) -> Vec<u64> {
        let mut load = vec![low; lead];
        load.extend(ramp_between(low, high, ramp));
        load.extend(std::iter::repeat_n(high, hold));
        load
    }

    /// `high` for `lead` blocks, a linear ramp down to `low` over `ramp` blocks, then `low`
    /// for `hold` blocks.
    pub fn falling(high: u64, low: u64, lead: usize, ramp: usize, hold: usize) -> Vec<u64> {
        let mut load = vec![high; lead];
        load.extend(ramp_between(high, low, ramp));
        load.extend(std::iter::repeat_n(low, hold));
        load
    }

    /// `base` every block, with `peak` for `width` blocks every `period` blocks (the first
    /// spike after one period).
    pub fn spiky(base: u64, peak: u64, period: usize, width: usize, blocks: usize) -> Vec<u64> {
        (0..blocks)
            .map(|block| {
                if block >= period && block % period < width {
                    peak
                } else {
                    base
                }
            })
            .collect()
    }

    fn ramp_between(from: u64, to: u64, blocks: usize) -> impl Iterator<Item = u64> {
        (1..=blocks).map(move |step| {
            let share = step as f64 / blocks as f64;
            (from as f64 + (to as f64 - from as f64) * share).round() as u64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always `n` workers.
    struct Fixed(u32);

    impl ScalingStrategy for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn decide(&mut self, _: &Observation) -> u32 {
            self.0
        }
    }

    fn exact() -> SimConfig {
        SimConfig {
            block_time_s: 1.0,
            throughput: 100.0,
            startup_blocks: 0,
            deadline_blocks: 1,
            initial_workers: 0,
            jitter: 0.0,
            seed: 1,
        }
    }

    #[test]
    fn enough_workers_miss_nothing_and_pay_per_block() {
        let report = simulate(&exact(), &load::steady(300, 10), &mut Fixed(3));
        assert_eq!(report.missed_blocks, 0);
        assert_eq!(report.worker_seconds, 30.0);
        assert_eq!(report.leftover_units, 0);
    }

    #[test]
    fn too_few_workers_miss_every_block_and_pay_for_the_leftover() {
        // 2 workers do 200 of 300 per block: the queue grows by 100 a block, so every block's
        // work is late.
        let report = simulate(&exact(), &load::steady(300, 10), &mut Fixed(2));
        assert_eq!(report.missed_blocks, 10);
        assert_eq!(report.leftover_units, 1_000);
        // 20 paid worker-seconds plus 1,000 units at 100 per worker-second.
        assert_eq!(report.worker_seconds, 30.0);
    }

    #[test]
    fn starting_workers_cost_but_do_not_work() {
        let config = SimConfig {
            startup_blocks: 2,
            ..exact()
        };
        let report = simulate(&config, &load::steady(100, 4), &mut Fixed(1));
        // Blocks 0 and 1 wait for the worker; it works from block 2 on (100 per block), so
        // the queue never shrinks below 200: blocks 0–1 are late and so are 2 and 3.
        assert_eq!(report.missed_blocks, 4);
        assert_eq!(report.leftover_units, 200);
    }

    #[test]
    fn cost_per_on_time_block() {
        let report = simulate(&exact(), &load::steady(300, 10), &mut Fixed(3));
        assert_eq!(report.on_time_blocks(), 10);
        assert_eq!(report.worker_seconds_per_on_time_block(), 3.0);
        let late = simulate(&exact(), &load::steady(300, 10), &mut Fixed(2));
        assert_eq!(late.worker_seconds_per_on_time_block(), f64::INFINITY);
    }

    #[test]
    fn load_shapes() {
        assert_eq!(load::rising(10, 40, 1, 3, 2), vec![10, 20, 30, 40, 40, 40]);
        assert_eq!(load::falling(40, 10, 1, 3, 1), vec![40, 30, 20, 10, 10]);
        assert_eq!(
            load::spiky(1, 9, 4, 2, 10),
            vec![1, 1, 1, 1, 9, 9, 1, 1, 9, 9]
        );
    }
}
