//! Keeping a [`RegistryPolicy`] current: one watch stream at a time, on
//! the leader, resumed from the last complete revision whenever it breaks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lhcie_proto::registry as pb;
use tokio_util::sync::CancellationToken;

use crate::cache::RegistryPolicy;
use crate::client::{RegistryClient, Retry};

/// The most events applied under one lock.
const BATCH: usize = 4096;

/// Follows the registry until `shutdown`, feeding `cache`.
pub async fn follow(
    client: RegistryClient,
    cache: Arc<RegistryPolicy>,
    max_staleness: Duration,
    shutdown: CancellationToken,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        let from = cache.resume_from();
        let opened = tokio::select! {
            opened = client.call(Retry::Idempotent, |mut registry| async move {
                registry.watch(pb::WatchRequest { from_revision: from }).await
            }) => opened,
            _ = shutdown.cancelled() => return,
        };
        let problem = match opened {
            Ok(stream) => {
                tracing::info!(registry = %client.current_target(), from, "following the registry");
                cache.set_problem(None);
                pause = Duration::from_millis(100);
                match consume(stream, &client, &cache, max_staleness, &shutdown).await {
                    Ended::Shutdown => return,
                    Ended::Broken(problem) => problem,
                }
            }
            Err(status) => {
                client.after_failure(Some(&status));
                format!("cannot reach the registry's leader: {}", status.message())
            }
        };
        tracing::warn!(%problem, "the registry feed is down; retrying");
        cache.set_problem(Some(problem));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

enum Ended {
    Shutdown,
    Broken(String),
}

async fn consume(
    mut stream: tonic::Streaming<pb::WatchEvent>,
    client: &RegistryClient,
    cache: &RegistryPolicy,
    max_staleness: Duration,
    shutdown: &CancellationToken,
) -> Ended {
    // A stream that goes quiet, or only says it cannot confirm the
    // leader, is left for another node.
    let quiet_limit = max_staleness.max(Duration::from_secs(1));
    let mut last_confirmed = Instant::now();
    loop {
        let first = tokio::select! {
            next = tokio::time::timeout(quiet_limit, stream.next()) => next,
            _ = shutdown.cancelled() => return Ended::Shutdown,
        };
        let first = match first {
            Err(_) => {
                client.after_failure(None);
                return Ended::Broken("the registry feed went quiet".into());
            }
            Ok(None) => {
                client.after_failure(None);
                return Ended::Broken("the registry closed the feed".into());
            }
            Ok(Some(Err(status))) => {
                client.after_failure(Some(&status));
                return Ended::Broken(format!("the registry ended the feed: {}", status.message()));
            }
            Ok(Some(Ok(event))) => event,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match stream.next().now_or_never() {
                Some(Some(Ok(event))) => batch.push(event),
                _ => break,
            }
        }
        if batch.iter().any(|e| {
            matches!(&e.event, Some(pb::watch_event::Event::Heartbeat(h)) if h.leader_confirmed)
        }) {
            last_confirmed = Instant::now();
        }
        metrics::counter!("hub_registry_events_total").increment(batch.len() as u64);
        if let Err(problem) = cache.apply(batch) {
            tracing::error!(%problem, "the registry feed carries a record this hub cannot read; failing closed");
            client.after_failure(None);
            return Ended::Broken(problem);
        }
        if last_confirmed.elapsed() > quiet_limit {
            client.after_failure(None);
            return Ended::Broken("the registry node cannot confirm it leads".into());
        }
    }
}
