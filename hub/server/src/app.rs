//! Starting and stopping the hub.
//!
//! Configuration, topology and policy are loaded and validated before
//! anything binds. Then: the store, the broker link (which declares the
//! broker topology on each connection), the gRPC, admin and dashboard
//! listeners, the AMQP ingress consumer, the dead-letter collector, the
//! retention pruning and the operations poller (queue depths, state
//! gauges). The admin listener serves health, readiness and metrics only;
//! whatever names a patient or a message is on the dashboard's, behind its
//! login. On SIGTERM or Ctrl-C (or the handle's
//! shutdown): stop taking new work, finish what is in flight within the
//! grace period, flush the store, exit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lhcie_broker::{BrokerTopology, Names};
use lhcie_config::{HubConfig, PolicyConfig, Topology};
use lhcie_hub_core::{Policy, RouteTable, StaticPolicy};
use lhcie_proto::hub::exchange_server::ExchangeServer;
use lhcie_registry_client::{RegistryClient, RegistryPolicy};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::AdapterRegistry;
use crate::admin::{self, AdminState};
use crate::dashboard::auth::{Auth, Users};
use crate::dashboard::{self, DashboardState};
use crate::grpc::ExchangeService;
use crate::grpc::identity::IdentityMode;
use crate::link::BrokerLink;
use crate::ops_poller::QueueDepths;
use crate::router::Router;
use crate::store::Store;

/// Where a started hub listens.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The gRPC endpoint.
    pub grpc: SocketAddr,
    /// The admin endpoint.
    pub admin: SocketAddr,
    /// The dashboard, if configured.
    pub dashboard: Option<SocketAddr>,
}

/// Runs the hub until `shutdown` is cancelled. `on_bound` is called once
/// both listeners are bound (before the broker is necessarily reachable:
/// readiness says when it is).
pub async fn run(
    config: HubConfig,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let topology = Topology::load(&config.topology)?;
    if crate::metrics::install().is_none() {
        tracing::warn!("another metrics recorder is installed; /metrics will be unavailable");
    }
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
    let exchanges: HashSet<_> = topology.exchanges().iter().map(|e| e.id.clone()).collect();
    crate::metrics::register_emergency_overrides(exchanges.iter().map(|e| e.as_str()));
    let (policy, registry): (Arc<dyn Policy>, _) = match (&config.policy, &config.registry) {
        (Some(file), _) => {
            let fixed = PolicyConfig::load(file, &topology)?;
            let policy = StaticPolicy::new(fixed.agreements, fixed.directives, fixed.consent_model);
            (Arc::new(policy), None)
        }
        (None, Some(registry)) => {
            let staleness = Duration::from_millis(registry.max_staleness_ms);
            let cache = Arc::new(RegistryPolicy::new(staleness));
            let mut client = RegistryClient::new(registry.endpoints.clone(), "hub")
                .map_err(|e| anyhow::anyhow!("registry endpoints: {}", e.message()))?;
            if let Some(tls) = &registry.tls {
                let tls = lhcie_registry_client::RegistryTls {
                    ca: tls.ca.clone(),
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                    nodes: tls.nodes.clone(),
                };
                client = client
                    .with_tls(&tls)
                    .map_err(|e| anyhow::anyhow!("[registry.tls]: {}", e.message()))?;
            }
            tokio::spawn(lhcie_registry_client::follow(
                client,
                cache.clone(),
                staleness,
                shutdown.clone(),
            ));
            (cache.clone() as Arc<dyn Policy>, Some(cache))
        }
        (None, None) => anyhow::bail!("the hub needs a policy file or a registry"),
    };

    let store = Store::open(
        &config.store.path,
        Duration::from_secs(config.store.dedup_retention_hours * 3600),
    )
    .with_context(|| format!("opening the store at {}", config.store.path.display()))?;
    let names = Names::new(&config.broker.prefix);
    let link = BrokerLink::start(
        config.broker.clone(),
        BrokerTopology::from_config(&config.broker, &topology),
        shutdown.clone(),
    );
    let router = Arc::new(Router::new(
        table,
        exchanges,
        policy,
        store.clone(),
        link,
        names,
        config.limits.max_envelope_bytes,
        shutdown.clone(),
    ));
    let adapters = Arc::new(AdapterRegistry::default());
    let tasks = TaskTracker::new();

    let (identity, tls) = match &config.grpc.tls {
        Some(tls) => (
            IdentityMode::ClientCertificate,
            // Client certificates checked against the CRL file, if any,
            // reloaded when it changes (lhcie_tls::revocation).
            Some(lhcie_tls::revocation::server_config(
                &tls.cert,
                &tls.key,
                &tls.client_ca,
                tls.crl.as_deref(),
            )?),
        ),
        None => {
            tracing::warn!(
                "gRPC is PLAIN TEXT with header identity (insecure_plaintext): development only"
            );
            (IdentityMode::InsecureHeader, None)
        }
    };
    let grpc_listener = lhcie_runtime::net::bind(config.grpc.listen)
        .await
        .with_context(|| format!("binding gRPC on {}", config.grpc.listen))?;
    let admin_listener = lhcie_runtime::net::bind(config.admin.listen)
        .await
        .with_context(|| format!("binding admin on {}", config.admin.listen))?;
    let dashboard = match &config.dashboard {
        Some(dashboard) => {
            let users = Users::load(&dashboard.users).with_context(|| {
                format!("the dashboard users file {}", dashboard.users.display())
            })?;
            let auth = Auth::new(users, Duration::from_secs(dashboard.session_minutes * 60))
                .secure_cookie(dashboard.secure_cookie);
            let listener = lhcie_runtime::net::bind(dashboard.listen)
                .await
                .with_context(|| format!("binding the dashboard on {}", dashboard.listen))?;
            Some((listener, Arc::new(auth), dashboard.max_replay_per_second))
        }
        None => None,
    };
    let bound = Bound {
        grpc: grpc_listener.local_addr()?,
        admin: admin_listener.local_addr()?,
        dashboard: match &dashboard {
            Some((listener, _, _)) => Some(listener.local_addr()?),
            None => None,
        },
    };
    tasks.spawn(crate::dead_letter_collector::run(
        router.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(crate::store::retention::run(
        store.clone(),
        crate::store::retention::Retention::from(&config.retention),
        Duration::from_secs(config.retention.prune_every_minutes * 60),
        shutdown.clone(),
    ));
    let depths = Arc::new(QueueDepths::default());
    tasks.spawn(crate::ops_poller::run(
        router.clone(),
        adapters.clone(),
        registry.clone(),
        depths.clone(),
        shutdown.clone(),
    ));
    if let Some((listener, auth, max_replay_per_second)) = dashboard {
        let routes = dashboard::routes(DashboardState {
            auth,
            router: router.clone(),
            adapters: adapters.clone(),
            registry: registry.clone(),
            depths,
            regions: Arc::new(
                topology
                    .exchanges()
                    .iter()
                    .map(|e| (e.id.to_string(), e.region.clone()))
                    .collect(),
            ),
            max_replay_per_second,
            shutdown: shutdown.clone(),
        });
        let dashboard_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, routes)
                .with_graceful_shutdown(async move { dashboard_shutdown.cancelled().await });
            if let Err(error) = serve.await {
                tracing::error!(%error, "dashboard failed");
            }
        });
    }

    let ingress_consuming = if config.amqp_ingress.enabled {
        let (consuming, watching) = watch::channel(false);
        tasks.spawn(crate::amqp_ingress::run(
            router.clone(),
            config.amqp_ingress.prefetch,
            consuming,
            shutdown.clone(),
        ));
        Some(watching)
    } else {
        None
    };
    let admin_routes = admin::routes(AdminState {
        router: router.clone(),
        adapters: adapters.clone(),
        ingress_consuming,
        registry,
    });
    let admin_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(admin_listener, admin_routes)
            .with_graceful_shutdown(async move { admin_shutdown.cancelled().await });
        if let Err(error) = serve.await {
            tracing::error!(%error, "admin endpoint failed");
        }
    });

    let service = ExchangeService::new(
        router.clone(),
        adapters,
        identity,
        config.limits.max_in_flight_per_stream,
        shutdown.clone(),
    );
    let decode_limit = config
        .limits
        .max_envelope_bytes
        .saturating_mul(2)
        .max(64 * 1024);
    let grpc_shutdown = shutdown.clone();
    // TCP_NODELAY is set by lhcie_runtime::net on every accepted stream
    // (the builder's `tcp_nodelay` applies only to listeners tonic binds).
    let routes = tonic::transport::Server::builder()
        .add_service(ExchangeServer::new(service).max_decoding_message_size(decode_limit));
    let grpc: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match tls {
        // TLS handshakes done here (lhcie_tls::revocation::incoming), so
        // that the client verifier can check revocation; tonic still sees
        // the client certificate (`Request::peer_certs`).
        Some(tls) => Box::pin(routes.serve_with_incoming_shutdown(
            lhcie_tls::revocation::incoming(
                grpc_listener,
                tls,
                Duration::from_secs(10),
                shutdown.clone(),
            ),
            async move { grpc_shutdown.cancelled().await },
        )),
        None => Box::pin(
            routes.serve_with_incoming_shutdown(grpc_listener.incoming(), async move {
                grpc_shutdown.cancelled().await
            }),
        ),
    };

    match bound.dashboard {
        Some(dashboard) => {
            tracing::info!(grpc = %bound.grpc, admin = %bound.admin, %dashboard, "hub listening")
        }
        None => tracing::info!(grpc = %bound.grpc, admin = %bound.admin, "hub listening"),
    }
    on_bound(bound);
    tasks.close();

    let grace = Duration::from_secs(config.limits.shutdown_grace_seconds);
    let grpc_done = tokio::spawn(grpc);
    shutdown.cancelled().await;
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "shutting down: finishing work in flight"
    );
    let drained = tokio::time::timeout(grace, async {
        let _ = grpc_done.await;
        tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "grace period over with work still in flight; it will be redelivered or resubmitted"
        );
    }
    store.close().await?;
    tracing::info!("hub stopped");
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub use lhcie_runtime::cancel_on_signal;
