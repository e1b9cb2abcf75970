//! Issue 5's acceptance with the `docker` backend: the real `manager` binary scales health
//! checkers and liquidators as containers of `redline/<service>:latest` on this machine's
//! Docker engine through load, no load and a price drop. The scenario, shared with the process
//! backend's test, is described in [`manager_acceptance`].
//!
//! Containers use the host network, so they reach the test's Redis and devnet on 127.0.0.1.
//! Missing images are built with `docker/build.sh` (what `make docker_build` runs; nothing is
//! pulled); images already there are used as they are, so after changing a worker's code run
//! `make docker_build` first. Every container of the run carries the label
//! `redline.deployment=<unique name>` and is removed at the end, also when the test fails.
//! It gates on `testkit::docker_or_skip`: without a Docker engine it prints a
//! loud SKIPPED line and passes, unless `CI=true` or `REDLINE_REQUIRE_DOCKER=1`, where it
//! fails; where an engine answers it must run.
//!
//! The manager binary comes from the workspace's target directory (`cargo build --bins`
//! first; `make test` builds it). Run with `-- --nocapture` for the figures.

mod manager_acceptance;

use manager_acceptance::{ensure_images, run_acceptance, Backend, DockerCleanup};
use testkit::docker_or_skip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_manager_scales_with_the_load_and_the_liquidations_land() -> anyhow::Result<()> {
    if !docker_or_skip("docker_manager_scales_with_the_load_and_the_liquidations_land") {
        return Ok(());
    }
    ensure_images(&["collector", "health-checker", "liquidator"])?;
    let deployment = format!(
        "e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    // Dropped after the scenario, whatever its outcome: no container of this run is left.
    let _cleanup = DockerCleanup(deployment.clone());
    run_acceptance(Backend::Docker {
        deployment,
        cpus: "0.25",
    })
    .await
}
