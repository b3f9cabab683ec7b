//! Keeping a [`RegistryPolicy`] current: one watch stream at a time, on
//! the leader, resumed from the last complete revision whenever it breaks.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use lhcie_proto::registry as pb;
use tokio::time::Instant;
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
    mut stream: impl Stream<Item = Result<pb::WatchEvent, tonic::Status>> + Unpin,
    client: &RegistryClient,
    cache: &RegistryPolicy,
    max_staleness: Duration,
    shutdown: &CancellationToken,
) -> Ended {
    // A stream that goes quiet, or only says it cannot confirm the
    // leader, is left for another node. While the whole state is being
    // sent (12 million directives take minutes) there are no heartbeats:
    // the copy is not current then anyway, and the events themselves show
    // the stream is alive.
    let quiet_limit = max_staleness.max(Duration::from_secs(1));
    let mut last_confirmed = Instant::now();
    let mut receiving_state = false;
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
        for event in &batch {
            use pb::watch_event::Event;
            match &event.event {
                Some(Event::SnapshotBegin(_)) => receiving_state = true,
                Some(Event::Synced(_)) => {
                    receiving_state = false;
                    last_confirmed = Instant::now();
                }
                Some(Event::Heartbeat(h)) if h.leader_confirmed => last_confirmed = Instant::now(),
                _ => {}
            }
        }
        metrics::counter!("lhcie_hub_registry_events_total").increment(batch.len() as u64);
        if let Err(problem) = cache.apply(batch) {
            tracing::error!(%problem, "the registry feed carries a record this hub cannot read; failing closed");
            client.after_failure(None);
            return Ended::Broken(problem);
        }
        if !receiving_state && last_confirmed.elapsed() > quiet_limit {
            client.after_failure(None);
            return Ended::Broken("the registry node cannot confirm it leads".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc;
    use lhcie_proto::registry::watch_event::Event;

    use super::*;
    use crate::cache::tests::{deny_ral, event, heartbeat};

    /// A whole-state transfer far longer than the staleness bound, with no
    /// heartbeat in it, is followed to the end; after it, heartbeats are
    /// required again.
    #[tokio::test(start_paused = true)]
    async fn a_long_full_state_transfer_is_not_mistaken_for_a_silent_leader() {
        let client = RegistryClient::new(vec!["127.0.0.1:1".into()], "test").unwrap();
        let cache = Arc::new(RegistryPolicy::new(Duration::from_secs(1)));
        cache.set_problem(None);
        let shutdown = CancellationToken::new();
        let (feed, stream) = mpsc::unbounded();
        let consumer = tokio::spawn({
            let (client, cache, shutdown) = (client.clone(), cache.clone(), shutdown.clone());
            async move { consume(stream, &client, &cache, Duration::from_secs(1), &shutdown).await }
        });
        feed.unbounded_send(Ok(event(
            0,
            Event::SnapshotBegin(pb::SnapshotBegin { revision: 7 }),
        )))
        .unwrap();
        for n in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            feed.unbounded_send(Ok(deny_ral(&format!("D{n}")))).unwrap();
        }
        feed.unbounded_send(Ok(event(7, Event::Synced(pb::Synced { revision: 7 }))))
            .unwrap();
        feed.unbounded_send(Ok(heartbeat(7, true))).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !consumer.is_finished(),
            "the feed was given up during the transfer"
        );
        assert_eq!(cache.health().directives, 50);
        assert!(cache.health().fresh, "{:?}", cache.health().problem);

        // Live again: unconfirmed heartbeats for longer than the bound end it.
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Refused once the feed has been given up.
            let _ = feed.unbounded_send(Ok(heartbeat(7, false)));
        }
        match consumer.await.unwrap() {
            Ended::Broken(problem) => assert!(problem.contains("cannot confirm"), "{problem}"),
            Ended::Shutdown => panic!("ended by shutdown"),
        }
    }
}
