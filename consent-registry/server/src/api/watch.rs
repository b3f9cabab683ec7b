//! The change feed: every change after a revision, then live changes, with
//! heartbeats that prove (or not) that the watcher's copy is current.
//!
//! A watcher whose revision the change log no longer covers first gets the
//! whole state, between `snapshot_begin` and `synced`. Heartbeats go out
//! every interval even while changes stream, so a watcher under a
//! continuous write load still learns that it is current.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lhcie_consent::ConsentModel;
use lhcie_proto::convert::registry::{agreement_to_wire, consent_model_to_wire};
use lhcie_proto::registry as pb;
use pb::watch_event::Event;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::leader::{Confirmation, Leadership};
use crate::store::{ChangesSince, Registry};
use crate::types::Change;

/// How many changes are read from the change log at once.
const PAGE: usize = 2048;

/// What a watch stream needs.
#[derive(Clone)]
pub struct WatchContext {
    pub(super) registry: Arc<Registry>,
    pub(super) leadership: Leadership,
    pub(super) confirmations: watch::Receiver<Option<Confirmation>>,
    pub(super) heartbeat: Duration,
    pub(super) consent_model: ConsentModel,
    pub(super) shutdown: CancellationToken,
}

type Sender = mpsc::Sender<Result<pb::WatchEvent, tonic::Status>>;

/// The stream ended: the watcher left, or this node stopped leading.
struct Ended;

async fn send(out: &Sender, revision: u64, event: Event) -> Result<(), Ended> {
    out.send(Ok(pb::WatchEvent {
        revision,
        event: Some(event),
    }))
    .await
    .map_err(|_| Ended)
}

fn change_event(change: Change) -> Event {
    match change {
        Change::Agreement(agreement) => {
            Event::Agreement(agreement_to_wire(&agreement, OffsetDateTime::now_utc()))
        }
        Change::Directive { directive, .. } => Event::Directive(directive.into()),
        Change::Grant(grant) => Event::CarerGrant(grant.into()),
    }
}

/// Runs one watch stream from `from_revision` until the watcher leaves,
/// this node stops leading (the watcher is sent to the leader) or the node
/// shuts down.
pub async fn run(context: WatchContext, from_revision: u64, out: Sender) {
    let _counted = crate::metrics::WatcherGuard::new();
    let _ = stream(&context, from_revision, &out).await;
}

async fn stream(context: &WatchContext, from_revision: u64, out: &Sender) -> Result<(), Ended> {
    let mut revisions = context.registry.subscribe();
    let mut cursor = from_revision;
    let mut last_heartbeat = Instant::now() - context.heartbeat;
    loop {
        if let Err(status) = context.leadership.require() {
            let _ = out.send(Err(status)).await;
            return Err(Ended);
        }
        let mut sent = false;
        // Everything applied by now is in the change log (each entry's
        // changes and its applied position are one transaction).
        let applied = context.registry.revision();
        match context
            .registry
            .changes_since(cursor, PAGE)
            .map_err(|_| Ended)?
        {
            ChangesSince::Gone => {
                cursor = full_state(context, out).await?;
                sent = true;
            }
            ChangesSince::Changes(changes) => {
                let count: usize = changes.iter().map(|(_, c)| c.len()).sum();
                for (revision, changes) in changes {
                    for change in changes {
                        send(out, revision, change_event(change)).await?;
                    }
                    cursor = revision;
                    sent = true;
                }
                if count < PAGE {
                    // Drained: entries up to `applied` that changed nothing
                    // (refused commands, membership) are covered too.
                    cursor = cursor.max(applied);
                    if sent {
                        // Say at once that the revisions sent are complete,
                        // so the watcher's position moves without waiting
                        // for the next interval.
                        heartbeat(context, out, cursor).await?;
                        last_heartbeat = Instant::now();
                        sent = false;
                    }
                }
            }
        }
        if last_heartbeat.elapsed() >= context.heartbeat {
            heartbeat(context, out, cursor).await?;
            last_heartbeat = Instant::now();
        }
        if sent {
            continue;
        }
        let until_heartbeat = context.heartbeat.saturating_sub(last_heartbeat.elapsed());
        tokio::select! {
            _ = revisions.changed() => {}
            _ = tokio::time::sleep(until_heartbeat) => {}
            _ = out.closed() => return Err(Ended),
            _ = context.shutdown.cancelled() => {
                let _ = out.send(Err(tonic::Status::unavailable("the registry node is shutting down"))).await;
                return Err(Ended);
            }
        }
    }
}

async fn heartbeat(context: &WatchContext, out: &Sender, cursor: u64) -> Result<(), Ended> {
    let confirmation = *context.confirmations.borrow();
    // A confirmation counts if it is recent and the stream has sent
    // everything it covered.
    let current = confirmation
        .filter(|c| c.started.elapsed() < context.heartbeat * 3 && cursor >= c.read_index);
    let age = current
        .map(|c| u32::try_from(c.started.elapsed().as_millis()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    send(
        out,
        0,
        Event::Heartbeat(pb::Heartbeat {
            revision: cursor,
            leader_confirmed: current.is_some(),
            consent_model: consent_model_to_wire(context.consent_model) as i32,
            confirmed_age_ms: age,
        }),
    )
    .await
}

/// Sends the whole state; returns the revision the watcher is then at
/// (changes after it follow from the change log).
async fn full_state(context: &WatchContext, out: &Sender) -> Result<u64, Ended> {
    let registry = &context.registry;
    let revision = registry.revision();
    send(out, 0, Event::SnapshotBegin(pb::SnapshotBegin { revision })).await?;
    let now = OffsetDateTime::now_utc();
    for agreement in registry.agreements() {
        send(out, 0, Event::Agreement(agreement_to_wire(&agreement, now))).await?;
    }
    let mut after: Option<String> = None;
    loop {
        let page = registry
            .directives_page(after.as_deref(), PAGE)
            .map_err(|_| Ended)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for directive in page {
            send(out, 0, Event::Directive(directive.into())).await?;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = registry
            .grants_page(after.as_deref(), PAGE)
            .map_err(|_| Ended)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for grant in page {
            send(out, 0, Event::CarerGrant(grant.into())).await?;
        }
    }
    send(out, revision, Event::Synced(pb::Synced { revision })).await?;
    Ok(revision)
}
