//! The message trace: searching decisions by business key, one message's
//! timeline across the adapters, the hub and the broker, and the access
//! log. A timeline that names a patient, and every search by NHS number,
//! is recorded in the access log (durably) before it is shown; if it
//! cannot be recorded, nothing is shown.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use lhcie_hub_core::{AuditOutcome, AuditRecord};
use lhcie_model::NhsNumber;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DashboardState;
use super::auth::{Role, User, json_error};
use crate::store::search::{AccessEntry, TraceQuery};
use crate::store::trace::{Layer, TraceEvent};

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

/// The most results a search returns.
const MAX_RESULTS: usize = 1000;

/// Search parameters (`docs/dashboard-api.md`).
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    message_id: Option<String>,
    nhs_number: Option<String>,
    org: Option<String>,
    category: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn time_param(
    name: &str,
    value: Option<String>,
) -> Result<Option<OffsetDateTime>, (StatusCode, Json<Value>)> {
    non_empty(value)
        .map(|v| {
            OffsetDateTime::parse(&v, &Rfc3339).map_err(|_| {
                json_error(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be an RFC 3339 time, e.g. 2026-11-21T10:00:00Z"),
                )
            })
        })
        .transpose()
}

fn unavailable(error: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    json_error(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// `GET /api/trace?…`: decisions matching, newest first.
pub async fn search(
    user: User,
    State(state): State<DashboardState>,
    Query(params): Query<SearchParams>,
) -> Answer {
    let nhs_number = match non_empty(params.nhs_number) {
        None => None,
        Some(number) => Some(
            NhsNumber::parse(&number)
                .map_err(|e| json_error(StatusCode::BAD_REQUEST, format!("nhs_number: {e}")))?,
        ),
    };
    let query = TraceQuery {
        message_id: non_empty(params.message_id),
        nhs_number: nhs_number.as_ref().map(|n| n.as_str().to_owned()),
        org: non_empty(params.org).map(|o| o.to_uppercase()),
        category: non_empty(params.category),
        from: time_param("from", params.from)?,
        to: time_param("to", params.to)?,
        limit: params.limit.unwrap_or(100).clamp(1, MAX_RESULTS),
    };
    if query.message_id.is_none()
        && query.nhs_number.is_none()
        && query.org.is_none()
        && query.category.is_none()
        && query.from.is_none()
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "give at least one of message_id, nhs_number, org, category, from",
        ));
    }
    if let Some(nhs_number) = &query.nhs_number {
        record_access(&state, &user, "search", "nhs-number search", nhs_number).await?;
    }
    let records = state.router.store().search(&query).map_err(unavailable)?;
    let results: Vec<Value> = records.iter().map(summary).collect();
    Ok(Json(json!({ "results": results })))
}

/// One decision as a search result: no NHS number.
fn summary(record: &AuditRecord) -> Value {
    let (outcome, recipients, reason) = match &record.outcome {
        AuditOutcome::Routed { recipients } => (
            "routed",
            recipients
                .iter()
                .map(|r| {
                    json!({
                        "recipient": r.recipient,
                        "exchange": r.exchange,
                        "decision": r.decision,
                        "reason": r.reason,
                    })
                })
                .collect::<Vec<_>>(),
            None,
        ),
        AuditOutcome::Rejected { reason, .. } => ("rejected", Vec::new(), Some(reason)),
    };
    json!({
        "message_id": record.message_id,
        "decided_at": record.decided_at.format(&Rfc3339).unwrap_or_default(),
        "submitted_by": record.submitted_by,
        "sender": record.sender,
        "category": record.category.map(|c| c.as_str()),
        "outcome": outcome,
        "reason": reason,
        "recipients": recipients,
    })
}

async fn record_access(
    state: &DashboardState,
    user: &User,
    action: &str,
    subject: &str,
    nhs_number: &str,
) -> Result<(), (StatusCode, Json<Value>)> {
    state
        .router
        .store()
        .record_access(&AccessEntry {
            at: OffsetDateTime::now_utc(),
            user: user.name.clone(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            patient: true,
            nhs_number: Some(nhs_number.to_owned()),
        })
        .await
        .map_err(|e| {
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the access could not be recorded, so nothing is shown: {e}"),
            )
        })
}

/// `GET /api/trace/<message id>`: the message's timeline.
pub async fn timeline(
    user: User,
    State(state): State<DashboardState>,
    Path(message_id): Path<String>,
) -> Answer {
    let store = state.router.store();
    let records = store.audit_of_message(&message_id).map_err(unavailable)?;
    let events = store.events_of_message(&message_id).map_err(unavailable)?;
    if records.is_empty() && events.is_empty() {
        return Err(json_error(
            StatusCode::NOT_FOUND,
            "the hub knows nothing of this message id",
        ));
    }
    let patient = records.iter().find_map(|r| r.nhs_number.clone());
    if let Some(nhs_number) = &patient {
        record_access(&state, &user, "trace", &message_id, nhs_number).await?;
    }
    let mut timeline: Vec<TraceEvent> = records.iter().flat_map(hub_events).collect();
    timeline.extend(
        events
            .into_iter()
            .filter(|event| reported_by_a_party(&records, event)),
    );
    timeline.sort_by_key(|event| event.at);
    Ok(Json(json!({
        "message_id": message_id,
        "patient": patient,
        "records": records,
        "timeline": timeline,
    })))
}

/// Whether an event belongs in the timeline: the hub's and the broker's
/// always; an adapter's only if its exchange submitted the message or
/// received a copy (`ReportEvents` refuses the others; this keeps them out
/// of the timeline also if they were recorded before the decision, when
/// the hub could not yet tell).
fn reported_by_a_party(records: &[AuditRecord], event: &TraceEvent) -> bool {
    event.layer != Layer::Adapter
        || records.is_empty()
        || records.iter().any(|record| {
            record.submitted_by == event.exchange
                || matches!(&record.outcome, AuditOutcome::Routed { recipients }
                    if recipients.iter().any(|r| r.exchange == event.exchange))
        })
}

/// What the audit record says happened at the hub.
fn hub_events(record: &AuditRecord) -> Vec<TraceEvent> {
    let at = record.decided_at;
    let id = &record.message_id;
    let ingress = match record.ingress {
        lhcie_hub_core::Ingress::Grpc => "grpc",
        lhcie_hub_core::Ingress::Amqp => "amqp",
    };
    match &record.outcome {
        AuditOutcome::Rejected { reason, detail } => vec![TraceEvent::new(
            id,
            at,
            Layer::Hub,
            &record.submitted_by,
            "rejected",
            reason,
            detail,
        )],
        AuditOutcome::Routed { recipients } => {
            let mut events = vec![TraceEvent::new(
                id,
                at,
                Layer::Hub,
                &record.submitted_by,
                "accepted",
                "",
                ingress,
            )];
            for recipient in recipients {
                let mut detail = format!("{}: {}", recipient.recipient, recipient.reason);
                if let Some((isa, version)) = &recipient.isa {
                    detail.push_str(&format!(", ISA {isa} v{version}"));
                }
                if !recipient.directives.is_empty() {
                    detail.push_str(&format!(", directives {}", recipient.directives.join(" ")));
                }
                events.push(TraceEvent::new(
                    id,
                    at,
                    Layer::Hub,
                    &recipient.exchange,
                    "decision",
                    &recipient.decision,
                    &detail,
                ));
            }
            let mut published: Vec<(&str, Vec<&str>)> = Vec::new();
            for recipient in recipients.iter().filter(|r| r.decision == "forwarded") {
                match published.iter_mut().find(|(e, _)| *e == recipient.exchange) {
                    Some((_, orgs)) => orgs.push(&recipient.recipient),
                    None => published.push((&recipient.exchange, vec![&recipient.recipient])),
                }
            }
            for (exchange, orgs) in published {
                events.push(TraceEvent::new(
                    id,
                    at,
                    Layer::Hub,
                    exchange,
                    "published",
                    "",
                    &orgs.join(","),
                ));
            }
            events
        }
    }
}

/// Access log parameters.
#[derive(Debug, Deserialize)]
pub struct AccessParams {
    limit: Option<usize>,
    nhs_number: Option<String>,
}

/// `GET /api/access-log[?nhs_number=…]` (admin): who looked at what, or at
/// one patient.
pub async fn access_log(
    user: User,
    State(state): State<DashboardState>,
    Query(params): Query<AccessParams>,
) -> Answer {
    user.require(Role::Admin)?;
    let nhs_number = match non_empty(params.nhs_number) {
        None => None,
        Some(number) => Some(
            NhsNumber::parse(&number)
                .map_err(|e| json_error(StatusCode::BAD_REQUEST, format!("nhs_number: {e}")))?,
        ),
    };
    let entries = state
        .router
        .store()
        .access_log(
            params.limit.unwrap_or(100).clamp(1, MAX_RESULTS),
            nhs_number.as_ref().map(|n| n.as_str()),
        )
        .map_err(unavailable)?;
    Ok(Json(json!({ "entries": entries })))
}
