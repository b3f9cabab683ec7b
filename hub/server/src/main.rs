//! # hub: the London Health and Care Information Exchange hub
//!
//! The binary that routes canonical envelopes between local exchanges. Its
//! subcommands:
//!
//! - `hub check-config <hub.toml>`: load and validate the hub configuration
//!   and the topology it names, print a summary, bind nothing.
//! - `hub bootstrap-broker <hub.toml>`: declare the broker topology (quorum
//!   queues, dead-letter exchanges and queues) for every exchange in the
//!   topology. Idempotent.
//!
//! Configuration is validated before anything connects; see `lhcie-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lhcie_broker::{BrokerTopology, Declaration};
use lhcie_config::{HubConfig, Topology};

#[derive(Parser)]
#[command(
    name = "hub",
    version,
    about = "London Health and Care Information Exchange hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the hub configuration and its topology, then exit.
    CheckConfig {
        /// The hub configuration file.
        config: PathBuf,
    },
    /// Declare the broker's exchanges and queues for every exchange in the
    /// topology. Safe to run again.
    BootstrapBroker {
        /// The hub configuration file.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hub: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hub: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LHCIE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig { config } => {
            let (hub, topology) = load(&config)?;
            print_summary(&hub, &topology);
            Ok(())
        }
        Command::BootstrapBroker { config } => {
            let (hub, topology) = load(&config)?;
            let plan = BrokerTopology::from_config(&hub.broker, &topology);
            let connection = lhcie_broker::connect(&hub.broker, "hub bootstrap-broker").await?;
            let channel = connection
                .create_channel()
                .await
                .context("opening a channel")?;
            let declared = plan.declare(&channel).await?;
            let _ = connection.close(200, "bootstrap done".into()).await;
            let queues = declared
                .iter()
                .filter(|d| matches!(d, Declaration::Queue { .. }))
                .count();
            println!(
                "broker {}: declared {queues} quorum queues under prefix `{}` (ingress, {} egress, one dead-letter queue each; delivery limit {})",
                hub.broker.redacted_url(),
                hub.broker.prefix,
                topology.exchanges().len(),
                hub.broker.delivery_limit,
            );
            Ok(())
        }
    }
}

fn load(file: &std::path::Path) -> anyhow::Result<(HubConfig, Topology)> {
    let hub = HubConfig::load(file)?;
    let topology = Topology::load(&hub.topology)?;
    Ok((hub, topology))
}

fn print_summary(hub: &HubConfig, topology: &Topology) {
    let organisations: usize = topology
        .exchanges()
        .iter()
        .map(|e| e.organisations.len())
        .sum();
    println!(
        "topology {}: {} regions, {} exchanges, {} organisations",
        topology.file().display(),
        topology.regions().count(),
        topology.exchanges().len(),
        organisations
    );
    for region in topology.regions() {
        let exchanges: Vec<String> = topology
            .exchanges()
            .iter()
            .filter(|e| e.region == region.code)
            .map(|e| format!("{} ({})", e.id, e.adapter.kind()))
            .collect();
        println!(
            "  {} {}: {}",
            region.code,
            region.name,
            exchanges.join(", ")
        );
    }
    println!(
        "broker {} prefix `{}`",
        hub.broker.redacted_url(),
        hub.broker.prefix
    );
}
