//! Emergency access: the emergency (break-glass) overrides waiting for
//! review, listed for every user, and closing one with an outcome and a
//! note (operators). Who closed it is the signed-in user, never something
//! the request says; closing is written to the access log with the
//! patient's NHS number (`Store::close_emergency_review`). The listing
//! names no patient: the message trace shows who it was, and logs the view.
//!
//! Like every dashboard POST, closing takes a JSON body only (415
//! otherwise): with the `SameSite=Strict` session cookie, another site
//! cannot make a signed-in browser send it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::DashboardState;
use super::auth::{Role, User, json_error};
use crate::store::emergency::{
    Closing, EmergencyReview, ReviewClosure, ReviewFilter, ReviewOutcome,
};

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

/// The most reviews one request lists.
const MAX_LISTED: usize = 1000;

/// Listing parameters.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    state: Option<String>,
    limit: Option<usize>,
}

fn filter_of(state: Option<&str>) -> Result<ReviewFilter, (StatusCode, Json<Value>)> {
    match state.filter(|s| !s.is_empty()).unwrap_or("pending") {
        "pending" => Ok(ReviewFilter::Pending),
        "closed" => Ok(ReviewFilter::Closed),
        "all" => Ok(ReviewFilter::All),
        other => Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("state {other:?}: use pending, closed or all"),
        )),
    }
}

fn unavailable(error: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    json_error(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// A review as the API shows it (its id as a string, like dead letters').
fn shown(review: &EmergencyReview) -> Value {
    let mut value = json!(review);
    value["id"] = json!(review.id.to_string());
    value["state"] = json!(if review.pending() {
        "pending"
    } else {
        "closed"
    });
    value
}

/// `GET /api/emergency-access?state=pending|closed|all&limit=…`: reviews,
/// newest first; no patient identifier.
pub async fn list(
    _user: User,
    State(state): State<DashboardState>,
    Query(params): Query<ListParams>,
) -> Answer {
    let filter = filter_of(params.state.as_deref())?;
    let limit = params.limit.unwrap_or(200).clamp(1, MAX_LISTED);
    let store = state.router.store();
    let reviews = store
        .emergency_reviews(filter, limit)
        .map_err(unavailable)?;
    Ok(Json(json!({
        "pending": store.pending_emergency_reviews(),
        "reviews": reviews.iter().map(shown).collect::<Vec<_>>(),
    })))
}

/// A close request. Unknown fields are refused: who closes is the
/// signed-in user, so a request naming someone is an error, not ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    id: String,
    outcome: String,
    note: String,
}

fn bad_request(message: impl Into<String>) -> (StatusCode, Json<Value>) {
    json_error(StatusCode::BAD_REQUEST, message)
}

/// `POST /api/emergency-access/close` (operator): `{"id", "outcome":
/// "appropriate"|"inappropriate", "note"}`.
pub async fn close(
    user: User,
    State(state): State<DashboardState>,
    request: Result<Json<CloseRequest>, JsonRejection>,
) -> Answer {
    user.require(Role::Operator)?;
    let Json(request) =
        request.map_err(|rejection| json_error(rejection.status(), rejection.body_text()))?;
    let id = request
        .id
        .parse::<u64>()
        .map_err(|_| bad_request(format!("{:?} is not a review id", request.id)))?;
    let outcome = ReviewOutcome::parse(&request.outcome).ok_or_else(|| {
        bad_request(format!(
            "outcome {:?}: use appropriate or inappropriate",
            request.outcome
        ))
    })?;
    let closure = ReviewClosure::new(
        outcome,
        &request.note,
        &user.name,
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| bad_request(e.to_string()))?;
    let closing = state
        .router
        .store()
        .close_emergency_review(id, closure)
        .await
        .map_err(|e| {
            unavailable(format!(
                "the review could not be closed and recorded in the access log: {e}"
            ))
        })?;
    match closing {
        Closing::Closed(review) => {
            tracing::info!(review = id, message_id = %review.message_id, outcome = outcome.as_str(), user = %user.name, "emergency review closed");
            Ok(Json(json!({ "review": shown(&review) })))
        }
        Closing::NotFound => Err(json_error(StatusCode::NOT_FOUND, "no such review")),
        Closing::AlreadyClosed(review) => Err(json_error(
            StatusCode::CONFLICT,
            format!(
                "already closed by {}",
                review.closure.map(|c| c.by).unwrap_or_default()
            ),
        )),
    }
}
