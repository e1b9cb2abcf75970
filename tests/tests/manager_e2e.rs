//! Issue 5's acceptance with the `process` backend: the real `manager` binary starts the
//! collector itself and no workers, then scales health checkers and liquidators as child
//! processes through load, no load and a price drop. The scenario, shared with the docker
//! backend's test, is described in [`manager_acceptance`].
//!
//! The binaries come from the workspace's target directory (`cargo build --bins` first; `make
//! test` builds them). The figures the issue asks for (blocks missed before and after scaling,
//! how long scale-up took) are printed: run with `-- --nocapture`.

mod manager_acceptance;

use manager_acceptance::{run_acceptance, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_scales_with_the_load_and_the_liquidations_land() -> anyhow::Result<()> {
    run_acceptance(Backend::Process).await
}
