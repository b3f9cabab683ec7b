//! `GET /api/overview` and `GET /api/stream` (the same, once a second, as
//! server-sent events): throughput and latency per exchange, flows between
//! exchanges and regions, adapters, queues, denials, rejections, dead
//! letters, emergency overrides waiting for review and the registry copy's
//! freshness. No patient data.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DashboardState;
use super::auth::{User, session_ended};
use crate::grpc::HEARTBEAT_INTERVAL_SECONDS;

/// How often the stream sends an overview.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// One snapshot.
pub async fn overview(_user: User, State(state): State<DashboardState>) -> Json<Value> {
    Json(snapshot(&state))
}

/// The snapshot every second until the client goes away, the hub stops or
/// the login session the stream was opened with ends (logout or expiry).
pub async fn stream(
    _user: User,
    State(state): State<DashboardState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let session_ended = session_ended(state.auth.clone(), &headers, STREAM_INTERVAL);
    let shutdown = futures::future::select(
        Box::pin(state.shutdown.clone().cancelled_owned()),
        Box::pin(session_ended),
    );
    let events = futures::stream::unfold(
        (state, tokio::time::interval(STREAM_INTERVAL)),
        |(state, mut tick)| async move {
            tick.tick().await;
            let event = Event::default()
                .event("overview")
                .json_data(snapshot(&state))
                .unwrap_or_else(|_| Event::default().event("error"));
            Some((Ok(event), (state, tick)))
        },
    )
    .take_until(shutdown);
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn region_of<'a>(state: &'a DashboardState, exchange: &str) -> &'a str {
    state.regions.get(exchange).map_or("?", String::as_str)
}

/// The overview as JSON (`docs/dashboard-api.md`).
pub fn snapshot(state: &DashboardState) -> Value {
    let stats = state.router.stats().snapshot();
    let totals = stats
        .exchanges
        .iter()
        .fold((0, 0, 0), |(received, routed, rejected), e| {
            (
                received + e.received,
                routed + e.routed,
                rejected + e.rejected,
            )
        });
    let denied: u64 = stats.denials.iter().map(|(_, count)| count).sum();
    let pending = state
        .router
        .store()
        .pending_dead_letters()
        .unwrap_or_default();
    let pending_total: u64 = pending.iter().map(|(_, count)| count).sum();
    let exchanges: Vec<Value> = stats
        .exchanges
        .iter()
        .map(|e| {
            json!({
                "exchange": e.exchange,
                "region": region_of(state, &e.exchange),
                "received": e.received,
                "routed": e.routed,
                "rejected": e.rejected,
                "copies_in": e.copies_in,
                "rate_per_second": e.rate_per_second,
                "routing_p50_ms": e.routing_p50_ms,
                "routing_p99_ms": e.routing_p99_ms,
            })
        })
        .collect();
    let flows: Vec<Value> = stats
        .flows
        .iter()
        .map(|(from, to, count)| {
            json!({
                "from": from,
                "to": to,
                "from_region": region_of(state, from),
                "to_region": region_of(state, to),
                "count": count,
            })
        })
        .collect();
    let mut regions: Vec<&String> = state.regions.values().collect();
    regions.sort();
    regions.dedup();
    let interval = Duration::from_secs(u64::from(HEARTBEAT_INTERVAL_SECONDS));
    let registry = match &state.registry {
        None => json!({ "source": "policy file", "fresh": true }),
        Some(registry) => {
            let health = registry.health();
            json!({
                "source": "registry",
                "fresh": health.fresh,
                "problem": health.problem,
                "revision": health.revision,
                "proven_age_ms": health.proven_age.map(|age| age.as_millis() as u64),
            })
        }
    };
    json!({
        "at": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "totals": {
            "received": totals.0,
            "routed": totals.1,
            "denied": denied,
            "rejected": totals.2,
            "dead_letters_pending": pending_total,
            "emergency_reviews_pending": state.router.store().pending_emergency_reviews(),
        },
        "exchanges": exchanges,
        "flows": flows,
        "regions": regions,
        "adapters": state.adapters.statuses(interval),
        "queues": state.depths.latest(),
        "denials": stats.denials.iter().map(|(reason, count)| json!({"reason": reason, "count": count})).collect::<Vec<_>>(),
        "rejections": stats.rejections.iter().map(|(reason, count)| json!({"reason": reason, "count": count})).collect::<Vec<_>>(),
        "dead_letters": pending.iter().map(|(destination, count)| json!({"destination": destination, "pending": count})).collect::<Vec<_>>(),
        "registry": registry,
    })
}
