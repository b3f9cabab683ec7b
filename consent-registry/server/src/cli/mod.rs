//! The command line: `serve` and `check-config` run a node; every other
//! command is a client of a running cluster (it finds the leader).

mod admin;
mod args;
mod directive;
mod explain;
mod isa;
mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lhcie_config::RegistryConfig;
use lhcie_registry_client::RegistryClient;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "registry",
    version,
    about = "The London consent and ISA registry: a node, and its administration tool"
)]
struct Cli {
    /// API addresses of registry nodes (comma-separated); the tool finds
    /// the leader among them.
    #[arg(
        long,
        global = true,
        env = "LHCIE_REGISTRY",
        default_value = "127.0.0.1:50071",
        value_delimiter = ','
    )]
    registry: Vec<String>,
    /// Who you are, for your own records only: every change is recorded as
    /// made by the identity of your client certificate
    /// (`urn:lhcie:service:registry-admin`), never by this name.
    #[arg(long, global = true, env = "LHCIE_ACTOR")]
    actor: Option<String>,
    /// The CA the registry nodes' certificates chain to (mutual TLS).
    #[arg(long, global = true, env = "LHCIE_REGISTRY_CA", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,
    /// Your client certificate (`urn:lhcie:service:registry-admin`).
    #[arg(long, global = true, env = "LHCIE_REGISTRY_CERT", requires_all = ["ca", "key"])]
    cert: Option<PathBuf>,
    /// Your client certificate's key.
    #[arg(long, global = true, env = "LHCIE_REGISTRY_KEY", requires_all = ["ca", "cert"])]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a registry node.
    Serve {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a node's configuration file and say what it sets up.
    CheckConfig {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Information sharing agreements.
    #[command(subcommand)]
    Isa(isa::IsaCommand),
    /// Patients' consent directives.
    #[command(subcommand)]
    Directive(directive::DirectiveCommand),
    /// Carer and proxy grants.
    #[command(subcommand)]
    Carer(directive::CarerCommand),
    /// Decide a flow on the registry's copy, and explain the decision.
    Decide(admin::DecideArgs),
    /// Make a past message's decisions again, from the hub's audit records
    /// (`hub audit <message-id> > audit.json`): for the moment the hub
    /// decided, as of the registry revision its copy held; each beside what
    /// the hub recorded. Fails if any is not the same.
    Explain {
        /// The audit records (JSON; `-` for standard input).
        #[arg(long)]
        audit: PathBuf,
    },
    /// The node and the cluster as the leader sees them.
    Status,
    /// Add or remove cluster nodes.
    #[command(subcommand)]
    Cluster(admin::ClusterCommand),
    /// Load the agreements and directives of a policy file (the demo's)
    /// into the registry; those already there are left alone.
    Seed {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The topology it names organisations from.
        #[arg(long)]
        topology: PathBuf,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve { .. }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(serving: bool) {
    let default = if serving {
        "info,openraft=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LHCIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn client(cli: &Cli) -> anyhow::Result<RegistryClient> {
    let actor = cli.actor.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let client = RegistryClient::new(cli.registry.clone(), actor)?;
    Ok(match tls(cli) {
        Some(tls) => client.with_tls(&tls)?,
        None => client,
    })
}

/// Mutual TLS, if `--ca`, `--cert` and `--key` are given.
fn tls(cli: &Cli) -> Option<lhcie_registry_client::RegistryTls> {
    match (&cli.ca, &cli.cert, &cli.key) {
        (Some(ca), Some(cert), Some(key)) => Some(lhcie_registry_client::RegistryTls {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
            nodes: Vec::new(),
        }),
        _ => None,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { config } => {
            let config = RegistryConfig::load(config)?;
            let shutdown = CancellationToken::new();
            lhcie_runtime::cancel_on_signal(shutdown.clone());
            lhcie_registry::node::run(config, shutdown, |bound| {
                // One line on stdout that scripts and tests wait for.
                let metrics = bound
                    .metrics
                    .map(|a| format!(" metrics={a}"))
                    .unwrap_or_default();
                println!(
                    "registry listening raft={} api={}{metrics}",
                    bound.raft, bound.api
                );
                use std::io::Write;
                let _ = std::io::stdout().flush();
            })
            .await
        }
        Command::CheckConfig { config } => admin::check_config(config),
        Command::Isa(command) => isa::run(&client(&cli)?, command).await,
        Command::Directive(command) => directive::run(&client(&cli)?, command).await,
        Command::Carer(command) => directive::run_carer(&client(&cli)?, command).await,
        Command::Decide(args) => admin::decide(&client(&cli)?, args).await,
        Command::Explain { audit } => explain::run(&client(&cli)?, audit).await,
        Command::Status => admin::status(&client(&cli)?).await,
        Command::Cluster(command) => {
            admin::cluster(&client(&cli)?, tls(&cli).as_ref(), command).await
        }
        Command::Seed { policy, topology } => admin::seed(&client(&cli)?, policy, topology).await,
    }
}
