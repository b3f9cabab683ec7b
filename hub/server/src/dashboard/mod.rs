//! The operations dashboard the hub serves on `[dashboard] listen`: a page
//! for ops users ([`page`]), who log in ([`auth`]: a users file with
//! argon2id hashes, sessions, roles viewer / operator / admin), and the
//! JSON API it uses (`docs/dashboard-api.md`): the live [`overview`] (also
//! as server-sent events), the message [`trace`] (searches by business key;
//! a view naming a patient is recorded in the access log),
//! [`dead_letters`] with replay and discard (operators), and
//! [`emergency`] access to review (closing a review: operators).

pub mod auth;
pub mod dead_letters;
pub mod emergency;
pub mod overview;
pub mod page;
pub mod trace;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router as Http;
use axum::extract::FromRef;
use axum::routing::{get, post};
use lhcie_registry_client::RegistryPolicy;

use crate::adapters::AdapterRegistry;
use crate::ops_poller::QueueDepths;
use crate::router::Router;
use auth::Auth;

/// What the dashboard's handlers read.
#[derive(Clone)]
pub struct DashboardState {
    /// Users and sessions.
    pub auth: Arc<Auth>,
    /// The router (store, statistics, replay).
    pub router: Arc<Router>,
    /// Adapter heartbeats.
    pub adapters: Arc<AdapterRegistry>,
    /// The registry copy (`None` with a fixed policy file).
    pub registry: Option<Arc<RegistryPolicy>>,
    /// Queue depths read from the broker.
    pub depths: Arc<QueueDepths>,
    /// Each exchange's region.
    pub regions: Arc<HashMap<String, String>>,
    /// The fastest replay allowed, per second.
    pub max_replay_per_second: u32,
    /// The hub's shutdown: live streams end with it, so open dashboards do
    /// not hold a graceful shutdown back.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl FromRef<DashboardState> for Arc<Auth> {
    fn from_ref(state: &DashboardState) -> Self {
        state.auth.clone()
    }
}

/// Every route of the dashboard.
pub fn routes(state: DashboardState) -> Http {
    Http::new()
        .merge(page::routes())
        .merge(auth::routes())
        .route("/api/overview", get(overview::overview))
        .route("/api/stream", get(overview::stream))
        .route("/api/trace", get(trace::search))
        .route("/api/trace/{message_id}", get(trace::timeline))
        .route("/api/access-log", get(trace::access_log))
        .route("/api/dead-letters", get(dead_letters::list))
        .route("/api/dead-letters/replay", post(dead_letters::replay))
        .route("/api/dead-letters/discard", post(dead_letters::discard))
        .route("/api/emergency-access", get(emergency::list))
        .route("/api/emergency-access/close", post(emergency::close))
        .with_state(state)
}
