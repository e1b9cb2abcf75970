//! How many workers of one kind the manager asks for: a pure, deterministic decision from the
//! measured backlog, the measured per-worker throughput and the block time.
//!
//! # The formula
//!
//! At every block, for each worker kind, with
//!
//! - `a` — work units that arrived for this block (health checker: accounts enqueued for the
//!   new block; liquidator: liquidation candidates queued since the previous block),
//! - `b` — units still outstanding from earlier blocks,
//! - `μ` — measured throughput of one worker in units per worker-second,
//! - `T` — measured block time in seconds,
//! - `D` — the deadline in blocks (`--deadline-blocks`, default 1: a block's work must be done
//!   before the next block arrives),
//! - `ρ` — the target utilisation (`--target-utilization`, default 0.8): the share of the
//!   deadline a worker is planned to be busy; the rest absorbs throughput jitter, fetch
//!   latency and the error of the estimates,
//!
//! the workers **needed** are
//!
//! ```text
//!                a            a + b
//! need = max( ───────── ,  ─────────── )        raw = ⌈need⌉, at least 1 when a + b > 0
//!              μ·ρ·T        μ·ρ·D·T
//! ```
//!
//! The first term keeps up with the arrival rate (each block brings `a` units, a worker does
//! `μ·ρ·T` of them per block); the second finishes everything outstanding, the backlog
//! included, within the deadline. With `D = 1` the second term alone decides. At least one
//! worker runs whenever there is work, so that the throughput can be measured at all.
//!
//! The **desired count** follows `raw` with damping in both directions, then the bounds:
//!
//! - **Up at once, by as many as needed**: when `raw` exceeds the current count `n`, the
//!   desired count jumps to `raw` (not +1 per step), because a missed block is the failure the
//!   manager exists to prevent.
//! - **Hysteresis** (`--hysteresis h`, default 0.1), a dead band around the current count
//!   `n`: while nothing is late (`b = 0`), a need of up to `n·(1 + h)` keeps `n`, so
//!   throughput jitter around a border does not add a worker every few blocks (work left over,
//!   `b > 0`, always scales up); and a scale-down goes only to `⌈need·(1 + h)⌉`, so a load
//!   that one worker fewer would just manage keeps its margin (no up-down-up flapping).
//! - **Up-cooldown**: a further scale-up waits until the workers asked for last time have
//!   started, or `--scale-up-cooldown-blocks` (default 3) have passed, so a slow platform
//!   (ECS takes most of a minute to start a task) is not asked again and again for workers the
//!   growing backlog seems to need while the first batch is still starting.
//! - **Down late, only to the recent peak** (cooldown): the desired count drops to the highest
//!   `⌈need·(1 + h)⌉` of the last `W` blocks (`--scale-down-window-blocks`, default 3) once
//!   that is below `n`. One quiet block never removes a worker, and the need that caused a
//!   scale-up stays in the window for `W` blocks.
//! - Everything is clamped to `[--min-…, --max-…]`.
//!
//! Two shortcuts between blocks ([`Autoscaler::decide_within_block`], [`Autoscaler::wake`]):
//! when a block's work, once enqueued, exceeds what the last decision planned for by more
//! than the hysteresis band, the up-rules are applied at once instead of at the next block;
//! and a pool scaled to zero gets one worker as soon as work arrives.
//!
//! `μ` is the ratio of exponentially decayed sums of the units completed and the worker-seconds
//! spent busy (decay 0.8 per block): idle time does not dilute it, and a long busy stretch
//! weighs more than a short one. Until the first measurement it is the configured prior
//! (`--…-initial-throughput`), weighted as one worker-second of measurement. `T` is an
//! exponential moving average (α = 0.2) of the measured block intervals, starting from the
//! chain's configured block time; a stall counts as at most three block times. (The manager
//! measures busy time by sampling the queue every `--poll-ms`, so for very small blocks —
//! work done within one sample — it overstates busy time and understates `μ`: it errs towards
//! more workers exactly where they cost least.)
//!
//! [`crate::watermark::Watermark`] models the scaler this replaces (Mars's
//! `queue_watermark.go`: ±1 worker after ten watermark violations); [`crate::sim`] runs both
//! against the same simulated loads (`manager/tests/scaling_simulation.rs`).

use std::collections::VecDeque;

use serde::Serialize;

/// Bounds and damping of the decision for one worker kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    /// Fewest workers, even without work.
    pub min_workers: u32,
    /// Most workers, whatever the backlog.
    pub max_workers: u32,
    /// Blocks a block's work may take (`D`).
    pub deadline_blocks: u32,
    /// Planned busy share of a worker (`ρ`), in (0, 1].
    pub target_utilization: f64,
    /// Blocks the raw target must stay below the current count before workers are removed
    /// (`W`); also the cooldown after any change before a scale-down.
    pub scale_down_window_blocks: u32,
    /// Blocks after a scale-up before the next one while the workers asked for are still
    /// starting.
    pub scale_up_cooldown_blocks: u32,
    /// Width of the dead band around the current count, both ways: while nothing is late a
    /// need of up to `current · (1 + h)` keeps the current count, and a scale-down only goes
    /// as low as `⌈peak need · (1 + h)⌉`.
    pub hysteresis: f64,
    /// Throughput assumed before any measurement, units per worker-second.
    pub initial_throughput: f64,
    /// Weight of older throughput samples per observation, in [0, 1).
    pub throughput_decay: f64,
    /// The block time assumed before any measurement, seconds.
    pub initial_block_time_s: f64,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        Self {
            min_workers: 0,
            max_workers: 16,
            deadline_blocks: 1,
            target_utilization: 0.8,
            scale_down_window_blocks: 3,
            scale_up_cooldown_blocks: 3,
            hysteresis: 0.1,
            initial_throughput: 1_000.0,
            throughput_decay: 0.8,
            initial_block_time_s: 1.0,
        }
    }
}

/// A policy value that cannot work; names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct PolicyError {
    pub setting: &'static str,
    pub problem: String,
}

impl ScalingPolicy {
    /// Checks every setting. `settings` names them as the caller exposes them (flag names).
    pub fn validate(&self, names: &PolicySettingNames) -> Result<(), PolicyError> {
        let positive = |value: f64| value.is_finite() && value > 0.0;
        // In order: (whether the setting is fine, its name, what is wrong when it is not).
        let checks = [
            (
                self.max_workers > 0,
                names.max_workers,
                "must be at least 1".to_string(),
            ),
            (
                self.min_workers <= self.max_workers,
                names.min_workers,
                format!(
                    "{} is above {} {}",
                    self.min_workers, names.max_workers, self.max_workers
                ),
            ),
            (
                self.deadline_blocks > 0,
                names.deadline_blocks,
                "must be at least 1".to_string(),
            ),
            (
                self.target_utilization > 0.0 && self.target_utilization <= 1.0,
                names.target_utilization,
                format!("{} is not in (0, 1]", self.target_utilization),
            ),
            (
                self.hysteresis.is_finite() && (0.0..=1.0).contains(&self.hysteresis),
                names.hysteresis,
                format!("{} is not in [0, 1]", self.hysteresis),
            ),
            (
                positive(self.initial_throughput),
                names.initial_throughput,
                format!("{} is not a positive number", self.initial_throughput),
            ),
            (
                (0.0..1.0).contains(&self.throughput_decay),
                names.throughput_decay,
                format!("{} is not in [0, 1)", self.throughput_decay),
            ),
            (
                positive(self.initial_block_time_s),
                names.initial_block_time,
                format!("{} s is not a positive duration", self.initial_block_time_s),
            ),
        ];
        match checks.into_iter().find(|(fine, _, _)| !fine) {
            Some((_, setting, problem)) => Err(PolicyError { setting, problem }),
            None => Ok(()),
        }
    }
}

/// How the caller names each policy setting in errors (flags differ per worker kind).
#[derive(Debug, Clone, Copy)]
pub struct PolicySettingNames {
    pub min_workers: &'static str,
    pub max_workers: &'static str,
    pub deadline_blocks: &'static str,
    pub target_utilization: &'static str,
    pub hysteresis: &'static str,
    pub initial_throughput: &'static str,
    pub throughput_decay: &'static str,
    pub initial_block_time: &'static str,
}

impl PolicySettingNames {
    /// Field names, for policies built in code.
    pub const FIELDS: PolicySettingNames = PolicySettingNames {
        min_workers: "min_workers",
        max_workers: "max_workers",
        deadline_blocks: "deadline_blocks",
        target_utilization: "target_utilization",
        hysteresis: "hysteresis",
        initial_throughput: "initial_throughput",
        throughput_decay: "throughput_decay",
        initial_block_time: "initial_block_time_s",
    };
}

/// What the control loop measured for one worker kind since the previous block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Units that arrived for this block (`a`).
    pub arrived: u64,
    /// Units still outstanding from earlier blocks (`b`).
    pub backlog: u64,
    /// Units finished since the previous observation.
    pub completed: u64,
    /// Worker-seconds spent with work in hand since the previous observation.
    pub busy_worker_seconds: f64,
    /// Seconds since the previous block; 0 when unknown (the first block).
    pub block_interval_s: f64,
    /// Workers running, as the backend reports.
    pub running: u32,
    /// Workers asked for and still starting.
    pub pending: u32,
}

/// Why the desired count is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The raw target needs more workers: scaled up to it.
    ScaleUp,
    /// Every raw target of the window was lower: scaled down to the window's peak.
    ScaleDown,
    /// More are needed, but the last scale-up is still starting (cooldown).
    UpCooldown,
    /// Slightly more would be needed, but nothing is late (hysteresis).
    UpHysteresis,
    /// Fewer would do, but not for the whole window yet (hysteresis).
    DownHysteresis,
    /// The count fits the load.
    Steady,
}

/// One decision, with the figures it came from (for logs, metrics and the block record).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    pub desired: u32,
    /// The formula's target before damping and bounds.
    pub raw: u32,
    /// `μ` used, units per worker-second.
    pub throughput: f64,
    /// `T` used, seconds.
    pub block_time_s: f64,
    pub reason: Reason,
}

/// The formula's raw target (see the module documentation): workers needed so that `arrived`
/// units per block are sustained and `arrived + backlog` finish within `deadline_blocks`
/// blocks, each worker doing `throughput · utilization · block_time_s` units per block.
/// Saturates at `u32::MAX` (the caller clamps to its maximum).
pub fn required_workers(
    arrived: u64,
    backlog: u64,
    throughput: f64,
    block_time_s: f64,
    deadline_blocks: u32,
    utilization: f64,
) -> u32 {
    whole_workers(workers_needed(
        arrived,
        backlog,
        throughput,
        block_time_s,
        deadline_blocks,
        utilization,
    ))
}

/// A fractional worker count rounded up: no work needs no worker, any work at least one.
/// Saturates at `u32::MAX`.
fn whole_workers(need: f64) -> u32 {
    if need == 0.0 {
        return 0;
    }
    // `as` saturates for floats (infinity included).
    (need.ceil() as u32).max(1)
}

/// [`required_workers`] before rounding up: the fractional worker count, `+∞` when the
/// throughput or block time is not a positive number.
pub fn workers_needed(
    arrived: u64,
    backlog: u64,
    throughput: f64,
    block_time_s: f64,
    deadline_blocks: u32,
    utilization: f64,
) -> f64 {
    let outstanding = arrived.saturating_add(backlog);
    if outstanding == 0 {
        return 0.0;
    }
    let per_worker_block = throughput * utilization * block_time_s;
    if !(per_worker_block.is_finite() && per_worker_block > 0.0) {
        return f64::INFINITY;
    }
    let sustained = arrived as f64 / per_worker_block;
    let deadline = outstanding as f64 / (per_worker_block * f64::from(deadline_blocks.max(1)));
    sustained.max(deadline)
}

/// Throughput per worker-second from decayed sums of completions and busy time.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputEstimate {
    completed: f64,
    busy_worker_seconds: f64,
    decay: f64,
}

/// Busy time below this (worker-seconds) carries too little signal to update the estimate.
const MIN_BUSY_SAMPLE: f64 = 0.05;
/// The prior counts as this many worker-seconds of measurement: a real sample soon outweighs it.
const PRIOR_WEIGHT: f64 = 1.0;

impl ThroughputEstimate {
    pub fn new(prior: f64, decay: f64) -> Self {
        Self {
            completed: prior * PRIOR_WEIGHT,
            busy_worker_seconds: PRIOR_WEIGHT,
            decay,
        }
    }

    /// Adds one observation's completions and busy time.
    pub fn record(&mut self, completed: u64, busy_worker_seconds: f64) {
        if !(busy_worker_seconds.is_finite() && busy_worker_seconds >= MIN_BUSY_SAMPLE) {
            return;
        }
        self.completed = self.completed * self.decay + completed as f64;
        self.busy_worker_seconds = self.busy_worker_seconds * self.decay + busy_worker_seconds;
    }

    /// Units per worker-second.
    pub fn per_worker_second(&self) -> f64 {
        self.completed / self.busy_worker_seconds
    }
}

/// Weight of a new block interval in the block-time average.
const BLOCK_TIME_ALPHA: f64 = 0.2;
/// A block interval more than this many times the average (a stall, a reconnect) is capped,
/// so one outlier does not make the manager think the chain slowed down for good.
const BLOCK_TIME_OUTLIER: f64 = 3.0;

/// The autoscaler of one worker kind: [`ScalingPolicy`] plus the state the damping needs.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    policy: ScalingPolicy,
    throughput: ThroughputEstimate,
    block_time_s: f64,
    /// Scale-down targets (`⌈need · (1 + h)⌉`) of the last `W` decisions, newest last.
    window: VecDeque<u32>,
    desired: u32,
    blocks_since_scale_up: u32,
}

impl Autoscaler {
    /// Starts at the policy's minimum (or `current`, the count a restarted manager finds
    /// running, clamped to the bounds).
    pub fn new(policy: ScalingPolicy, current: u32) -> Self {
        let desired = current.clamp(policy.min_workers, policy.max_workers);
        Self {
            throughput: ThroughputEstimate::new(policy.initial_throughput, policy.throughput_decay),
            block_time_s: policy.initial_block_time_s,
            window: VecDeque::with_capacity(policy.scale_down_window_blocks as usize + 1),
            desired,
            blocks_since_scale_up: u32::MAX,
            policy,
        }
    }

    pub fn policy(&self) -> &ScalingPolicy {
        &self.policy
    }

    /// The count asked for by the last decision.
    pub fn desired(&self) -> u32 {
        self.desired
    }

    /// Current throughput estimate, units per worker-second.
    pub fn throughput(&self) -> f64 {
        self.throughput.per_worker_second()
    }

    /// Current block time estimate, seconds.
    pub fn block_time_s(&self) -> f64 {
        self.block_time_s
    }

    /// Work has just arrived and no worker is wanted: ask for one (or the minimum) at once
    /// rather than at the next block's decision. Returns the new count, `None` when workers
    /// are already wanted. The raw target of 1 joins the window, so the next quiet block does
    /// not take the worker away again.
    pub fn wake(&mut self) -> Option<u32> {
        if self.desired > 0 {
            return None;
        }
        self.desired = self.policy.min_workers.max(1).min(self.policy.max_workers);
        self.blocks_since_scale_up = 0;
        self.window.push_back(self.desired);
        while self.window.len() > self.policy.scale_down_window_blocks.max(1) as usize {
            self.window.pop_front();
        }
        Some(self.desired)
    }

    /// One decision per block.
    pub fn decide(&mut self, observation: &Observation) -> Decision {
        self.throughput
            .record(observation.completed, observation.busy_worker_seconds);
        if observation.block_interval_s.is_finite() && observation.block_interval_s > 0.0 {
            let sample = observation
                .block_interval_s
                .min(self.block_time_s * BLOCK_TIME_OUTLIER);
            self.block_time_s += BLOCK_TIME_ALPHA * (sample - self.block_time_s);
        }
        self.evaluate(observation, false)
    }

    /// A decision within a block, when a block turns out to bring more work than planned for:
    /// the same formula and up-rules with the current estimates, but it only ever scales up,
    /// measures nothing and, unless it scales, leaves the window alone (the window counts
    /// blocks).
    pub fn decide_within_block(&mut self, observation: &Observation) -> Decision {
        self.evaluate(observation, true)
    }

    fn evaluate(&mut self, observation: &Observation, within_block: bool) -> Decision {
        let throughput = self.throughput.per_worker_second();
        let policy = &self.policy;
        let need = workers_needed(
            observation.arrived,
            observation.backlog,
            throughput,
            self.block_time_s,
            policy.deadline_blocks,
            policy.target_utilization,
        );
        let raw = whole_workers(need);
        let down_target = whole_workers(need * (1.0 + policy.hysteresis)).max(raw);
        if !within_block {
            self.window.push_back(down_target);
            while self.window.len() > policy.scale_down_window_blocks.max(1) as usize {
                self.window.pop_front();
            }
            self.blocks_since_scale_up = self.blocks_since_scale_up.saturating_add(1);
        }

        let target = raw.clamp(policy.min_workers, policy.max_workers);
        let window_peak = self
            .window
            .iter()
            .copied()
            .max()
            .unwrap_or(raw)
            .clamp(policy.min_workers, policy.max_workers);
        let window_full = self.window.len() >= policy.scale_down_window_blocks as usize;
        let marginal = observation.backlog == 0
            && self.desired > 0
            && need <= f64::from(self.desired) * (1.0 + policy.hysteresis);
        let (desired, reason) = if target > self.desired && marginal {
            (self.desired, Reason::UpHysteresis)
        } else if target > self.desired {
            let still_starting = observation.pending > 0
                && self.blocks_since_scale_up < policy.scale_up_cooldown_blocks;
            if still_starting {
                (self.desired, Reason::UpCooldown)
            } else {
                self.blocks_since_scale_up = 0;
                (target, Reason::ScaleUp)
            }
        } else if within_block {
            (self.desired, Reason::Steady)
        } else if window_peak < self.desired && window_full {
            (window_peak, Reason::ScaleDown)
        } else if target < self.desired {
            (self.desired, Reason::DownHysteresis)
        } else {
            (self.desired, Reason::Steady)
        };
        // The bounds always win, also over a count adopted from a previous manager.
        let desired = desired.clamp(policy.min_workers, policy.max_workers);
        if within_block && desired > self.desired {
            // The need that scaled stays in the window for the next blocks.
            if let Some(newest) = self.window.back_mut() {
                *newest = (*newest).max(down_target);
            } else {
                self.window.push_back(down_target);
            }
        }
        self.desired = desired;
        Decision {
            desired: self.desired,
            raw,
            throughput,
            block_time_s: self.block_time_s,
            reason,
        }
    }
}

/// A scaling strategy as the simulator drives it: one decision per block.
pub trait ScalingStrategy {
    fn name(&self) -> &'static str;
    /// The worker count wanted for the coming block.
    fn decide(&mut self, observation: &Observation) -> u32;
}

impl ScalingStrategy for Autoscaler {
    fn name(&self) -> &'static str {
        "backlog-throughput autoscaler"
    }

    fn decide(&mut self, observation: &Observation) -> u32 {
        Autoscaler::decide(self, observation).desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScalingPolicy {
        ScalingPolicy {
            min_workers: 0,
            max_workers: 20,
            deadline_blocks: 1,
            target_utilization: 0.8,
            scale_down_window_blocks: 3,
            scale_up_cooldown_blocks: 2,
            hysteresis: 0.0,
            initial_throughput: 1_000.0,
            throughput_decay: 0.8,
            initial_block_time_s: 1.0,
        }
    }

    #[test]
    fn raw_target_by_hand() {
        // 8,000 accounts, 1,000 per worker-second at 80 % over a 1 s block: 8,000 / 800 = 10.
        assert_eq!(required_workers(8_000, 0, 1_000.0, 1.0, 1, 0.8), 10);
        // One more account needs an 11th worker.
        assert_eq!(required_workers(8_001, 0, 1_000.0, 1.0, 1, 0.8), 11);
        // A backlog counts towards the deadline: (8,000 + 800) / 800 = 11.
        assert_eq!(required_workers(8_000, 800, 1_000.0, 1.0, 1, 0.8), 11);
        // A 2-block deadline halves the backlog term but not the arrival rate:
        // max(8,000 / 800, 9,600 / 1,600) = 10.
        assert_eq!(required_workers(8_000, 1_600, 1_000.0, 1.0, 2, 0.8), 10);
        // 6 s blocks: 60,000 / (1,000 · 0.8 · 6) = 12.5 → 13.
        assert_eq!(required_workers(60_000, 0, 1_000.0, 6.0, 1, 0.8), 13);
        // A little work still needs one worker; none needs none.
        assert_eq!(required_workers(1, 0, 1e9, 1.0, 1, 0.8), 1);
        assert_eq!(required_workers(0, 0, 1_000.0, 1.0, 1, 0.8), 0);
        // Nonsense throughput saturates rather than dividing by zero.
        assert_eq!(required_workers(5, 0, 0.0, 1.0, 1, 0.8), u32::MAX);
    }

    fn observe(arrived: u64, backlog: u64) -> Observation {
        Observation {
            arrived,
            backlog,
            completed: 0,
            busy_worker_seconds: 0.0,
            block_interval_s: 1.0,
            running: 0,
            pending: 0,
        }
    }

    #[test]
    fn scales_up_at_once_and_down_after_the_window() {
        let mut scaler = Autoscaler::new(policy(), 0);
        let up = scaler.decide(&observe(8_000, 0));
        assert_eq!((up.desired, up.reason), (10, Reason::ScaleUp));
        // Load halves: the window (3 blocks) still holds the 10.
        let hold = scaler.decide(&observe(4_000, 0));
        assert_eq!((hold.desired, hold.reason), (10, Reason::DownHysteresis));
        let hold = scaler.decide(&observe(4_000, 0));
        assert_eq!(hold.desired, 10);
        // Three blocks of 5: down to 5 in one step.
        let down = scaler.decide(&observe(4_000, 0));
        assert_eq!((down.desired, down.reason), (5, Reason::ScaleDown));
        // Nothing to do: down to the minimum after the window.
        for _ in 0..2 {
            assert_eq!(scaler.decide(&observe(0, 0)).desired, 5);
        }
        assert_eq!(scaler.decide(&observe(0, 0)).desired, 0);
    }

    #[test]
    fn border_load_does_not_flap() {
        // A load that needs 4.9 then 5.1 workers in turn keeps 6 instead of flapping 5↔6.
        let mut scaler = Autoscaler::new(policy(), 0);
        let mut seen = Vec::new();
        for i in 0..30 {
            let arrived = if i % 2 == 0 { 3_920 } else { 4_080 };
            seen.push(scaler.decide(&observe(arrived, 0)).desired);
        }
        assert!(seen[1..].iter().all(|&n| n == 6), "{seen:?}");
    }

    #[test]
    fn small_overshoots_wait_for_lateness() {
        let mut policy = policy();
        policy.hysteresis = 0.1;
        let mut scaler = Autoscaler::new(policy, 5);
        // 4,300 / 800 = 5.4 workers: within 10 % of 5 and nothing late: hold.
        let hold = scaler.decide(&observe(4_300, 0));
        assert_eq!((hold.desired, hold.reason), (5, Reason::UpHysteresis));
        // 4,500 / 800 = 5.6: beyond the band.
        assert_eq!(scaler.decide(&observe(4_500, 0)).desired, 6);
        // Within the band but work is late: scale up.
        let mut scaler = Autoscaler::new(scaler.policy().clone(), 5);
        let late = scaler.decide(&observe(4_000, 300));
        assert_eq!((late.desired, late.reason), (6, Reason::ScaleUp));
    }

    #[test]
    fn scale_down_keeps_a_margin() {
        let mut policy = policy();
        policy.hysteresis = 0.1;
        let mut scaler = Autoscaler::new(policy, 2);
        // 760 / 800 = 0.95 workers: one would do, but within 10 % of its limit: keep two.
        for _ in 0..5 {
            assert_eq!(scaler.decide(&observe(760, 0)).desired, 2);
        }
        // 700 / 800 = 0.875 ≤ 1 / 1.1: one it is.
        for _ in 0..2 {
            scaler.decide(&observe(700, 0));
        }
        let down = scaler.decide(&observe(700, 0));
        assert_eq!((down.desired, down.reason), (1, Reason::ScaleDown));
    }

    #[test]
    fn work_wakes_a_pool_at_zero_at_once() {
        let mut scaler = Autoscaler::new(policy(), 0);
        assert_eq!(scaler.wake(), Some(1));
        assert_eq!(scaler.wake(), None);
        // The block after: the work was done, but the window keeps the worker.
        assert_eq!(scaler.decide(&observe(0, 0)).desired, 1);
    }

    #[test]
    fn a_bigger_block_scales_up_within_the_block_only() {
        let mut scaler = Autoscaler::new(policy(), 2);
        for _ in 0..3 {
            scaler.decide(&observe(1_600, 0));
        }
        // The next block brings 4,000: up to 5 at once.
        let early = scaler.decide_within_block(&observe(4_000, 0));
        assert_eq!((early.desired, early.reason), (5, Reason::ScaleUp));
        // Within a block nothing scales down.
        let quiet = scaler.decide_within_block(&observe(0, 0));
        assert_eq!((quiet.desired, quiet.reason), (5, Reason::Steady));
        // The block decision that follows keeps the 5 for the window.
        assert_eq!(scaler.decide(&observe(800, 0)).desired, 5);
    }

    #[test]
    fn bounds_win() {
        let mut policy = policy();
        policy.min_workers = 2;
        policy.max_workers = 4;
        let mut scaler = Autoscaler::new(policy, 9);
        assert_eq!(scaler.desired(), 4);
        assert_eq!(scaler.decide(&observe(1_000_000, 0)).desired, 4);
        for _ in 0..5 {
            scaler.decide(&observe(0, 0));
        }
        assert_eq!(scaler.desired(), 2);
    }

    #[test]
    fn waits_for_starting_workers_before_asking_again() {
        let mut scaler = Autoscaler::new(policy(), 0);
        assert_eq!(scaler.decide(&observe(800, 0)).desired, 1);
        // The worker is still starting while the backlog grows: no second ask yet.
        let starting = Observation {
            pending: 1,
            ..observe(800, 800)
        };
        let wait = scaler.decide(&starting);
        assert_eq!((wait.desired, wait.reason), (1, Reason::UpCooldown));
        // The cooldown (2 blocks) has passed: ask again even though it still starts.
        let again = scaler.decide(&Observation {
            pending: 1,
            ..observe(800, 1_600)
        });
        assert_eq!((again.desired, again.reason), (3, Reason::ScaleUp));
        // Started: no cooldown applies.
        let mut scaler = Autoscaler::new(policy(), 0);
        scaler.decide(&observe(800, 0));
        assert_eq!(scaler.decide(&observe(800, 800)).desired, 2);
    }

    #[test]
    fn throughput_follows_measurements_not_idle_time() {
        let mut estimate = ThroughputEstimate::new(1_000.0, 0.8);
        assert_eq!(estimate.per_worker_second(), 1_000.0);
        // Three workers busy 0.5 s each doing 6,000 units: 4,000 per worker-second.
        for _ in 0..20 {
            estimate.record(6_000, 1.5);
        }
        assert!((estimate.per_worker_second() - 4_000.0).abs() < 10.0);
        // Idle observations (no busy time) leave it alone.
        estimate.record(0, 0.0);
        assert!((estimate.per_worker_second() - 4_000.0).abs() < 10.0);
        // A slowdown is followed within a few blocks.
        for _ in 0..20 {
            estimate.record(3_000, 1.5);
        }
        assert!((estimate.per_worker_second() - 2_000.0).abs() < 50.0);
    }

    #[test]
    fn block_time_is_measured_and_outliers_capped() {
        let mut scaler = Autoscaler::new(policy(), 0);
        for _ in 0..40 {
            scaler.decide(&Observation {
                block_interval_s: 6.0,
                ..observe(0, 0)
            });
        }
        assert!((scaler.block_time_s() - 6.0).abs() < 0.01);
        // A 10-minute stall moves the average by at most α·(3·T − T).
        scaler.decide(&Observation {
            block_interval_s: 600.0,
            ..observe(0, 0)
        });
        assert!(scaler.block_time_s() < 6.0 + 0.2 * 12.0 + 0.01);
    }

    #[test]
    fn policy_errors_name_the_setting() {
        let names = PolicySettingNames::FIELDS;
        let mut bad = policy();
        bad.min_workers = 30;
        assert_eq!(bad.validate(&names).unwrap_err().setting, "min_workers");
        let mut bad = policy();
        bad.target_utilization = 1.5;
        assert_eq!(
            bad.validate(&names).unwrap_err().setting,
            "target_utilization"
        );
        let mut bad = policy();
        bad.deadline_blocks = 0;
        assert_eq!(bad.validate(&names).unwrap_err().setting, "deadline_blocks");
        policy().validate(&names).unwrap();
    }
}
