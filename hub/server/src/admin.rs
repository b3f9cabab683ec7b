//! The operations HTTP endpoint: liveness, readiness (false while the
//! broker is unreachable or the consent registry copy cannot be proven
//! current, saying why), the Prometheus metrics, adapter status and the
//! registry copy's freshness.
//!
//! It has no login, so it serves nothing that names a patient or a
//! message: audit records, trace events and dead letters are the
//! dashboard's (`docs/dashboard-api.md`), behind its login and roles, and a
//! view naming a patient is in its access log before it is shown. Any other
//! path is 404. A test (`integration-tests/tests/operations.rs`) asks for
//! every route that used to be here and fails if one answers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router as Http;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use lhcie_registry_client::RegistryPolicy;
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

/// The Prometheus exposition (names in `docs/metrics.md`).
async fn metrics() -> axum::response::Response {
    crate::metrics::install();
    lhcie_runtime::metrics::exposition()
}
