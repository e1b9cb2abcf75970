//! redline collector: finds every account with debt and keeps the index current block by block.

use anyhow::Context as _;
use clap::Parser;
use redline_collector::{Collector, Config, Connections};
use redline_protocol::rover::{Rover, RoverContracts};
use redline_protocol::RedBank;
use redline_service::service::{shutdown_signal, ServiceArgs, ServiceContext};

#[derive(Debug, Parser)]
#[command(
    name = "collector",
    version,
    about = "Finds every account with debt and keeps the index current block by block"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    collector: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.collector.validate()?;
    let context = ServiceContext::start("collector", &cli.service).await?;
    let base_decimals =
        redline_protocol::red_bank::base_decimals(&context.client, &context.manifest)
            .await
            .context("reading the decimals of the oracle's base denom")?;
    let red_bank = RedBank::from_manifest(context.client.clone(), &context.manifest, base_decimals);
    let collector = Collector::new(
        Connections {
            client: context.client.clone(),
            chain_id: context.manifest.chain_id.clone(),
            red_bank,
            rover: RoverContracts::from_manifest(&context.manifest.contracts)
                .map(|contracts| Rover::new(context.client.clone(), contracts)),
            redis: context.redis.clone(),
            queue: context.queue.clone(),
            registry: context.registry.clone(),
            health: context.health.clone(),
        },
        cli.collector,
    )
    .await?;
    collector.run(shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn flags_do_not_clash_with_the_shared_service_flags() {
        super::Cli::command().debug_assert();
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        collector: redline_collector::Config,
    }

    #[test]
    fn bad_values_are_refused_when_parsed() {
        let parse = |args: &[&str]| {
            <Flags as clap::Parser>::try_parse_from(
                std::iter::once("collector").chain(args.iter().copied()),
            )
        };
        let defaults = parse(&[]).unwrap().collector;
        assert_eq!(defaults.enqueue.job_size, 500);
        assert_eq!(defaults.discovery.scan_page_size, 1_000);
        for bad in [
            ["--index-buckets", "0"],
            ["--index-buckets", "1000001"],
            ["--scan-page-size", "0"],
            ["--scan-page-size", "100001"],
            ["--scan-concurrency", "0"],
            ["--scan-concurrency", "257"],
            ["--query-concurrency", "0"],
            ["--query-concurrency", "1025"],
            ["--job-size", "0"],
            ["--snapshot-ttl-secs", "0"],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
    }
}
