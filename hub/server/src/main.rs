//! # hub: the London Health and Care Information Exchange hub
//!
//! Subcommands:
//!
//! - `hub serve <hub.toml>`: run the hub.
//! - `hub check-config <hub.toml>`: validate the configuration, topology and
//!   policy, print a summary, bind nothing.
//! - `hub bootstrap-broker <hub.toml>`: declare the broker topology (the
//!   hub also does this itself whenever it connects). Idempotent.
//! - `hub dev-pki <hub.toml> <dir>`: generate a development CA, the hub's
//!   certificate, one client certificate per exchange, one certificate per
//!   registry node (`--registry-nodes`, 3 by default) and the service
//!   client certificates `hub` and `registry-admin`; and an empty
//!   certificate revocation list `crl.pem` for `[grpc.tls] crl`.
//! - `hub hash-password`: the argon2id hash of a password read from
//!   standard input, for the dashboard's users file.
//! - `hub dead-letters --user <name> --password-file <file> list|replay|discard`:
//!   dead letters through the dashboard's API (see `ops_cli`).
//! - `hub provision-broker-users <hub.toml> <dir>`: create one broker user
//!   per exchange (least privilege) with `rabbitmqctl`, writing each
//!   exchange's user and password to its own file `<dir>/<exchange-id>.toml`
//!   (mode 0600, set explicitly), so that each adapter reads only its own.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lhcie_broker::{BrokerTopology, Declaration, Names, users};
use lhcie_config::{HubConfig, PolicyConfig, Topology};
use tokio_util::sync::CancellationToken;

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
    /// Run the hub.
    Serve {
        /// The hub configuration file.
        config: PathBuf,
    },
    /// Validate the hub configuration, its topology and policy, then exit.
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
    /// Generate a development PKI: CA, hub certificate, one client
    /// certificate per exchange, registry node certificates
    /// (`registry/node-<id>.pem`) and service client certificates
    /// (`services/hub.pem`, `services/registry-admin.pem`).
    DevPki {
        /// The hub configuration file (for the topology).
        config: PathBuf,
        /// Where to write the files.
        dir: PathBuf,
        /// How many registry node certificates to make (ids 1 to N).
        #[arg(long, default_value_t = 3)]
        registry_nodes: u64,
    },
    /// Print the argon2id hash of a password read from standard input, for
    /// the dashboard's users file.
    HashPassword,
    /// List, replay or discard dead letters through the dashboard's API.
    DeadLetters {
        #[command(flatten)]
        connection: lhcie_hub::ops_cli::Connection,
        #[command(subcommand)]
        command: lhcie_hub::ops_cli::DeadLetterCommand,
    },
    /// Print the hub's audit records of one message as JSON, through the
    /// dashboard's API (for `registry explain --audit`).
    Audit {
        #[command(flatten)]
        connection: lhcie_hub::ops_cli::Connection,
        /// The message id.
        message_id: String,
    },
    /// Create or update one broker user per exchange with rabbitmqctl.
    ProvisionBrokerUsers {
        /// The hub configuration file.
        config: PathBuf,
        /// The folder for the credentials files: one `<exchange-id>.toml`
        /// per exchange (user, password; mode 0600).
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("hub: a TLS crypto provider was already installed");
    }
    init_logging();
    let cli = Cli::parse();
    // Store operations are synchronous and can stall for a moment (sled
    // segment roll-over); more workers than cores keep one such stall from
    // freezing half the hub.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(4, |n| n.get() * 2))
        .enable_all()
        .build()
    {
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
        Command::Serve { config } => {
            let hub = HubConfig::load(&config)?;
            let shutdown = CancellationToken::new();
            lhcie_hub::app::cancel_on_signal(shutdown.clone());
            lhcie_hub::app::run(hub, shutdown, |bound| {
                // One line on stdout that scripts and tests wait for.
                match bound.dashboard {
                    Some(dashboard) => println!(
                        "hub listening grpc={} admin={} dashboard={dashboard}",
                        bound.grpc, bound.admin
                    ),
                    None => println!("hub listening grpc={} admin={}", bound.grpc, bound.admin),
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
            })
            .await
        }
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.len() < 12 {
                anyhow::bail!("use a password of at least 12 characters");
            }
            println!("{}", lhcie_hub::dashboard::auth::hash_password(password)?);
            Ok(())
        }
        Command::DeadLetters {
            connection,
            command,
        } => lhcie_hub::ops_cli::run(connection, command).await,
        Command::Audit {
            connection,
            message_id,
        } => lhcie_hub::ops_cli::audit(connection, &message_id).await,
        Command::CheckConfig { config } => {
            let (hub, topology) = load(&config)?;
            let policy = match &hub.policy {
                Some(file) => Some(PolicyConfig::load(file, &topology)?),
                None => None,
            };
            print_summary(&hub, &topology, policy.as_ref());
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
                "broker {}: declared {queues} quorum queues under prefix `{}` (ingress, {} egress, one dead-letter queue each, patient notifications; delivery limit {})",
                hub.broker.redacted_url(),
                hub.broker.prefix,
                topology.exchanges().len(),
                hub.broker.delivery_limit,
            );
            Ok(())
        }
        Command::DevPki {
            config,
            dir,
            registry_nodes,
        } => {
            let (_, topology) = load(&config)?;
            let ids: Vec<_> = topology.exchanges().iter().map(|e| e.id.clone()).collect();
            let layout = lhcie_tls::PkiLayout::new(&dir);
            let ca = layout.generate(&ids)?;
            let nodes: Vec<u64> = (1..=registry_nodes).collect();
            layout.generate_services(&ca, &nodes, &["hub", "registry-admin"])?;
            // An empty certificate revocation list signed by the CA, for
            // `[grpc.tls] crl` (docs/security.md, "Credentials and revocation").
            let crl = lhcie_tls::revocation::crl_path(&layout);
            ca.write_crl(&crl, &[], 1)?;
            println!(
                "development PKI in {}: ca.pem, hub.pem/hub.key, exchanges/<id>.pem/.key for {} exchanges, registry/node-<id>.pem/.key for {registry_nodes} registry nodes, services/hub.pem and services/registry-admin.pem (with keys)",
                dir.display(),
                ids.len()
            );
            println!("certificate revocation list (empty): {}", crl.display());
            Ok(())
        }
        Command::ProvisionBrokerUsers { config, out } => {
            let (hub, topology) = load(&config)?;
            let names = Names::new(&hub.broker.prefix);
            let mut created = Vec::new();
            for exchange in topology.exchanges() {
                created.push(users::adapter_user(&names, &exchange.id)?);
            }
            users::apply(&created, "/")?;
            users::wait_until_usable(
                &created,
                |user| hub.broker.with_credentials(&user.name, &user.password).url,
                std::time::Duration::from_secs(30),
            )
            .await?;
            write_credentials(&out, &created)?;
            println!(
                "broker users: {} created or updated (names {}-<exchange-id>); each exchange's password in {}/<exchange-id>.toml (mode 0600)",
                created.len(),
                hub.broker.prefix,
                out.display()
            );
            Ok(())
        }
    }
}

/// One credentials file per exchange, `<dir>/<exchange>.toml`, each mode
/// 0600 (set explicitly, also on a file that existed): an adapter reads
/// only its own.
fn write_credentials(dir: &Path, created: &[users::AdapterUser]) -> anyhow::Result<()> {
    for user in created {
        lhcie_config::BrokerCredentialsFile {
            exchange: user.exchange.clone(),
            user: user.name.clone(),
            password: user.password.clone(),
        }
        .write_in(dir)
        .with_context(|| {
            format!(
                "writing {}",
                lhcie_config::BrokerCredentialsFile::path_in(dir, &user.exchange).display()
            )
        })?;
    }
    Ok(())
}

fn load(file: &Path) -> anyhow::Result<(HubConfig, Topology)> {
    let hub = HubConfig::load(file)?;
    let topology = Topology::load(&hub.topology)?;
    Ok((hub, topology))
}

fn print_summary(hub: &HubConfig, topology: &Topology, policy: Option<&PolicyConfig>) {
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
    match (policy, &hub.policy, &hub.registry) {
        (Some(policy), Some(file), _) => println!(
            "policy file {}: {} agreements, {} patient directives, consent model {:?}",
            file.display(),
            policy.agreements.len(),
            policy.directives.len(),
            policy.consent_model
        ),
        (_, _, Some(registry)) => println!(
            "consent registry at {} (messages held when its copy is older than {} ms)",
            registry.endpoints.join(", "),
            registry.max_staleness_ms
        ),
        _ => {}
    }
    println!(
        "broker {} prefix `{}`",
        hub.broker.redacted_url(),
        hub.broker.prefix
    );
    println!(
        "grpc {} ({}), admin {}",
        hub.grpc.listen,
        if hub.grpc.tls.is_some() {
            "mutual TLS"
        } else {
            "PLAIN TEXT, development only"
        },
        hub.admin.listen
    );
}
