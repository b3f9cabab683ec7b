//! Dead letters: listing (any user), replay and discard (operators). A
//! replay goes through the policy again and keeps the message id (see
//! `router::replay`); many are replayed one after another at no more than
//! the configured rate, so a replay of thousands never storms a receiving
//! exchange. A dry run decides without publishing or changing anything.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::DashboardState;
use super::auth::{Role, User, json_error};
use crate::store::dead_letters::{DeadLetterFilter, DeadLetterState};

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

/// The most dead letters one request lists or replays.
const MAX_BATCH: usize = 10_000;

/// Listing parameters.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    destination: Option<String>,
    reason: Option<String>,
    category: Option<String>,
    state: Option<String>,
    limit: Option<usize>,
}

fn state_of(name: Option<&str>) -> Result<Option<DeadLetterState>, (StatusCode, Json<Value>)> {
    match name.unwrap_or("pending") {
        "pending" => Ok(Some(DeadLetterState::Pending)),
        "replayed" => Ok(Some(DeadLetterState::Replayed)),
        "discarded" => Ok(Some(DeadLetterState::Discarded)),
        "all" => Ok(None),
        other => Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("state {other:?}: use pending, replayed, discarded or all"),
        )),
    }
}

fn filter_of(filter: &Filter) -> Result<DeadLetterFilter, (StatusCode, Json<Value>)> {
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    Ok(DeadLetterFilter {
        destination: given(&filter.destination),
        reason: given(&filter.reason),
        category: given(&filter.category),
        state: state_of(filter.state.as_deref().filter(|s| !s.is_empty()))?,
    })
}

/// A body that is not the JSON asked for: its status (415 for another
/// content type, 400/422 for bad JSON) with a JSON error.
fn bad_body(rejection: JsonRejection) -> (StatusCode, Json<Value>) {
    json_error(rejection.status(), rejection.body_text())
}

fn unavailable(error: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    json_error(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// `GET /api/dead-letters?…`.
pub async fn list(
    _user: User,
    State(state): State<DashboardState>,
    Query(filter): Query<Filter>,
) -> Answer {
    listing(state.router.store(), &filter)
}

/// The dead letters `filter` selects, as the API lists them (no envelope,
/// no patient identifier); an ingress letter whose publisher the broker did
/// not vouch for has `identity_verified: false`.
pub fn listing(store: &crate::store::Store, filter: &Filter) -> Answer {
    let limit = filter.limit.unwrap_or(200).clamp(1, MAX_BATCH);
    let letters = store
        .dead_letters(&filter_of(filter)?, limit)
        .map_err(unavailable)?;
    let letters: Vec<Value> = letters
        .into_iter()
        .map(|letter| {
            let mut value = json!(letter);
            value["id"] = json!(letter.id.to_string());
            value["identity_verified"] = json!(letter.identity_verified());
            value
        })
        .collect();
    Ok(Json(json!({ "dead_letters": letters })))
}

/// A replay request.
#[derive(Debug, Deserialize)]
pub struct ReplayRequest {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    filter: Option<Filter>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    rate_per_second: Option<u32>,
}

fn ids_of(
    state: &DashboardState,
    ids: &[String],
    filter: Option<&Filter>,
) -> Result<Vec<u64>, (StatusCode, Json<Value>)> {
    match (ids.is_empty(), filter) {
        (false, None) => ids
            .iter()
            .map(|id| {
                id.parse::<u64>().map_err(|_| {
                    json_error(
                        StatusCode::BAD_REQUEST,
                        format!("{id:?} is not a dead-letter id"),
                    )
                })
            })
            .collect(),
        (true, Some(filter)) => {
            let mut filter = filter_of(filter)?;
            filter.state = Some(DeadLetterState::Pending);
            Ok(state
                .router
                .store()
                .dead_letters(&filter, MAX_BATCH)
                .map_err(unavailable)?
                .into_iter()
                .rev()
                .map(|letter| letter.id)
                .collect())
        }
        _ => Err(json_error(
            StatusCode::BAD_REQUEST,
            "give either ids or a filter",
        )),
    }
}

/// `POST /api/dead-letters/replay` (operator).
pub async fn replay(
    user: User,
    State(state): State<DashboardState>,
    request: Result<Json<ReplayRequest>, JsonRejection>,
) -> Answer {
    user.require(Role::Operator)?;
    let Json(request) = request.map_err(bad_body)?;
    let ids = ids_of(&state, &request.ids, request.filter.as_ref())?;
    if ids.len() > MAX_BATCH {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_BATCH} dead letters per replay"),
        ));
    }
    let rate = request
        .rate_per_second
        .unwrap_or(state.max_replay_per_second)
        .clamp(1, state.max_replay_per_second);
    let pause = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut results = Vec::with_capacity(ids.len());
    let mut pace = tokio::time::interval(pause);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for id in ids {
        if !request.dry_run {
            pace.tick().await;
        }
        results.push(state.router.replay(id, &user.name, request.dry_run).await);
    }
    Ok(Json(
        json!({ "dry_run": request.dry_run, "results": results }),
    ))
}

/// A discard request.
#[derive(Debug, Deserialize)]
pub struct DiscardRequest {
    ids: Vec<String>,
}

/// `POST /api/dead-letters/discard` (operator).
pub async fn discard(
    user: User,
    State(state): State<DashboardState>,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Answer {
    user.require(Role::Operator)?;
    let Json(request) = request.map_err(bad_body)?;
    let ids = ids_of(&state, &request.ids, None)?;
    let mut discarded = 0;
    for id in ids {
        if state
            .router
            .discard(id, &user.name)
            .await
            .map_err(unavailable)?
        {
            discarded += 1;
        }
    }
    Ok(Json(json!({ "discarded": discarded })))
}
