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
//! **Who may post** (`docs/security.md`, "Adapter listeners"): with
//! `[fhir.listen_tls]` the listener speaks HTTPS, and with its `client_ca`
//! a client without a certificate chaining to that CA is refused in the
//! handshake; with `inbound_tokens_file` every request must carry one of
//! its bearer tokens (`Authorization: Bearer ...`), or it is answered
//! **401** with an OperationOutcome (`login`) and `WWW-Authenticate:
//! Bearer`, before its body is read. **Bounds**: at most `max_connections`
//! connections at once (more wait to be accepted), `header_read_timeout_ms`
//! for the TLS handshake and each request's headers, `body_timeout_ms` for
//! a body (then 400), `connection_timeout_ms` for a connection's whole
//! life; HTTP/1.1 only.
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
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
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
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

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
    let acceptor = match &settings.listen_tls {
        Some(tls) => Some(crate::hl7v2::tls::acceptor(tls)?),
        None => None,
    };
    let tokens = match &settings.inbound_tokens_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the inbound tokens {}", file.display()))?;
            let tokens = lhcie_config::inbound_tokens(&text)
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
            Some(Arc::new(tokens))
        }
        None => None,
    };
    log_insecure_choices(listen, &settings);
    let client_certificates = settings
        .listen_tls
        .as_ref()
        .is_some_and(|tls| tls.client_ca.is_some());
    let listener = lhcie_runtime::net::bind(listen)
        .await
        .with_context(|| format!("binding the FHIR endpoint on {listen}"))?;
    let limits = ReadLimits {
        max_bytes: settings.max_body_bytes,
        max_depth: settings.max_depth,
        ..ReadLimits::default()
    };
    let shutdown = ctx.shutdown.clone();
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let endpoint = Arc::new(Endpoint {
        base_url: format!("{scheme}://{listen}"),
        limits,
        window,
        delivered,
        ctx,
        settings,
    });
    let body_timeout = Duration::from_millis(endpoint.settings.body_timeout_ms);
    let limits = ConnectionLimits {
        header_read: Duration::from_millis(endpoint.settings.header_read_timeout_ms),
        lifetime: Duration::from_millis(endpoint.settings.connection_timeout_ms),
    };
    let max_connections = endpoint.settings.max_connections;
    let app = Router::new()
        .route("/$process-message", post(process_message))
        .route("/DocumentReference", post(document_reference))
        .route("/metadata", get(metadata))
        // One byte over the limit is enough to know it is too large.
        .layer(DefaultBodyLimit::max(endpoint.settings.max_body_bytes + 1))
        .with_state(endpoint);
    let mut app = with_body_timeout(app, body_timeout);
    if let Some(tokens) = tokens.clone() {
        // Checked before anything else, the body included.
        app = app.layer(middleware::from_fn_with_state(tokens, require_token));
    }
    tracing::info!(
        %listen,
        tls = acceptor.is_some(),
        client_certificates,
        bearer_tokens = tokens.is_some(),
        max_connections,
        "FHIR endpoint ready"
    );
    serve_connections(listener, acceptor, app, max_connections, limits, shutdown).await;
    Ok(())
}

/// Logs, at start-up, why a non-loopback listener is plain HTTP or does not
/// authenticate its clients (the file had to say why).
fn log_insecure_choices(listen: SocketAddr, settings: &FhirSettings) {
    if listen.ip().is_loopback() {
        return;
    }
    if let Some(reason) = &settings.allow_plaintext_reason
        && settings.listen_tls.is_none()
    {
        tracing::warn!(%listen, %reason, "FHIR listener is PLAIN HTTP on a non-loopback address (allow_plaintext_reason)");
    }
    let authenticated = settings.inbound_tokens_file.is_some()
        || settings
            .listen_tls
            .as_ref()
            .is_some_and(|tls| tls.client_ca.is_some());
    if let Some(reason) = &settings.allow_unauthenticated_reason
        && !authenticated
    {
        tracing::warn!(%listen, %reason, "FHIR listener does not authenticate clients on a non-loopback address (allow_unauthenticated_reason)");
    }
}

/// Per-connection bounds.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    /// The TLS handshake, and each request's headers.
    header_read: Duration,
    /// A connection's whole life.
    lifetime: Duration,
}

/// How long connections in progress may finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections (at most `max_connections` at once) and serves each
/// with HTTP/1.1, over TLS with `acceptor`, until `shutdown`; then lets the
/// connections finish their requests (at most [`SHUTDOWN_GRACE`]).
async fn serve_connections(
    listener: lhcie_runtime::net::Listener,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    max_connections: usize,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // E.g. out of file descriptors: wait, then try again.
                    tracing::warn!(%error, "FHIR endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_http(stream, app, limits, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_http(stream, app, limits, shutdown).await,
                        Ok(Err(error)) => {
                            tracing::info!(%peer, %error, "FHIR endpoint: TLS handshake refused");
                        }
                        Err(_) => {
                            tracing::info!(%peer, "FHIR endpoint: TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
}

/// One connection: HTTP/1.1 with keep-alive, the header-read timeout, and
/// a graceful close at the end of its lifetime or at shutdown.
async fn serve_http<S>(
    stream: S,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(error) = served {
                tracing::debug!(%error, "FHIR endpoint: connection ended");
            }
            return;
        }
        () = tokio::time::sleep(limits.lifetime) => {}
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
}

/// Every request body must arrive within `timeout` (then reading it
/// fails, and the handler answers 400).
fn with_body_timeout(app: Router, timeout: Duration) -> Router {
    app.layer(middleware::from_fn(move |request: Request, next: Next| {
        next.run(request.map(|body| Body::new(TimeoutBody::new(body, timeout))))
    }))
}

/// Lets a request through only with one of `tokens` as its bearer token;
/// otherwise 401 with an OperationOutcome, the body unread.
async fn require_token(
    State(tokens): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let refusal = match presented {
        Some(token) if tokens.iter().any(|known| same_secret(known, token)) => {
            return next.run(request).await;
        }
        Some(_) => "the bearer token is not accepted",
        None => "a bearer token is required (Authorization: Bearer <token>)",
    };
    tracing::info!(path = %request.uri().path(), "FHIR request refused: not authenticated");
    let mut response = outcome(StatusCode::UNAUTHORIZED, "login", refusal);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(known: &str, presented: &str) -> bool {
    let (known, presented) = (known.as_bytes(), presented.as_bytes());
    if known.len() != presented.len() {
        return false;
    }
    known
        .iter()
        .zip(presented)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// A request body that fails once its deadline has passed (the whole body
/// must arrive within `body_timeout_ms`).
struct TimeoutBody {
    inner: Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl TimeoutBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl http_body::Body for TimeoutBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        if self.deadline.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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

#[cfg(test)]
mod listener_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Serves `POST /echo` (the body's length, or 400 if it could not be
    /// read) with these bounds; its address.
    async fn listener(
        max_connections: usize,
        limits: ConnectionLimits,
        body_timeout: Duration,
        tokens: Option<Vec<String>>,
    ) -> (SocketAddr, CancellationToken) {
        let mut app = with_body_timeout(
            Router::new().route(
                "/echo",
                post(|body: Result<Bytes, BytesRejection>| async move {
                    match body {
                        Ok(body) => (StatusCode::OK, body.len().to_string()),
                        Err(_) => (StatusCode::BAD_REQUEST, "unread".to_owned()),
                    }
                }),
            ),
            body_timeout,
        );
        if let Some(tokens) = tokens {
            app = app.layer(middleware::from_fn_with_state(
                Arc::new(tokens),
                require_token,
            ));
        }
        let listener = lhcie_runtime::net::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve_connections(
            listener,
            None,
            app,
            max_connections,
            limits,
            stop.clone(),
        ));
        (address, stop)
    }

    const GENEROUS: ConnectionLimits = ConnectionLimits {
        header_read: Duration::from_secs(10),
        lifetime: Duration::from_secs(60),
    };

    /// Reads until the connection closes or `within` passes; the text.
    async fn read_all(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut text = Vec::new();
        let read = tokio::time::timeout(within, async {
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        text.extend_from_slice(&buffer[..n]);
                        if text.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        read.ok()
            .map(|()| String::from_utf8_lossy(&text).into_owned())
    }

    const REQUEST: &[u8] =
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nab";

    #[tokio::test]
    async fn a_client_that_sends_no_headers_is_disconnected() {
        let limits = ConnectionLimits {
            header_read: Duration::from_millis(200),
            lifetime: Duration::from_secs(60),
        };
        let (address, stop) = listener(4, limits, Duration::from_secs(10), None).await;
        let mut silent = TcpStream::connect(address).await.unwrap();
        let closed = read_all(&mut silent, Duration::from_secs(3)).await;
        assert!(closed.is_some(), "still open after the header-read timeout");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_refused() {
        let (address, stop) = listener(4, GENEROUS, Duration::from_millis(200), None).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
            .await
            .unwrap();
        let answer = read_all(&mut slow, Duration::from_secs(3)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_to_be_served() {
        let (address, stop) = listener(1, GENEROUS, Duration::from_secs(10), None).await;
        let mut first = TcpStream::connect(address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = TcpStream::connect(address).await.unwrap();
        second.write_all(REQUEST).await.unwrap();
        assert!(
            read_all(&mut second, Duration::from_millis(300))
                .await
                .is_none(),
            "served beyond max_connections"
        );
        first.write_all(REQUEST).await.unwrap();
        let answer = read_all(&mut first, Duration::from_secs(3)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        drop(first);
        let answer = read_all(&mut second, Duration::from_secs(3)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.cancel();
    }

    #[tokio::test]
    async fn without_a_known_bearer_token_the_answer_is_401_and_the_body_unread() {
        let token = "abcdefghijklmnopqrstuvwxyz0123456789".to_owned();
        let (address, stop) = listener(
            4,
            GENEROUS,
            Duration::from_secs(10),
            Some(vec![token.clone()]),
        )
        .await;
        for authorization in [
            "",
            "authorization: Bearer wrong\r\n",
            "authorization: Basic eDp5\r\n",
        ] {
            let mut client = TcpStream::connect(address).await.unwrap();
            client
                .write_all(
                    format!("POST /echo HTTP/1.1\r\nhost: x\r\n{authorization}content-length: 2\r\nconnection: close\r\n\r\nab")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let answer = read_all(&mut client, Duration::from_secs(3)).await.unwrap();
            assert!(
                answer.starts_with("HTTP/1.1 401"),
                "{authorization}: {answer}"
            );
            assert!(
                answer.to_lowercase().contains("www-authenticate: bearer"),
                "{answer}"
            );
        }
        let mut client = TcpStream::connect(address).await.unwrap();
        client
            .write_all(
                format!("POST /echo HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nab")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let answer = read_all(&mut client, Duration::from_secs(3)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab")
        );
        stop.cancel();
    }
}
