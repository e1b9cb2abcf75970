//! The one stop signal a run hands to every task it starts (workers, the master's duty, the
//! balance publisher), so that each stops between units of work rather than mid-tx.

use std::future::Future;

use tokio::sync::watch;

/// Requests the shutdown every clone of its [`Shutdown`] waits for.
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Whether shutdown was requested; cloned into every task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and the shutdown it requests.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (trigger, shutdown) = watch::channel(false);
    (ShutdownTrigger(trigger), Shutdown(shutdown))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is requested, or once its trigger is gone (nobody could request
    /// it any more, so waiting on would be forever). Owns what it needs, so it can be spawned.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            let _ = receiver.wait_for(|requested| *requested).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_request() {
        let (trigger, shutdown) = shutdown_channel();
        let other = shutdown.clone();
        assert!(!shutdown.is_requested());
        let waiting = tokio::spawn(other.requested());
        trigger.trigger();
        waiting.await.unwrap();
        assert!(shutdown.is_requested() && other.is_requested());
    }

    #[tokio::test]
    async fn a_dropped_trigger_ends_the_wait() {
        let (trigger, shutdown) = shutdown_channel();
        drop(trigger);
        shutdown.requested().await;
        assert!(!shutdown.is_requested());
    }
}
