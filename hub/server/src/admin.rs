//! The operations HTTP endpoint: liveness, readiness (false while the
//! broker is unreachable or the consent registry copy cannot be proven
//! current, saying why), audit queries, trace events, dead letters (read
//! only), adapter status and the registry copy's freshness.
//!
//! It serves patient-identifying audit records, so it listens on a
//! management address only (127.0.0.1 in the demo).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router as Http;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use lhcie_model::NhsNumber;
use lhcie_registry_client::RegistryPolicy;
use serde::Deserialize;
use tokio::sync::watch;

use crate::adapters::AdapterRegistry;
use crate::grpc::HEARTBEAT_INTERVAL_SECONDS;
use crate::router::Router;

/// What the admin endpoint reads.
#[derive(Clone)]
pub struct AdminState {
    /// The router (its store and broker link).
    pub router: Arc<Router>,
    /// Adapter heartbeats.
    pub adapters: Arc<AdapterRegistry>,
    /// Whether the AMQP ingress consumer is active (`None` if disabled).
    pub ingress_consuming: Option<watch::Receiver<bool>>,
    /// The registry copy the hub decides with (`None` with a fixed policy
    /// file).
    pub registry: Option<Arc<RegistryPolicy>>,
}

/// The routes.
pub fn routes(state: AdminState) -> Http {
    Http::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/adapters", get(adapters))
        .route("/registry", get(registry))
        .route("/audit/messages/{message_id}", get(audit_of_message))
        .route(
            "/audit/messages/{message_id}/events",
            get(events_of_message),
        )
        .route("/audit/patients/{nhs_number}", get(audit_of_patient))
        .route("/dead-letters", get(dead_letters))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if let Some(reason) = state.router.link().down_reason() {
        problems.push(format!("broker: {reason}"));
    }
    if let Some(consuming) = &state.ingress_consuming
        && !*consuming.borrow()
    {
        problems.push("amqp ingress: not consuming".to_owned());
    }
    if let Some(registry) = &state.registry
        && let Some(problem) = registry.health().problem
    {
        problems.push(format!("consent registry: {problem} (messages are held)"));
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": problems.is_empty(), "problems": problems })),
    )
}

/// How current the hub's copy of the consent registry is.
async fn registry(State(state): State<AdminState>) -> impl IntoResponse {
    match &state.registry {
        None => (
            StatusCode::OK,
            Json(serde_json::json!({ "source": "policy file" })),
        ),
        Some(registry) => {
            let health = registry.health();
            (
                StatusCode::OK,
                Json(serde_json::json!({
                    "source": "registry",
                    "fresh": health.fresh,
                    "problem": health.problem,
                    "revision": health.revision,
                    "proven_age_ms": health.proven_age.map(|age| age.as_millis() as u64),
                    "agreements": health.agreements,
                    "directives": health.directives,
                    "approximate_bytes": registry.approximate_bytes(),
                })),
            )
        }
    }
}

async fn adapters(State(state): State<AdminState>) -> impl IntoResponse {
    Json(
        state
            .adapters
            .statuses(Duration::from_secs(u64::from(HEARTBEAT_INTERVAL_SECONDS))),
    )
}

async fn audit_of_message(
    State(state): State<AdminState>,
    Path(message_id): Path<String>,
) -> impl IntoResponse {
    match state.router.store().audit_of_message(&message_id) {
        Ok(records) => (StatusCode::OK, Json(serde_json::json!(records))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": error.to_string() })),
        ),
    }
}

/// What adapters and the hub saw of a message after the decision (no
/// patient data: codes and reasons).
async fn events_of_message(
    State(state): State<AdminState>,
    Path(message_id): Path<String>,
) -> impl IntoResponse {
    match state.router.store().events_of_message(&message_id) {
        Ok(events) => (StatusCode::OK, Json(serde_json::json!(events))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": error.to_string() })),
        ),
    }
}

/// The dead letters kept for operators (as the dashboard lists them;
/// replaying needs the dashboard or `hub dead-letters`, as a named user).
async fn dead_letters(
    State(state): State<AdminState>,
    Query(filter): Query<crate::dashboard::dead_letters::Filter>,
) -> axum::response::Response {
    match crate::dashboard::dead_letters::listing(state.router.store(), &filter) {
        Ok(listing) => listing.into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn audit_of_patient(
    State(state): State<AdminState>,
    Path(nhs_number): Path<String>,
    Query(limit): Query<Limit>,
) -> impl IntoResponse {
    let nhs_number = match NhsNumber::parse(&nhs_number) {
        Ok(number) => number,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error.to_string() })),
            );
        }
    };
    match state
        .router
        .store()
        .audit_of_patient(nhs_number.as_str(), limit.limit.unwrap_or(100).min(10_000))
    {
        Ok(records) => (StatusCode::OK, Json(serde_json::json!(records))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": error.to_string() })),
        ),
    }
}

/// The Prometheus exposition (names in `docs/metrics.md`).
async fn metrics() -> axum::response::Response {
    crate::metrics::install();
    lhcie_runtime::metrics::exposition()
}
