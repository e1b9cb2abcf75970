//! redline manager: follows blocks, checks each block's health checks finish within the
//! deadline, and scales the health checkers and liquidators on one backend (child processes,
//! Docker containers or ECS Fargate services). With the process backend it also runs the
//! collector. Ctrl-C (SIGINT) or SIGTERM stops it and every worker it started.

use std::time::Duration;

use clap::Parser as _;
use redline_manager::app::{self, ManagerRun};
use redline_manager::config::{BackendKind, Cli};
use redline_manager::metrics::ManagerMetrics;
use redline_manager::scaler::docker::DockerScaler;
use redline_manager::scaler::ecs::EcsScaler;
use redline_service::service::ServiceContext;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.manager.validate().map_err(anyhow::Error::msg)?;
    let context = ServiceContext::start("manager", &cli.service).await?;
    let metrics = ManagerMetrics::register(&context.registry)?;
    let notifier = app::start_notifier(&cli, &context)?;
    let settings = app::settings(&cli, &context)?;
    let env = app::worker_environment(&cli);
    {
        let mut health = context.health.write().await;
        health["backend"] = cli.manager.backend.as_str().into();
        health["status"] = "starting".into();
    }
    let _dashboard = app::start_dashboard(
        &cli.manager.dashboard_addr,
        &context,
        &settings.attempts_stream,
    )
    .await?;
    let run = ManagerRun {
        context: &context,
        settings,
        metrics,
        notifier: notifier.clone(),
    };
    match cli.manager.backend {
        BackendKind::Process => run.with_processes(&cli.manager.process, env).await?,
        BackendKind::Docker => {
            let docker = DockerScaler::connect(cli.docker, env).await?;
            run.until_signal(docker.with_wallet_handoff(app::wallet_handoff(&context)))
                .await?
        }
        BackendKind::Ecs => {
            let ecs = EcsScaler::connect(cli.ecs, env).await?;
            run.until_signal(ecs.with_wallet_handoff(app::wallet_handoff(&context)))
                .await?
        }
    }
    // Errors queued for the operator still go out before the process ends.
    notifier.flush(Duration::from_secs(10)).await;
    Ok(())
}
