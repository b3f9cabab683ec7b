//! Dashboard users, sessions and roles.
//!
//! **Users** come from a TOML file ([`Users::load`]):
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! role = "operator"            # viewer, operator or admin
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # hash_password()
//! ```
//!
//! Unknown keys, duplicate names (ignoring case), names a Basic header
//! cannot carry and hashes that are not argon2 PHC strings are refused with
//! the file, key and line.
//!
//! **Roles** are ordered, each including the ones before it: [`Role::Viewer`]
//! < [`Role::Operator`] < [`Role::Admin`]; a handler asks for the least it
//! needs with [`User::require`].
//!
//! **Sessions** ([`Auth`]) are kept in memory, keyed by a random 256-bit
//! token from the operating system's generator, and end `session_ttl` after
//! login or at logout (a restarted hub forgets them: users log in again).
//! The browser holds the token in the cookie `lhcie_session` (`HttpOnly`,
//! `SameSite=Strict`, `Path=/`). It has no `Secure` flag by default because
//! the demo serves plain HTTP on 127.0.0.1; production puts TLS in front of
//! the dashboard and sets [`Auth::secure_cookie`] so the cookie is never
//! sent in clear.
//!
//! **Every request** under `/api/` identifies its user with the [`User`]
//! extractor: the session cookie, or `Authorization: Basic` with the same
//! user list (for the CLI and scripts; no `WWW-Authenticate` challenge is
//! sent, so a browser never pops up its own dialog).
//!
//! **Passwords** are checked with argon2 (the hash's own parameters; the
//! comparison is constant-time). A name that is not in the file still costs
//! one verification with the costliest user's parameters, so timing does
//! not tell which names exist. After [`DEFAULT_MAX_FAILURES`] failures for
//! one name within [`DEFAULT_FAILURE_WINDOW`] that name gets `429` (with
//! `Retry-After`) until the oldest failure leaves the window, whether the
//! next password is right or not; this applies to Basic too. At most one
//! verification runs at a time, on a blocking thread, so a flood of logins
//! cannot take the routing threads' CPU. Logs carry user names, never
//! passwords.
//!
//! **Other identity sources.** A session only records *who* ([`User`]) and
//! until when; how the identity was proven is the [`IdentitySource`]'s
//! business. Today the only source is the users file ([`Users`]). An OIDC
//! provider would be a second source: its callback route validates the ID
//! token, maps a claim (e.g. a group) to a [`Role`] and calls
//! [`Auth::open_session`]; nothing else here changes.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use argon2::{Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use lhcie_config::{ConfigError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

mod sessions;
#[cfg(test)]
mod tests;
mod users;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lhcie_session";
/// Failed logins for one user name that are allowed within the window.
pub const DEFAULT_MAX_FAILURES: usize = 5;
/// The window failed logins are counted in.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a login waits for its turn to verify before answering 503.
const VERIFY_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest user name and password accepted (longer is refused unhashed).
const MAX_NAME_LEN: usize = 128;
const MAX_PASSWORD_LEN: usize = 1024;
/// Failure logs kept before forgetting the ones whose window has passed.
const FAILURE_LOG_SWEEP_AT: usize = 10_000;

/// What a user may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything; patient-identifying views are audited.
    Viewer,
    /// Also replays and discards dead letters.
    Operator,
    /// Also reads the access log.
    Admin,
}

impl Role {
    /// The lower-case name used in files and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What goes wrong loading users or hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The users file is unreadable or wrong (file, key, line, message).
    #[error("dashboard users: {0}")]
    Config(#[from] ConfigError),
    /// Hashing a password failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

pub use sessions::Auth;
pub use users::{IdentitySource, Users, hash_password};

/// A logged-in user. As an extractor it answers 401 when the request has
/// neither a live session cookie nor valid Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The user's role.
    pub role: Role,
}

impl User {
    /// `Ok` if the user has `role` or a greater one; otherwise 403 with a
    /// JSON error naming the role needed.
    pub fn require(&self, role: Role) -> Result<(), (StatusCode, Json<Value>)> {
        if self.role >= role {
            Ok(())
        } else {
            Err(json_error(
                StatusCode::FORBIDDEN,
                format!(
                    "this needs the {role} role; {} has the {} role",
                    self.name, self.role
                ),
            ))
        }
    }
}

/// The dashboard's error answer: `status` with `{"error": message}`.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": message.into() })))
}

/// Why a password check did not let the user in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong name or password (the two are not told apart).
    Wrong,
    /// Too many failures for this name; try again after this long.
    Limited {
        /// Until the oldest counted failure leaves the window.
        retry_after: Duration,
    },
    /// The name or password is longer than anyone's.
    TooLong,
    /// Verifications are queued for too long; try again.
    Busy,
    /// Verification could not run.
    Internal(String),
}

impl IntoResponse for LoginFailure {
    fn into_response(self) -> Response {
        match self {
            Self::Wrong => {
                json_error(StatusCode::UNAUTHORIZED, "wrong user name or password").into_response()
            }
            Self::Limited { retry_after } => {
                let seconds = retry_after.as_secs().max(1);
                let mut response = json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many failed logins for this user; try again in {seconds} s"),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            Self::TooLong => json_error(StatusCode::BAD_REQUEST, "user name or password too long")
                .into_response(),
            Self::Busy => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins at once; try again",
            )
            .into_response(),
            Self::Internal(why) => {
                json_error(StatusCode::INTERNAL_SERVER_ERROR, why).into_response()
            }
        }
    }
}

/// Resolves when the login session the request carries ends (logout or
/// expiry), checked every `every`; never, for a request authenticated
/// otherwise (HTTP Basic proves the password on each request, and there
/// is nothing to end). Live streams end with it.
pub fn session_ended(
    auth: Arc<Auth>,
    headers: &HeaderMap,
    every: std::time::Duration,
) -> impl std::future::Future<Output = ()> + Send + use<> {
    let token = cookie_token(headers)
        .filter(|token| auth.session_user(token).is_some())
        .map(str::to_owned);
    async move {
        let Some(token) = token else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(every).await;
            if auth.session_user(&token).is_none() {
                return;
            }
        }
    }
}

/// The session token in the request's cookies, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| token)
        .filter(|token| !token.is_empty())
}

/// Basic credentials: `None` without an `Authorization: Basic` header,
/// `Some(Err)` if the header is malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), &'static str>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(
        match decoded.as_deref().and_then(|text| text.split_once(':')) {
            Some((name, password)) => Ok((name.to_owned(), password.to_owned())),
            None => Err("malformed Basic credentials"),
        },
    )
}

/// Why a request has no user: 401 (or 429 / 503 from a Basic check).
#[derive(Debug)]
pub struct AuthRejection(Response);

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl<S> FromRequestParts<S> for User
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Auth>::from_ref(state);
        let token = cookie_token(&parts.headers);
        if let Some(user) = token.and_then(|token| auth.session_user(token)) {
            return Ok(user);
        }
        match basic_credentials(&parts.headers) {
            Some(Ok((name, password))) => {
                auth.verify_password(&name, &password)
                    .await
                    .map_err(|failure| {
                        if failure == LoginFailure::Wrong {
                            tracing::warn!(user = ?name, "dashboard Basic authentication failed");
                        }
                        AuthRejection(failure.into_response())
                    })
            }
            Some(Err(why)) => Err(AuthRejection(
                json_error(StatusCode::UNAUTHORIZED, why).into_response(),
            )),
            None => Err(AuthRejection(
                json_error(
                    StatusCode::UNAUTHORIZED,
                    if token.is_some() {
                        "the session has ended; log in again"
                    } else {
                        "not logged in"
                    },
                )
                .into_response(),
            )),
        }
    }
}

/// The session routes: `POST /api/login`, `POST /api/logout`,
/// `GET /api/me` (docs/dashboard-api.md).
pub fn routes<S>() -> Router<S>
where
    Arc<Auth>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

/// A refused JSON body as the dashboard's error (415 without
/// `Content-Type: application/json`, 400/422 for a bad body).
fn body_error(rejection: &JsonRejection) -> Response {
    json_error(rejection.status(), rejection.body_text()).into_response()
}

fn whoami(user: &User) -> Json<Value> {
    Json(json!({ "user": user.name, "role": user.role }))
}

async fn login(
    State(auth): State<Arc<Auth>>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return body_error(&rejection),
    };
    let name = request.username;
    match auth.verify_password(&name, &request.password).await {
        Ok(user) => match auth.open_session(user.clone()) {
            Ok(token) => {
                tracing::info!(user = ?user.name, role = %user.role, "dashboard login");
                let cookie = auth.session_cookie(&token);
                let mut response = whoami(&user).into_response();
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Err(failure) => {
            match &failure {
                LoginFailure::Wrong => {
                    tracing::warn!(user = ?name, "dashboard login failed: wrong user name or password");
                }
                LoginFailure::Limited { .. } => {
                    tracing::warn!(user = ?name, "dashboard login refused: too many failures");
                }
                _ => {}
            }
            failure.into_response()
        }
    }
}

async fn logout(
    State(auth): State<Arc<Auth>>,
    user: User,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(rejection) = body {
        return body_error(&rejection);
    }
    if let Some(token) = cookie_token(&headers) {
        auth.close_session(token);
    }
    tracing::info!(user = ?user.name, "dashboard logout");
    let mut response = Json(json!({})).into_response();
    if let Ok(value) = HeaderValue::from_str(&auth.cleared_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn me(user: User) -> Json<Value> {
    whoami(&user)
}
