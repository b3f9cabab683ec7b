//! The FHIR endpoint the local systems post to (axum):
//!
//! | request | what happens |
//! |---|---|
//! | `POST [base]/$process-message` | a FHIR R4 message Bundle: read, translated, stored, answered |
//! | `POST [base]/DocumentReference` | a single document: the same |
//! | `GET [base]/metadata` | a small CapabilityStatement |
//!
//! Answers (`application/fhir+json`):
//!
//! - **200** with an ITK3 response message (`MessageHeader.response.code`
//!   `ok`, OperationOutcome with ITK3 **20013**) once the message is
//!   durably in the outbox — and not before; for a DocumentReference
//!   **201** with an informational OperationOutcome;
//! - **200** with a `fatal-error` response carrying ITK3 **20007**
//!   (duplicate message) when the message id is already known: nothing is
//!   forwarded twice;
//! - **400 / 422** with an OperationOutcome (issue code, FHIRPath of the
//!   problem) for content that cannot be read or is invalid, **413** (ITK3
//!   20015) beyond `max_body_bytes`, **415** if not FHIR JSON, **422** if
//!   the hub rejects the message within `ack_wait_ms`, **500** if it cannot
//!   be stored (nothing was accepted; send again).
//!
//! A rejection by the hub after the answer is reported later, as a response
//! message posted to the local system ([`super::late_responses`]).
//!
//! Each answer is counted, timed and traced ([`crate::ops`]): the HTTP
//! status as the code, the ITK3 code (`20013`, `20007`, `20015`), the
//! hub's response code or the refusal's issue code as the detail; a
//! refusal is traced only once the message id is known (a message that
//! cannot be read has none).
//! Diagnostics never carry patient data; logs carry message ids and codes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lhcie_adapter_kit::outbox::Outcome;
use lhcie_fhir_r4::{
    Inbound, IssueType, ReadLimits, Rejection, RenderContext, TranslateContext, check_content_type,
    read_document_reference, read_message_bundle, render_response,
};
use lhcie_model::{AckLevel, AckOutcome, itk_response};
use lhcie_proto::canonical as pb;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::acks::{self, AckSpec};
use super::delivered::DeliveredHeaders;
use crate::context::AdapterContext;
use crate::hl7v2::ack_window::AckWindow;
use crate::ops::Received;
use lhcie_config::FhirSettings;

/// What a POST carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Posted {
    Message,
    DocumentReference,
}

struct Endpoint {
    settings: FhirSettings,
    limits: ReadLimits,
    window: Arc<AckWindow>,
    delivered: DeliveredHeaders,
    ctx: AdapterContext,
    base_url: String,
}

/// Binds `listen` and serves the local systems until shutdown.
pub async fn serve(
    listen: SocketAddr,
    settings: FhirSettings,
    window: Arc<AckWindow>,
    delivered: DeliveredHeaders,
    ctx: AdapterContext,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the FHIR endpoint on {listen}"))?;
    let limits = ReadLimits {
        max_bytes: settings.max_body_bytes,
        max_depth: settings.max_depth,
        ..ReadLimits::default()
    };
    let shutdown = ctx.shutdown.clone();
    let endpoint = Arc::new(Endpoint {
        base_url: format!("http://{listen}"),
        limits,
        window,
        delivered,
        ctx,
        settings,
    });
    let app = Router::new()
        .route("/$process-message", post(process_message))
        .route("/DocumentReference", post(document_reference))
        .route("/metadata", get(metadata))
        // One byte over the limit is enough to know it is too large.
        .layer(DefaultBodyLimit::max(endpoint.settings.max_body_bytes + 1))
        .with_state(endpoint);
    tracing::info!(%listen, "FHIR endpoint ready");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("serving the FHIR endpoint")
}

async fn process_message(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    endpoint.handle(Posted::Message, &headers, body).await
}

async fn document_reference(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    endpoint
        .handle(Posted::DocumentReference, &headers, body)
        .await
}

async fn metadata() -> Response {
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-21",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "messaging": [{"supportedMessage": [{"mode": "receiver", "definition": "https://fhir.nhs.uk/MessageDefinition/any"}]}],
            "rest": [{
                "mode": "server",
                "resource": [{"type": "DocumentReference", "interaction": [{"code": "create"}]}],
                "operation": [{"name": "process-message", "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"}]
            }]
        }),
    )
}

fn fhir_json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        value.to_string(),
    )
        .into_response()
}

/// An OperationOutcome with one error issue.
fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    fhir_json(
        status,
        &json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
        }),
    )
}

fn refuse(rejection: &Rejection) -> Response {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    fhir_json(status, &rejection.operation_outcome())
}

/// A response with what it means for operations.
struct Answered {
    response: Response,
    outcome: Received,
    message_id: Option<String>,
    /// The ITK3 code, the hub's response code or a refusal's code.
    detail: String,
}

impl Answered {
    fn new(response: Response, outcome: Received, message_id: &str, detail: &str) -> Self {
        Self {
            response,
            outcome,
            message_id: Some(message_id.to_owned()),
            detail: detail.to_owned(),
        }
    }

    /// Refused before a message id was known.
    fn refused(response: Response, detail: &str) -> Self {
        Self {
            response,
            outcome: Received::Refused,
            message_id: None,
            detail: detail.to_owned(),
        }
    }
}

impl From<Response> for Answered {
    fn from(response: Response) -> Self {
        Self::refused(response, "")
    }
}

impl Endpoint {
    /// Answers one request; counts, times and traces the answer
    /// ([`crate::ops`]).
    async fn handle(
        &self,
        posted: Posted,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        let started = Instant::now();
        let answered = self.answer(posted, headers, body).await;
        self.ctx.ops.answered(
            started,
            answered.outcome,
            answered.message_id.as_deref(),
            answered.response.status().as_str(),
            &answered.detail,
        );
        answered.response
    }

    async fn answer(
        &self,
        posted: Posted,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Answered {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Err(rejection) = check_content_type(content_type) {
            tracing::info!(
                status = rejection.status,
                "FHIR request refused: media type"
            );
            return refuse(&rejection).into();
        }
        let body = match body {
            Ok(body) => body,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let mut rejection = Rejection::new(
                    413,
                    IssueType::TooLong,
                    None,
                    format!(
                        "the body is larger than the {} bytes accepted",
                        self.settings.max_body_bytes
                    ),
                );
                rejection.itk_code = Some(itk_response::TOO_LARGE);
                tracing::info!("FHIR request refused: too large");
                return Answered::refused(refuse(&rejection), itk_response::TOO_LARGE);
            }
            Err(error) => {
                let rejection = Rejection::new(
                    400,
                    IssueType::Structure,
                    None,
                    format!("the body could not be read: {}", error.status()),
                );
                return refuse(&rejection).into();
            }
        };
        let now = OffsetDateTime::now_utc();
        let ctx = self.translate_context(now);
        let read = match posted {
            Posted::Message => read_message_bundle(&body, &self.limits, &ctx),
            Posted::DocumentReference => read_document_reference(&body, &self.limits, &ctx),
        };
        let inbound = match read {
            Ok(inbound) => inbound,
            Err(rejection) => {
                let issue = rejection.issue();
                tracing::info!(
                    status = rejection.status,
                    code = issue.code.as_str(),
                    expression = issue.expression.as_deref().unwrap_or(""),
                    bytes = body.len(),
                    "FHIR content refused; nothing forwarded"
                );
                let detail = rejection.itk_code.unwrap_or(issue.code.as_str());
                return Answered::refused(refuse(&rejection), detail);
            }
        };
        self.store_and_answer(posted, inbound, now).await
    }

    /// A response message answering a message delivered unchanged names
    /// the sender's header id: map it back to the canonical message id.
    fn relate_response(&self, inbound: &mut Inbound) {
        let Some(header_id) = &inbound.response_to else {
            return;
        };
        let Ok(Some(message_id)) = self.delivered.message_id(header_id) else {
            return;
        };
        let Ok(message_id) = lhcie_model::MessageId::parse(&message_id) else {
            return;
        };
        if let lhcie_model::Body::Acknowledgement(ack) = &mut inbound.envelope.body {
            ack.refers_to = message_id.clone();
            inbound.envelope.correlation_id = Some(message_id.to_string());
        }
    }

    fn translate_context(&self, now: OffsetDateTime) -> TranslateContext {
        let mut ctx = TranslateContext::new(self.ctx.exchange.id.clone(), now);
        ctx.sender_ods = self.settings.sender_ods.clone();
        ctx.served_organisations = self.ctx.exchange.organisations.clone();
        ctx.default_recipients = self.settings.default_recipients.clone();
        ctx
    }

    async fn store_and_answer(
        &self,
        posted: Posted,
        mut inbound: Inbound,
        now: OffsetDateTime,
    ) -> Answered {
        self.relate_response(&mut inbound);
        let envelope = inbound.envelope.clone();
        let message_id = envelope.message_id.to_string();
        for gap in &inbound.not_carried {
            tracing::info!(%message_id, expression = %gap.expression, reason = gap.reason, "not carried by the canonical model; travels in the original");
        }
        let _answering = self.window.enter(&message_id);
        let ticket = match self
            .ctx
            .outbox
            .put_with_receipt(
                pb::Envelope::from(envelope),
                inbound.message_header_id.as_bytes(),
            )
            .await
        {
            Ok(ticket) => ticket,
            Err(error) => {
                tracing::error!(%message_id, %error, "cannot store the message in the outbox: 500");
                let response = outcome(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "the message could not be stored; nothing was accepted, send it again",
                );
                return Answered::new(
                    response,
                    Received::Refused,
                    &message_id,
                    "outbox-unavailable",
                );
            }
        };
        if ticket.duplicate {
            tracing::info!(%message_id, "duplicate FHIR message: ITK3 20007, not forwarded again");
            let response = self.response(
                &inbound,
                AckOutcome::Negative,
                itk_response::DUPLICATE_MESSAGE,
                "duplicate message: already received",
                now,
            );
            return Answered::new(
                response,
                Received::Duplicate,
                &message_id,
                itk_response::DUPLICATE_MESSAGE,
            );
        }
        tracing::info!(%message_id, "FHIR message stored");
        let wait = Duration::from_millis(self.settings.ack_wait_ms);
        if let Ok(Some(answer)) = self.ctx.outbox.wait_for_answer(&message_id, wait).await
            && let Outcome::Rejected(rejection) = answer.outcome
        {
            let reason = crate::runtime::reason_name(&rejection);
            tracing::info!(%message_id, reason, "rejected by the hub in time for the response");
            if let Err(error) = self.ctx.outbox.remove_rejected(&message_id) {
                tracing::warn!(%message_id, %error, "cannot remove an answered rejection from the outbox");
            }
            let response = outcome(
                StatusCode::UNPROCESSABLE_ENTITY,
                "processing",
                &format!("rejected by the hub: {reason}"),
            );
            let code = crate::hub_codes::code_of(rejection.reason()).unwrap_or(reason);
            return Answered::new(response, Received::HubRejected, &message_id, code);
        }
        let response = match posted {
            Posted::Message => self.response(
                &inbound,
                AckOutcome::Positive,
                itk_response::SUCCESS,
                "received and stored; forwarded to the hub",
                now,
            ),
            Posted::DocumentReference => fhir_json(
                StatusCode::CREATED,
                &json!({
                    "resourceType": "OperationOutcome",
                    "issue": [{
                        "severity": "information",
                        "code": "informational",
                        "details": {"coding": [{"system": lhcie_model::ITK_RESPONSE_CODE_SYSTEM, "code": itk_response::SUCCESS}]},
                        "diagnostics": format!("stored as message {message_id}; forwarded to the hub"),
                    }]
                }),
            ),
        };
        Answered::new(
            response,
            Received::Accepted,
            &message_id,
            itk_response::SUCCESS,
        )
    }

    /// The synchronous ITK3 response to a message.
    fn response(
        &self,
        inbound: &Inbound,
        outcome: AckOutcome,
        code: &str,
        text: &str,
        now: OffsetDateTime,
    ) -> Response {
        let envelope = &inbound.envelope;
        let ack = acks::envelope(
            AckSpec {
                refers_to: &envelope.message_id,
                to: &envelope.sender.ods_code,
                from: &envelope.sender.ods_code,
                exchange: &self.ctx.exchange.id,
                level: AckLevel::Infrastructure,
                outcome,
                code: acks::itk(code),
                text: Some(text.into()),
                sender_reference: envelope.sender_reference.clone(),
            },
            now,
        );
        let ctx = RenderContext::new(&self.base_url, "urn:lhcie:local-system", now);
        match render_response(&ack, &inbound.message_header_id, &ctx) {
            Ok(bundle) => fhir_json(StatusCode::OK, &bundle),
            Err(error) => {
                tracing::error!(%error, "cannot render the response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
