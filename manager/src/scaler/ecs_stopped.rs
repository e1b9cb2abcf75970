//! Liquidator tasks that ECS reports stopped give their wallet slots back at once. A worker on
//! ECS names itself after its task ([`redline_pipeline::ecs_task`]), so a stopped task's ARN
//! names the owner of the slots to free. ECS lists a stopped task for about an hour; each one
//! is handed off once. The stopped tasks are read at most every two seconds, within the
//! scaling tick.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{DesiredStatus, Task};
use aws_sdk_ecs::Client;
use redline_pipeline::ecs_task;
use tracing::{info, warn};

use super::ecs::sdk_error;
use super::ScalerError;
use crate::handoff::WalletHandoff;

/// DescribeTasks takes at most this many tasks per call.
const DESCRIBE_BATCH: usize = 100;

/// The scaling tick is half a second; ECS's list calls are rate-limited per account, and a
/// stopped task takes seconds to be reported anyway.
const THROTTLE: Duration = Duration::from_secs(2);

/// How long a reading may hold up the scaling tick it runs in.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Desired STOPPED may still be in its SIGTERM grace: a task is dead once its containers have
/// exited (ECS then notes when its execution stopped, and goes on to detach its network, which
/// can take tens of seconds before its last status reads STOPPED).
fn has_exited(task: &Task) -> bool {
    let containers = task.containers();
    task.last_status() == Some("STOPPED")
        || task.execution_stopped_at().is_some()
        || (!containers.is_empty()
            && containers
                .iter()
                .all(|container| container.last_status() == Some("STOPPED")))
}

/// The stopped tasks of one service whose slots were freed, and the handoff that frees them.
#[derive(Debug)]
pub struct StoppedTasks {
    handoff: WalletHandoff,
    handed_off: tokio::sync::Mutex<HashSet<String>>,
    /// Whether the last reading failed: said once when it starts failing and once when it
    /// answers again, not at every scaling tick.
    failing: AtomicBool,
    last_read: std::sync::Mutex<Option<Instant>>,
}

impl StoppedTasks {
    pub fn new(handoff: WalletHandoff) -> Self {
        StoppedTasks {
            handoff,
            handed_off: tokio::sync::Mutex::new(HashSet::new()),
            failing: AtomicBool::new(false),
            last_read: std::sync::Mutex::new(None),
        }
    }

    /// Frees the slots of every task of `service` that has stopped since the last call. A
    /// failure never holds up scaling: the slots then free when their leases expire.
    pub async fn hand_off(&self, client: &Client, cluster: &str, service: &str) {
        if !self.due() {
            return;
        }
        let read = tokio::time::timeout(READ_TIMEOUT, self.try_hand_off(client, cluster, service));
        let result = read.await.unwrap_or_else(|_| {
            Err(super::ecs::backend_error(
                format!("following {service}'s stopped tasks"),
                format!("no answer within {READ_TIMEOUT:?}"),
            ))
        });
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    info!(service, "stopped tasks are followed again");
                }
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    warn!(service, %error, "cannot read the stopped liquidator tasks: a dead one's wallet slots free only when their leases expire (the manager's role needs ecs:ListTasks and ecs:DescribeTasks)");
                }
            }
        }
    }

    async fn try_hand_off(
        &self,
        client: &Client,
        cluster: &str,
        service: &str,
    ) -> Result<(), ScalerError> {
        let listed = self.stopping(client, cluster, service).await?;
        let mut handed_off = self.handed_off.lock().await;
        handed_off.retain(|arn| listed.contains(arn));
        let new: Vec<String> = listed
            .into_iter()
            .filter(|arn| !handed_off.contains(arn))
            .collect();
        // Tasks of a service are in the group `service:<name>`; ListTasks's service filter
        // already says so, but a task of another group is never this service's worker.
        let group = format!("service:{service}");
        for batch in new.chunks(DESCRIBE_BATCH) {
            let described = client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|error| sdk_error(format!("DescribeTasks in {cluster}"), error))?;
            for task in described.tasks() {
                let (Some(arn), true) = (task.task_arn(), has_exited(task)) else {
                    continue;
                };
                let freed = task.group() != Some(group.as_str())
                    || self
                        .handoff
                        .worker_exited(&ecs_task::consumer_name(arn))
                        .await;
                if freed {
                    handed_off.insert(arn.to_owned());
                }
            }
        }
        Ok(())
    }

    /// Whether the last reading was `THROTTLE` ago or more, noting this one if so.
    fn due(&self) -> bool {
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < THROTTLE) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The ARNs of the service's tasks ECS is stopping or has stopped.
    async fn stopping(
        &self,
        client: &Client,
        cluster: &str,
        service: &str,
    ) -> Result<HashSet<String>, ScalerError> {
        let mut pages = client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Stopped)
            .into_paginator()
            .send();
        let mut arns = HashSet::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| sdk_error(format!("ListTasks {service}"), error))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        Ok(arns)
    }
}
