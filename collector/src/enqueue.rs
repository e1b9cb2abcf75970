//! Cutting one block's health-check work into jobs: contiguous bucket ranges holding about
//! `--job-size` accounts each, covering every bucket exactly once, all carrying the block height.

use std::time::Duration;

use clap::Args;
use redline_pipeline::jobs::{HealthCheckJob, ProtocolKind};

#[derive(Debug, Clone, Args)]
#[group(id = "enqueue")]
pub struct Config {
    /// Accounts per health-check job (about: jobs are whole buckets).
    #[arg(long, env = "JOB_SIZE", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub job_size: u64,
    /// How long a block snapshot (prices, markets) stays in Redis, in seconds. Health checkers
    /// must pick up a block's jobs within this time.
    #[arg(long, env = "SNAPSHOT_TTL_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            job_size: 500,
            snapshot_ttl_secs: 3600,
        }
    }
}

impl Config {
    pub fn snapshot_ttl(&self) -> Duration {
        Duration::from_secs(self.snapshot_ttl_secs)
    }
}

/// The jobs of block `height`: buckets in order, a job closed once it holds `job_size`
/// accounts; trailing empty buckets join the last job. An empty index still gets one job over
/// all buckets (so every bucket is covered once per block).
pub fn plan_jobs(
    chain_id: &str,
    protocol: ProtocolKind,
    height: u64,
    bucket_sizes: &[u64],
    job_size: u64,
) -> Vec<HealthCheckJob> {
    let job = |start: usize, end: usize, accounts: u64| HealthCheckJob {
        chain_id: chain_id.to_string(),
        protocol,
        height,
        bucket_start: start as u32,
        bucket_end: end as u32,
        accounts,
    };
    let mut jobs = Vec::new();
    let mut start = 0;
    let mut accounts = 0u64;
    for (bucket, size) in bucket_sizes.iter().enumerate() {
        accounts += size;
        if accounts >= job_size.max(1) {
            jobs.push(job(start, bucket + 1, accounts));
            start = bucket + 1;
            accounts = 0;
        }
    }
    if start < bucket_sizes.len() {
        match jobs.last_mut() {
            Some(last) if accounts == 0 => last.bucket_end = bucket_sizes.len() as u32,
            _ => jobs.push(job(start, bucket_sizes.len(), accounts)),
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_cover(jobs: &[HealthCheckJob], sizes: &[u64]) {
        let mut next = 0u32;
        for job in jobs {
            assert_eq!(job.bucket_start, next);
            assert!(job.bucket_end > job.bucket_start);
            let sum: u64 = sizes[job.bucket_start as usize..job.bucket_end as usize]
                .iter()
                .sum();
            assert_eq!(job.accounts, sum);
            assert_eq!(job.height, 7);
            next = job.bucket_end;
        }
        assert_eq!(next as usize, sizes.len());
    }

    #[test]
    fn examples() {
        let jobs = plan_jobs("c", ProtocolKind::RedBank, 7, &[0; 8], 500);
        assert_eq!(jobs.len(), 1);
        check_cover(&jobs, &[0; 8]);

        let sizes = [300, 300, 100, 600, 0, 0];
        let jobs = plan_jobs("c", ProtocolKind::RedBank, 7, &sizes, 500);
        check_cover(&jobs, &sizes);
        assert_eq!(
            jobs.iter().map(|j| j.accounts).collect::<Vec<_>>(),
            vec![600, 700]
        );
        assert_eq!(jobs[1].bucket_end, 6);
    }

    proptest! {
        #[test]
        fn covers_every_bucket_once(
            sizes in proptest::collection::vec(0u64..2_000, 1..300),
            job_size in 1u64..5_000,
        ) {
            let jobs = plan_jobs("c", ProtocolKind::RedBank, 7, &sizes, job_size);
            check_cover(&jobs, &sizes);
            // Every job but the last holds at least job_size accounts.
            for job in &jobs[..jobs.len() - 1] {
                prop_assert!(job.accounts >= job_size);
            }
        }
    }
}
