//! # adapter: one local exchange's adapter
//!
//! One process per local exchange. It reads its file
//! ([`lhcie_config::adapter`]), finds the exchange in the topology, and
//! runs the adapter of the kind the topology names for it:
//!
//! - `hl7v2-mllp` ([`hl7v2`]): HL7 v2 over MLLP both ways;
//! - `fhir-r4` ([`fhir`]): FHIR R4 messaging over HTTP both ways;
//! - `native`: not served by this binary; a clear error.
//!
//! Every kind shares the same machinery ([`runtime`]): a durable outbox
//! forwarded to the hub through the kit's uplink, a de-duplicating
//! receiver of deliveries, heartbeats reporting the outbox depth, and
//! graceful shutdown on SIGINT or SIGTERM; with `[metrics]` a Prometheus
//! endpoint, and trace events to the hub ([`ops`]). A kind implements
//! [`kind::AdapterKind`] and gets an [`context::AdapterContext`].
//!
//! ```sh
//! adapter check-config --config adapter.toml
//! adapter serve --config adapter.toml
//! ```
//!
//! Logs carry message ids, counts and codes, never payloads or patient
//! identifiers.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod context;
mod fhir;
mod hl7v2;
mod hub_codes;
mod kind;
mod ops;
mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lhcie_config::AdapterSettings;

#[derive(Parser)]
#[command(
    name = "adapter",
    version,
    about = "A local exchange's adapter to the London hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the adapter until SIGINT or SIGTERM.
    Serve {
        /// The adapter's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the configuration (and the topology it names), print a
    /// summary, and exit.
    CheckConfig {
        /// The adapter's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LHCIE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve { config } => serve(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("adapter: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let settings = AdapterSettings::load(file)?;
    kind::check_supported(&settings.exchange.adapter)?;
    let metrics = settings
        .file
        .metrics
        .as_ref()
        .map_or_else(|| "none".to_owned(), |m| m.listen.to_string());
    println!(
        "{}: exchange {} ({}), adapter kind {}, hub {}, store {}, metrics {metrics}",
        file.display(),
        settings.exchange.id,
        settings.exchange.name,
        settings.exchange.adapter.kind(),
        settings.file.hub.endpoint,
        settings.file.store.path.display()
    );
    Ok(())
}

fn serve(file: &std::path::Path) -> anyhow::Result<()> {
    let settings = AdapterSettings::load(file)?;
    kind::check_supported(&settings.exchange.adapter)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(runtime::serve(settings))
}
