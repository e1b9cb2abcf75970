//! The block feed: NewBlock events over the websocket, kept alive across drops.
//!
//! A background task follows the first websocket that works. When it drops or stalls, the task
//! polls HTTP for new blocks while it waits (with exponential backoff) to reconnect, trying the
//! websocket URLs in turn. Heights are made consecutive: blocks missed between two deliveries
//! are fetched over HTTP, repeats are dropped. Without websocket URLs the feed polls HTTP only.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::event::EventData;
use tendermint_rpc::query::EventType;
use tendermint_rpc::{SubscriptionClient, WebSocketClient, WebSocketClientUrl};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::{block_to_new_block, TendermintClient};
use super::{ChainClient, NewBlock};

/// Blocks further behind than this are not replayed one by one: the feed jumps to the newest.
const MAX_BACKFILL: u64 = 1_000;
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A stream of committed blocks. Dropping it stops the background task.
pub struct BlockStream {
    receiver: mpsc::Receiver<NewBlock>,
    task: Option<JoinHandle<()>>,
}

impl BlockStream {
    /// Wraps a channel fed by `task` (aborted when the stream is dropped). For [`ChainClient`]
    /// implementations other than [`TendermintClient`].
    pub fn from_channel(receiver: mpsc::Receiver<NewBlock>, task: Option<JoinHandle<()>>) -> Self {
        BlockStream { receiver, task }
    }
}

impl Stream for BlockStream {
    type Item = NewBlock;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NewBlock>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for BlockStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the feed on the current tokio runtime.
pub(crate) fn spawn_block_feed(client: TendermintClient) -> BlockStream {
    let (sender, receiver) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        Feed {
            client,
            sender,
            last: None,
        }
        .run()
        .await
    });
    BlockStream::from_channel(receiver, Some(task))
}

/// The consumer went away: stop.
struct Closed;

struct Feed {
    client: TendermintClient,
    sender: mpsc::Sender<NewBlock>,
    last: Option<u64>,
}

impl Feed {
    async fn run(mut self) {
        let ws_urls = self.client.config().rpc_ws.clone();
        let block_time = self.client.config().block_time;
        let mut backoff = BACKOFF_START;
        let mut attempt = 0usize;
        loop {
            if ws_urls.is_empty() {
                let _ = self.poll_http_until(None).await;
                return;
            }
            let url = &ws_urls[attempt % ws_urls.len()];
            attempt += 1;
            match self.follow_websocket(url.as_str(), block_time).await {
                Err(Closed) => return,
                Ok(WsEnd { delivered, reason }) => {
                    if delivered {
                        backoff = BACKOFF_START;
                    }
                    tracing::warn!(%url, %reason, retry_in = ?backoff, "block websocket down; polling HTTP meanwhile");
                }
            }
            if self
                .poll_http_until(Some(Instant::now() + backoff))
                .await
                .is_err()
            {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn follow_websocket(&mut self, url: &str, block_time: Duration) -> Result<WsEnd, Closed> {
        let ended = |delivered: bool, reason: String| Ok(WsEnd { delivered, reason });
        let ws_url = match WebSocketClientUrl::try_from(url) {
            Ok(u) => u,
            Err(e) => return ended(false, format!("bad websocket URL: {e}")),
        };
        let (ws, driver) = match WebSocketClient::builder(ws_url)
            .compat_mode(CompatMode::V0_38)
            .build()
            .await
        {
            Ok(pair) => pair,
            Err(e) => return ended(false, format!("cannot connect: {e}")),
        };
        let driver = tokio::spawn(driver.run());
        let mut subscription = match ws.subscribe(EventType::NewBlock.into()).await {
            Ok(s) => s,
            Err(e) => {
                let _ = ws.close();
                driver.abort();
                return ended(false, format!("cannot subscribe: {e}"));
            }
        };
        tracing::info!(%url, "following blocks over websocket");
        // A websocket silent for ten blocks is as good as disconnected.
        let stall = (block_time * 10).max(Duration::from_secs(3));
        // A block late, the (hedged) HTTP client is asked too, then every quarter block: a
        // hung node's websocket stays open and silent, and waiting out `stall` would cost the
        // blocks in between.
        let on_time = block_time + block_time / 4;
        let poll = (block_time / 4).max(Duration::from_millis(20));
        let mut wait = on_time;
        let mut silent_since = Instant::now();
        let mut delivered = false;
        let reason = loop {
            match tokio::time::timeout(wait, subscription.next()).await {
                // A chain that has not produced its first block yet is not stalled: keep
                // waiting on this subscription, quietly.
                Err(_) if self.last.is_none() && self.chain_has_no_block().await => {
                    tracing::debug!(%url, "block feed: waiting for the chain's first block");
                    silent_since = Instant::now();
                }
                Err(_) => {
                    if let Err(closed) = self.catch_up_over_http().await {
                        let _ = ws.close();
                        driver.abort();
                        return Err(closed);
                    }
                    if silent_since.elapsed() >= stall {
                        break format!("no block for {stall:?}");
                    }
                    wait = poll;
                }
                Ok(None) => break "subscription closed".to_string(),
                Ok(Some(Err(e))) => break format!("subscription error: {e}"),
                Ok(Some(Ok(event))) => {
                    let block = match event.data {
                        EventData::NewBlock { block: Some(b), .. }
                        | EventData::LegacyNewBlock { block: Some(b), .. } => {
                            block_to_new_block(&b)
                        }
                        _ => continue,
                    };
                    if let Err(closed) = self.deliver(block).await {
                        let _ = ws.close();
                        driver.abort();
                        return Err(closed);
                    }
                    delivered = true;
                    silent_since = Instant::now();
                    wait = on_time;
                }
            }
        };
        let _ = ws.close();
        driver.abort();
        ended(delivered, reason)
    }

    /// Delivers the newest block over HTTP when the chain is past the last one delivered (the
    /// blocks in between are replayed by [`Feed::deliver`]). Errors are left to the next try.
    async fn catch_up_over_http(&mut self) -> Result<(), Closed> {
        let latest = match self.client.latest_height().await {
            Ok(latest) if latest > 0 && self.last.is_none_or(|last| latest > last) => latest,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "block feed: polling the latest height");
                return Ok(());
            }
        };
        match self.client.block(Some(latest)).await {
            Ok(block) => self.deliver(block).await,
            Err(e) => {
                tracing::debug!(error = %e, "block feed: fetching the latest block");
                Ok(())
            }
        }
    }

    /// Polls HTTP for new blocks until `deadline` (forever with `None`).
    async fn poll_http_until(&mut self, deadline: Option<Instant>) -> Result<(), Closed> {
        let interval = (self.client.config().block_time / 2).max(Duration::from_millis(20));
        loop {
            match self.client.latest_height().await {
                // Height 0: the chain has committed no block yet.
                Ok(0) => tracing::debug!("block feed: waiting for the chain's first block"),
                Ok(latest) if self.last.is_none_or(|last| latest > last) => {
                    match self.client.block(Some(latest)).await {
                        Ok(block) => self.deliver(block).await?,
                        Err(e) if e.is_no_block_yet() => {
                            tracing::debug!("block feed: waiting for the chain's first block")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "block feed: fetching the latest block")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "block feed: polling the latest height"),
            }
            if self.sender.is_closed() {
                return Err(Closed);
            }
            let next = Instant::now() + interval;
            match deadline {
                Some(deadline) if next > deadline => {
                    tokio::time::sleep_until(deadline).await;
                    return Ok(());
                }
                _ => tokio::time::sleep_until(next).await,
            }
        }
    }

    /// Whether the node says it has committed no block yet (status at height 0, or, as the
    /// devnet and CometBFT do before the first block, a status height whose block is not
    /// there). Errors count as "no": the caller then treats the silence as a stall.
    async fn chain_has_no_block(&self) -> bool {
        match self.client.latest_height().await {
            Ok(0) => true,
            Ok(latest) if latest <= 1 => self
                .client
                .block(Some(latest))
                .await
                .is_err_and(|e| e.is_no_block_yet()),
            _ => false,
        }
    }

    /// Sends `block`, first replaying any heights missed since the last one sent.
    async fn deliver(&mut self, block: NewBlock) -> Result<(), Closed> {
        if let Some(last) = self.last {
            if block.height <= last {
                return Ok(());
            }
            let missing = block.height - last - 1;
            if missing > MAX_BACKFILL {
                tracing::warn!(
                    from = last + 1,
                    to = block.height - 1,
                    "block feed skips a gap too long to replay"
                );
            } else {
                for height in last + 1..block.height {
                    match self.fetch_with_retry(height).await {
                        Some(missed) => self.send(missed).await?,
                        None => tracing::error!(
                            height,
                            "block feed could not fetch a missed block; skipping it"
                        ),
                    }
                }
            }
        }
        self.send(block).await
    }

    async fn fetch_with_retry(&self, height: u64) -> Option<NewBlock> {
        let mut wait = BACKOFF_START;
        for _ in 0..5 {
            match self.client.block(Some(height)).await {
                Ok(block) => return Some(block),
                Err(e) => tracing::warn!(height, error = %e, "block feed: fetching a missed block"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(BACKOFF_MAX);
        }
        None
    }

    async fn send(&mut self, block: NewBlock) -> Result<(), Closed> {
        let height = block.height;
        self.sender.send(block).await.map_err(|_| Closed)?;
        self.last = Some(height);
        Ok(())
    }
}

struct WsEnd {
    delivered: bool,
    reason: String,
}
