//! Starting and stopping one registry node: the store, Raft, the internal
//! Raft port, the public API port and the optional metrics endpoint;
//! forming the cluster on first start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lhcie_config::{RegistryConfig, Topology};
use lhcie_hub_core::RouteTable;
use lhcie_proto::registry::cluster_admin_server::ClusterAdminServer;
use lhcie_proto::registry::consent_registry_server::ConsentRegistryServer;
use lhcie_proto::registry::raft_internal_server::RaftInternalServer;
use openraft::SnapshotPolicy;
use tokio_util::sync::CancellationToken;

use crate::api::RegistryApi;
use crate::api::authorise::{Authentication, Role};
use crate::cluster::ClusterAdminService;
use crate::network::{MAX_RAFT_MESSAGE, Network, RaftService};
use crate::store::{self, StoreOptions};
use crate::types::{Node, NodeId, Raft};

/// Where a started node listens.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The internal Raft port.
    pub raft: SocketAddr,
    /// The public API port.
    pub api: SocketAddr,
    /// The Prometheus endpoint (`GET /metrics`), if `[metrics]` asks for
    /// one.
    pub metrics: Option<SocketAddr>,
}

/// The largest API message (an import batch).
const MAX_API_MESSAGE: usize = 32 * 1024 * 1024;

/// The organisations of the topology, with their exchange and region.
pub fn placements(topology: &Topology) -> RouteTable {
    let mut table = RouteTable::new();
    for exchange in topology.exchanges() {
        for organisation in &exchange.organisations {
            table.insert(
                organisation.clone(),
                exchange.id.clone(),
                exchange.region.clone(),
            );
        }
    }
    table
}

fn raft_config(config: &RegistryConfig) -> anyhow::Result<openraft::Config> {
    let raft = openraft::Config {
        cluster_name: "lhcie-registry".into(),
        heartbeat_interval: config.raft.heartbeat_ms,
        election_timeout_min: config.raft.election_timeout_min_ms,
        election_timeout_max: config.raft.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.raft.snapshot_after_entries),
        max_in_snapshot_log_to_keep: config.raft.keep_entries_after_snapshot,
        snapshot_max_chunk_size: 4 * 1024 * 1024,
        install_snapshot_timeout: 10_000,
        max_payload_entries: 300,
        ..Default::default()
    };
    Ok(raft.validate()?)
}

/// Runs a node until `shutdown` is cancelled; `on_bound` is called once
/// its ports are bound.
pub async fn run(
    config: RegistryConfig,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let topology = Topology::load(&config.topology)?;
    let placements = Arc::new(placements(&topology));
    let options = StoreOptions {
        cache_bytes: config.store.cache_mb * 1024 * 1024,
        change_log_capacity: config.store.change_log_capacity,
    };
    let (log, state_machine, registry) = store::open(&config.data_dir, options)
        .await
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;

    let raft_listener = lhcie_runtime::net::bind(config.raft.listen)
        .await
        .with_context(|| format!("binding the Raft port {}", config.raft.listen))?;
    let api_listener = lhcie_runtime::net::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API port {}", config.api.listen))?;
    let bound = Bound {
        raft: raft_listener.local_addr()?,
        api: api_listener.local_addr()?,
        metrics: serve_metrics(&config, &shutdown).await?,
    };
    let me = Node {
        raft_address: config
            .raft
            .advertise
            .clone()
            .unwrap_or_else(|| bound.raft.to_string()),
        api_address: config
            .api
            .advertise
            .clone()
            .unwrap_or_else(|| bound.api.to_string()),
    };

    let node_id = config.node_id;
    let tls = Tls::load(&config)?;
    let auth = match &tls {
        Some(_) => Authentication::Tls,
        None => {
            tracing::warn!(
                "api.insecure_plaintext: no TLS and no authentication on either port (loopback development only)"
            );
            Authentication::Insecure {
                acts_as: config
                    .api
                    .insecure_acts_as
                    .as_deref()
                    .and_then(Role::of_service),
            }
        }
    };
    let raft = Raft::new(
        node_id,
        Arc::new(raft_config(&config)?),
        Network::new(tls.as_ref().map(|t| t.client.clone())),
        log,
        state_machine,
    )
    .await
    .context("starting Raft")?;
    if bound.metrics.is_some() {
        crate::metrics::raft::spawn(&raft, shutdown.clone());
    }
    let initial = initial_members(&config, &me);

    let api = RegistryApi::new(
        raft.clone(),
        registry.clone(),
        node_id,
        placements,
        config.consent_model,
        config.api.max_decide_batch,
        Duration::from_millis(config.api.watch_heartbeat_ms),
        shutdown.clone(),
        auth.clone(),
    );
    let server_tls = tls.as_ref().map(|t| t.server.clone());
    let raft_routes = tonic::transport::Server::builder()
        .add_service(
            RaftInternalServer::new(RaftService::new(
                raft.clone(),
                auth.clone(),
                initial.keys().copied().collect(),
            ))
            .max_decoding_message_size(MAX_RAFT_MESSAGE)
            .max_encoding_message_size(MAX_RAFT_MESSAGE),
        )
        .add_service(ClusterAdminServer::new(ClusterAdminService::new(
            raft.clone(),
            node_id,
            initial.clone(),
            auth,
        )));
    let raft_server = serve(raft_routes, raft_listener, server_tls.clone(), &shutdown);
    let api_routes = tonic::transport::Server::builder().add_service(
        ConsentRegistryServer::new(api)
            .max_decoding_message_size(MAX_API_MESSAGE)
            .max_encoding_message_size(MAX_API_MESSAGE),
    );
    let api_server = serve(api_routes, api_listener, server_tls, &shutdown);
    let raft_task = tokio::spawn(raft_server);
    let api_task = tokio::spawn(api_server);

    if config.cluster.join {
        tracing::info!("waiting to be added to the cluster (registry cluster add)");
    } else {
        form_cluster_if_first(&raft, node_id, &initial).await?;
    }
    let metrics = bound
        .metrics
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    tracing::info!(node = node_id, raft = %bound.raft, api = %bound.api, %metrics, revision = registry.revision(), "registry node started");
    on_bound(bound);

    shutdown.cancelled().await;
    tracing::info!("registry node stopping");
    let _ = raft_task.await;
    let _ = api_task.await;
    if let Err(error) = raft.shutdown().await {
        tracing::warn!(%error, "Raft did not stop cleanly");
    }
    registry.flush().await?;
    Ok(())
}

/// A server until `shutdown`. With TLS, the handshakes are done here
/// (`lhcie_tls::revocation::incoming`), so the client verifier can check
/// the revocation list; tonic still sees the client certificate
/// (`Request::peer_certs`), from which callers are identified.
fn serve(
    routes: tonic::transport::server::Router,
    listener: lhcie_runtime::net::Listener,
    tls: Option<Arc<lhcie_tls::revocation::ServerConfig>>,
    shutdown: &CancellationToken,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>>
{
    let stop = shutdown.clone();
    let stopped = async move { stop.cancelled().await };
    match tls {
        Some(tls) => Box::pin(routes.serve_with_incoming_shutdown(
            lhcie_tls::revocation::incoming(
                listener,
                tls,
                Duration::from_secs(10),
                shutdown.clone(),
            ),
            stopped,
        )),
        None => Box::pin(routes.serve_with_incoming_shutdown(listener.incoming(), stopped)),
    }
}

/// A node's mutual TLS: as a server (both ports; callers' certificates
/// checked against the CA and, if configured, its revocation list) and as a
/// client of the other nodes.
struct Tls {
    server: Arc<lhcie_tls::revocation::ServerConfig>,
    client: lhcie_tls::principal_verifier::Pem,
}

impl Tls {
    fn load(config: &RegistryConfig) -> anyhow::Result<Option<Self>> {
        let Some(section) = &config.tls else {
            return Ok(None);
        };
        let server = lhcie_tls::revocation::server_config(
            &section.cert,
            &section.key,
            &section.ca,
            section.crl.as_deref(),
        )
        .context("[tls]")?;
        let client =
            lhcie_tls::principal_verifier::Pem::read(&section.ca, &section.cert, &section.key)
                .context("[tls]")?;
        // Checked now rather than at the first connection.
        lhcie_tls::principal_verifier::client_config_from_pem(&client, Arc::new(|_| true))
            .context("[tls]")?;
        Ok(Some(Self { server, client }))
    }
}

/// Installs the recorder and serves `/metrics` if `[metrics]` asks for it;
/// the bound address.
async fn serve_metrics(
    config: &RegistryConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(section) = &config.metrics else {
        return Ok(None);
    };
    if !crate::metrics::install() {
        tracing::warn!("another metrics recorder is installed; /metrics will be unavailable");
    }
    let bound = lhcie_runtime::metrics::serve(section.listen, shutdown.clone())
        .await
        .with_context(|| format!("binding the metrics port {}", section.listen))?;
    tracing::info!(metrics = %bound, "serving GET /metrics and /healthz");
    Ok(Some(bound))
}

/// The members the cluster is formed with: those configured, or this node
/// alone.
fn initial_members(config: &RegistryConfig, me: &Node) -> BTreeMap<NodeId, Node> {
    if config.cluster.initial_members.is_empty() {
        return BTreeMap::from([(config.node_id, me.clone())]);
    }
    config
        .cluster
        .initial_members
        .iter()
        .map(|member| {
            (
                member.id,
                Node {
                    raft_address: member.raft.clone(),
                    api_address: member.api.clone(),
                },
            )
        })
        .collect()
}

/// On its very first start, the initial member with the lowest id forms
/// the cluster; every other node waits to be contacted by the leader.
async fn form_cluster_if_first(
    raft: &Raft,
    node_id: NodeId,
    initial: &BTreeMap<NodeId, Node>,
) -> anyhow::Result<()> {
    if raft.is_initialized().await? {
        return Ok(());
    }
    if initial.keys().next() != Some(&node_id) {
        tracing::info!("waiting to be contacted by the cluster's leader");
        return Ok(());
    }
    raft.initialize(initial.clone())
        .await
        .context("forming the cluster")?;
    tracing::info!(members = ?initial.keys().collect::<Vec<_>>(), "cluster formed");
    Ok(())
}
