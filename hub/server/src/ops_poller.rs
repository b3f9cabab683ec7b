//! Every few seconds: the depth of every queue of the hub's topology, read
//! from the broker (a passive declare answers the message and consumer
//! counts), and the gauges that describe state rather than events —
//! adapters up or down from their heartbeats and their outbox depths, the
//! registry copy's freshness and lag, dead letters and emergency reviews
//! pending. The dashboard reads the same figures from here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lhcie_broker::Destination;
use lhcie_registry_client::RegistryPolicy;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::adapters::AdapterRegistry;
use crate::grpc::HEARTBEAT_INTERVAL_SECONDS;
use crate::router::Router;

/// How often the figures are refreshed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One queue's depth.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue's name.
    pub queue: String,
    /// Messages ready on it.
    pub messages: u32,
    /// Its consumers.
    pub consumers: u32,
}

/// The latest queue depths.
#[derive(Default)]
pub struct QueueDepths(Mutex<Vec<QueueDepth>>);

impl QueueDepths {
    /// The latest reading, sorted by queue name (empty while the broker is
    /// unreachable).
    pub fn latest(&self) -> Vec<QueueDepth> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Polls until `shutdown`.
pub async fn run(
    router: Arc<Router>,
    adapters: Arc<AdapterRegistry>,
    registry: Option<Arc<RegistryPolicy>>,
    depths: Arc<QueueDepths>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        state_gauges(&router, &adapters, registry.as_deref());
        let reading = read_depths(&router).await;
        for depth in &reading {
            metrics::gauge!("lhcie_broker_queue_messages", "queue" => depth.queue.clone())
                .set(f64::from(depth.messages));
            metrics::gauge!("lhcie_broker_queue_consumers", "queue" => depth.queue.clone())
                .set(f64::from(depth.consumers));
        }
        *depths.0.lock().unwrap_or_else(|e| e.into_inner()) = reading;
    }
}

fn state_gauges(router: &Router, adapters: &AdapterRegistry, registry: Option<&RegistryPolicy>) {
    let interval = Duration::from_secs(u64::from(HEARTBEAT_INTERVAL_SECONDS));
    let statuses = adapters.statuses(interval);
    for status in &statuses {
        metrics::gauge!("lhcie_hub_adapter_up", "exchange" => status.exchange.clone())
            .set(if status.up { 1.0 } else { 0.0 });
        metrics::gauge!("lhcie_hub_adapter_outbox_depth", "exchange" => status.exchange.clone())
            .set(status.outbox_depth as f64);
        metrics::gauge!("lhcie_hub_adapter_heartbeat_age_seconds", "exchange" => status.exchange.clone())
            .set(status.seconds_since_heartbeat as f64);
    }
    // An exchange of the topology that never sent a heartbeat is down too.
    for exchange in router.exchanges() {
        if !statuses.iter().any(|s| s.exchange == exchange.as_str()) {
            metrics::gauge!("lhcie_hub_adapter_up", "exchange" => exchange.to_string()).set(0.0);
        }
    }
    if let Some(registry) = registry {
        let health = registry.health();
        metrics::gauge!("lhcie_hub_registry_fresh").set(if health.fresh { 1.0 } else { 0.0 });
        if let Some(age) = health.proven_age {
            metrics::gauge!("lhcie_hub_registry_proven_age_seconds").set(age.as_secs_f64());
        }
    }
    metrics::gauge!("lhcie_hub_emergency_reviews_pending")
        .set(router.store().pending_emergency_reviews() as f64);
    if let Ok(pending) = router.store().pending_dead_letters() {
        let mut exchanges: Vec<String> = router.exchanges().iter().map(|e| e.to_string()).collect();
        exchanges.push(crate::store::dead_letters::INGRESS_DESTINATION.to_owned());
        for destination in exchanges {
            let count = pending
                .iter()
                .find(|(d, _)| *d == destination)
                .map_or(0, |(_, c)| *c);
            metrics::gauge!("lhcie_hub_dead_letters_pending", "destination" => destination)
                .set(count as f64);
        }
    }
}

/// Every queue of the topology, by passive declaration. A queue that does
/// not exist (yet) is left out.
async fn read_depths(router: &Router) -> Vec<QueueDepth> {
    let Some(link) = router.link().current() else {
        return Vec::new();
    };
    let names = router.names();
    let mut queues = vec![
        names.ingress_queue(),
        names.dead_letter_queue(&Destination::Ingress),
        names.patient_notifications_queue(),
    ];
    let mut exchanges: Vec<_> = router.exchanges().iter().cloned().collect();
    exchanges.sort();
    for exchange in exchanges {
        queues.push(names.egress_queue(&exchange));
        queues.push(names.dead_letter_queue(&Destination::Exchange(exchange)));
    }
    let mut depths = Vec::with_capacity(queues.len());
    let mut channel = None;
    for queue in queues {
        if channel.is_none() {
            channel = link
                .guard("opening a channel", link.connection.create_channel())
                .await
                .ok();
        }
        let Some(open) = &channel else {
            break;
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        match link
            .guard(
                "reading a queue's depth",
                open.queue_declare(queue.as_str().into(), passive, FieldTable::default()),
            )
            .await
        {
            Ok(declared) => depths.push(QueueDepth {
                queue,
                messages: declared.message_count(),
                consumers: declared.consumer_count(),
            }),
            // A missing queue closes the channel: open another.
            Err(_) => channel = None,
        }
    }
    if let Some(open) = channel {
        let _ = open.close(200, "done".into()).await;
    }
    depths.sort_by(|a, b| a.queue.cmp(&b.queue));
    depths
}
