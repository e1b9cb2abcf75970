//! Shared helpers of the end-to-end tests: an in-process devnet node on a free loopback port,
//! the chain client and wallets pointed at it, and (re-exported) the testkit, whose devnet runs
//! the default scenario.
//!
//! Every helper starts its own node (port 0 → the OS picks a free port), so tests run in
//! parallel without sharing a chain.

use anyhow::Context as _;
use redline_chain::{ChainConfig, TendermintClient, Wallet};
use redline_devnet::chain::ChainState;
use redline_devnet::rpc::NodeHandle;

pub use testkit;

pub mod abci;
pub mod bench;
pub mod capture;
pub mod chaos;
pub mod credit_capture;
pub mod machine;

/// A public test mnemonic (cosmjs's test faucet): wallets of e2e tests derive from it.
/// Never use it for anything of value.
pub const TEST_MNEMONIC: &str = "economy stock theory fatal elder harbor betray wasp final emotion task crumble siren bottom lizard educate guess current outdoor pair theory focus wife stone";

pub use testkit::devnet::BLOCK_TIME as TEST_BLOCK_TIME;

/// The devnet's chain parameters for tests: its defaults with [`TEST_BLOCK_TIME`].
pub fn devnet_chain_config() -> redline_devnet::chain::ChainConfig {
    redline_devnet::chain::ChainConfig {
        block_time: TEST_BLOCK_TIME,
        ..Default::default()
    }
}

/// Wallet `index` of [`TEST_MNEMONIC`] with the chain's prefix.
pub fn test_wallet(prefix: &str, index: u32) -> Wallet {
    Wallet::from_mnemonic(TEST_MNEMONIC, prefix, index).expect("the test mnemonic derives")
}

/// A devnet node running in this process.
pub struct TestNode {
    pub node: NodeHandle,
    pub chain: redline_devnet::chain::ChainConfig,
}

impl TestNode {
    /// Starts a node on a free loopback port after running `genesis` (deploy contracts, fund
    /// accounts) on its chain thread.
    pub async fn start<G, T>(
        chain: redline_devnet::chain::ChainConfig,
        genesis: G,
    ) -> anyhow::Result<(Self, T)>
    where
        G: FnOnce(&mut ChainState) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (node, output) = testkit::devnet::start_node(chain.clone(), genesis).await?;
        Ok((TestNode { node, chain }, output))
    }

    /// The chain client's view of this node: its HTTP and websocket URLs and fee settings.
    pub fn chain_config(&self) -> ChainConfig {
        ChainConfig::new(
            &self.chain.chain_id,
            &self.chain.bech32_prefix,
            &[self.node.rpc_http_url()],
            &[self.node.rpc_ws_url()],
            &self.chain.fee_denom,
            &self.chain.min_gas_price.to_string(),
            self.chain.block_time,
        )
        .expect("a devnet node's settings are a valid chain config")
    }

    pub fn client(&self) -> TendermintClient {
        TendermintClient::new(self.chain_config()).expect("a valid chain config builds a client")
    }

    pub fn wallet(&self, index: u32) -> Wallet {
        test_wallet(&self.chain.bech32_prefix, index)
    }

    pub async fn shutdown(self) {
        self.node.shutdown().await
    }
}

/// The workspace's services, as `cargo build --bins` names them.
pub const SERVICES: [&str; 4] = ["manager", "collector", "health-checker", "liquidator"];

/// The directory `cargo build` puts the workspace's binaries in (tests run from
/// `target/<profile>/deps/`), checked to hold each of `binaries`.
pub fn bin_dir(binaries: &[&str]) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .context("the test binary is not in target/<profile>/deps")?
        .to_path_buf();
    for binary in binaries {
        anyhow::ensure!(
            dir.join(binary).is_file(),
            "{} is missing: build the binaries first (cargo build --bins, or make test)",
            dir.join(binary).display()
        );
    }
    Ok(dir)
}

/// Spawns `command` (`what` it starts, for the error) with no input and its output and errors
/// written to a new file at `log_path`; the process is killed when its handle is dropped.
pub fn spawn_logged(
    command: &mut tokio::process::Command,
    log_path: &std::path::Path,
    what: &str,
) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(log_path)?;
    command
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {what}"))
}

/// An `http://` URL nothing listens on (for fail-over tests): a port the OS just handed out
/// and that was released again.
pub fn dead_http_url() -> String {
    let port = testkit::free_port().expect("a free port");
    format!("http://127.0.0.1:{port}")
}

/// A `ws://` URL nothing listens on.
pub fn dead_ws_url() -> String {
    let port = testkit::free_port().expect("a free port");
    format!("ws://127.0.0.1:{port}/websocket")
}

/// A TCP proxy in front of a server that can cut every open connection at once, to see
/// clients survive a dropped connection (a websocket that dies mid-stream).
pub struct TcpProxy {
    addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// [`ProxyMode`] as a number, read by every connection.
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `target`.
    pub async fn start(target: std::net::SocketAddr) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the proxy")?;
        let addr = listener.local_addr().context("proxy address")?;
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(ProxyMode::Open as u8));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let counter = accepted.clone();
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut cuts = cuts.clone();
                // A clone has seen what the original saw (nothing): mark the cuts so far as
                // seen, or every connection after the first cut would be closed at once.
                cuts.borrow_and_update();
                let current = modes.load(Ordering::SeqCst);
                if current == ProxyMode::Down as u8 {
                    // Closed at once, as a dead endpoint's connection is reset.
                    drop(inbound);
                    continue;
                }
                if current == ProxyMode::Stalled as u8 {
                    // Accepted, never answered: held until the next cut (or the client gives up).
                    tokio::spawn(async move {
                        let _ = cuts.changed().await;
                        drop(inbound);
                    });
                    continue;
                }
                let modes = modes.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    // Either side closing, or a cut, ends the connection (dropping both ends);
                    // a hang freezes it instead: open, silent, until the next cut.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {
                            if modes.load(Ordering::SeqCst) == ProxyMode::Stalled as u8 {
                                let _ = cuts.changed().await;
                            }
                        }
                    }
                });
            }
        });
        Ok(TcpProxy {
            addr,
            accepted,
            mode,
            cut,
            task,
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes every open connection; new ones are still accepted.
    pub fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// Switches how connections are treated: going down closes the open ones, hanging freezes
    /// them (open, never answered again, as a hung node's), and coming back closes the frozen
    /// ones.
    pub fn set_mode(&self, mode: ProxyMode) {
        let before = self
            .mode
            .swap(mode as u8, std::sync::atomic::Ordering::SeqCst);
        if mode != ProxyMode::Open || before == ProxyMode::Stalled as u8 {
            self.cut();
        }
    }
}

/// What a [`TcpProxy`] does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyMode {
    /// Forwards them to the target.
    Open = 0,
    /// Closes them at once (an endpoint that is down).
    Down = 1,
    /// Accepts them and never answers (an endpoint that hangs).
    Stalled = 2,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
