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

/// Proves who a user is. The users file is one source; see the module docs
/// for how OIDC fits beside it.
pub trait IdentitySource: Send + Sync {
    /// The PHC hash to verify `name`'s password against, and its role;
    /// `None` if the source does not know the name.
    fn password_hash(&self, name: &str) -> Option<(&str, Role)>;
    /// The hash an unknown name is verified against (its result ignored),
    /// as costly as any real user's, so timing does not tell names apart.
    fn decoy_hash(&self) -> &str;
}

/// One account of the users file.
#[derive(Clone)]
struct Account {
    role: Role,
    password_hash: String,
}

/// The users file: names, roles and argon2 password hashes.
#[derive(Clone)]
pub struct Users {
    accounts: HashMap<String, Account>,
    /// The name whose hash is the costliest to verify.
    costliest: String,
}

impl fmt::Debug for Users {
    // Names and roles only: hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self
            .accounts
            .iter()
            .map(|(name, account)| (name.as_str(), account.role))
            .collect();
        names.sort();
        f.debug_struct("Users").field("users", &names).finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: toml::Spanned<String>,
    role: Role,
    password_hash: toml::Spanned<String>,
}

impl Users {
    /// Reads the users file at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::one(path, "", format!("cannot read the file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses users from TOML text (errors name the file `<users>`).
    pub fn from_toml(text: &str) -> Result<Self, AuthError> {
        Self::parse(Path::new("<users>"), text)
    }

    fn parse(file: &Path, text: &str) -> Result<Self, AuthError> {
        let parsed: UsersFile = lhcie_config::toml_file::parse(file, text)?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let mut problems = Vec::new();
        let mut accounts = HashMap::new();
        let mut lower_names = HashMap::new();
        let mut costliest: Option<(u64, String)> = None;
        for (index, entry) in parsed.user.into_iter().enumerate() {
            let name = entry.name.get_ref().clone();
            let name_line = Some(line_of(entry.name.span().start));
            let mut problem = |key: &str, line, message: String| {
                problems.push(Problem {
                    key: format!("user[{index}].{key}"),
                    line,
                    message,
                });
            };
            if let Some(why) = name_problem(&name) {
                problem("name", name_line, why);
                continue;
            }
            if let Some(first) = lower_names.insert(name.to_lowercase(), index) {
                problem(
                    "name",
                    name_line,
                    format!("duplicate user name {name:?} (also user[{first}], ignoring case)"),
                );
                continue;
            }
            let hash_line = Some(line_of(entry.password_hash.span().start));
            let hash = entry.password_hash.into_inner();
            let cost = match hash_cost(&hash) {
                Ok(cost) => cost,
                Err(why) => {
                    problem("password_hash", hash_line, why);
                    continue;
                }
            };
            if costliest.as_ref().is_none_or(|(most, _)| cost > *most) {
                costliest = Some((cost, name.clone()));
            }
            accounts.insert(
                name,
                Account {
                    role: entry.role,
                    password_hash: hash,
                },
            );
        }
        if problems.is_empty() && accounts.is_empty() {
            problems.push(Problem {
                key: "user".to_owned(),
                line: None,
                message: "no [[user]] is defined; nobody could log in".to_owned(),
            });
        }
        match costliest {
            Some((_, costliest)) if problems.is_empty() => Ok(Self {
                accounts,
                costliest,
            }),
            _ => Err(ConfigError {
                file: file.to_owned(),
                problems,
            }
            .into()),
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether there are none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// `name`'s role, if `name` is a user.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        self.accounts.get(name).map(|account| account.role)
    }
}

impl IdentitySource for Users {
    fn password_hash(&self, name: &str) -> Option<(&str, Role)> {
        self.accounts
            .get(name)
            .map(|account| (account.password_hash.as_str(), account.role))
    }

    fn decoy_hash(&self) -> &str {
        self.accounts
            .get(&self.costliest)
            .map_or("", |account| account.password_hash.as_str())
    }
}

/// Why a user name cannot be used, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the user name is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("the user name is longer than {MAX_NAME_LEN} bytes"))
    } else if name.contains(':') || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some(format!(
            "user name {name:?} contains ':', a space or a control character (HTTP Basic could not carry it)"
        ))
    } else {
        None
    }
}

/// The relative cost of verifying against `hash` (memory × passes ×
/// lanes), or why it is not a usable argon2 PHC string.
fn hash_cost(hash: &str) -> Result<u64, String> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        format!(
            "not a PHC password hash ({e}); make one with lhcie_hub::dashboard::auth::hash_password"
        )
    })?;
    argon2::Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|_| format!("algorithm {} is not argon2", parsed.algorithm))?;
    let params = Params::try_from(&parsed).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("the PHC string has no salt or no hash".to_owned());
    }
    Ok(u64::from(params.m_cost()) * u64::from(params.t_cost()) * u64::from(params.p_cost()))
}

/// Hashes `password` with argon2id, the crate's default (OWASP) parameters
/// and a random salt, as a PHC string for the users file.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt =
        argon2::password_hash::try_generate_salt().map_err(|e| AuthError::Random(e.to_string()))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

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

struct Session {
    user: User,
    expires: Instant,
}

/// Users, sessions and failed-login limiting; shared by the dashboard's
/// routes as `Arc<Auth>` (the router state must provide it, `FromRef`).
pub struct Auth {
    users: Arc<Users>,
    session_ttl: Duration,
    secure_cookie: bool,
    max_failures: usize,
    failure_window: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    verifying: Semaphore,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users)
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookie", &self.secure_cookie)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Sessions for `users` that last `session_ttl` after login; a cookie
    /// without `Secure`, and the default failed-login limit.
    pub fn new(users: Users, session_ttl: Duration) -> Self {
        Self {
            users: Arc::new(users),
            session_ttl,
            secure_cookie: false,
            max_failures: DEFAULT_MAX_FAILURES,
            failure_window: DEFAULT_FAILURE_WINDOW,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(1),
        }
    }

    /// Whether the session cookie carries `Secure` (set it when TLS is in
    /// front of the dashboard: the `secure_cookie` configuration flag).
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// After `max_failures` failed logins for one name within `window`,
    /// refuse that name (429) until the window has passed.
    pub fn login_limit(mut self, max_failures: usize, window: Duration) -> Self {
        self.max_failures = max_failures.max(1);
        self.failure_window = window;
        self
    }

    /// The users file's users.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// Checks `name`'s password (see the module docs for timing and
    /// limiting) and records the outcome for the limit.
    pub async fn verify_password(&self, name: &str, password: &str) -> Result<User, LoginFailure> {
        if name.len() > MAX_NAME_LEN || password.len() > MAX_PASSWORD_LEN {
            return Err(LoginFailure::TooLong);
        }
        self.check_limit(name)?;
        let _permit = tokio::time::timeout(VERIFY_QUEUE_TIMEOUT, self.verifying.acquire())
            .await
            .map_err(|_| LoginFailure::Busy)?
            .map_err(|e| LoginFailure::Internal(e.to_string()))?;
        // Again: failures may have been recorded while this one waited.
        self.check_limit(name)?;
        let users = Arc::clone(&self.users);
        let owned_name = name.to_owned();
        let password = password.to_owned();
        let verified = tokio::task::spawn_blocking(move || {
            let (hash, role) = match users.password_hash(&owned_name) {
                Some((hash, role)) => (hash, Some(role)),
                None => (users.decoy_hash(), None),
            };
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), hash)
                .is_ok();
            role.filter(|_| matches)
        })
        .await
        .map_err(|e| LoginFailure::Internal(format!("password verification failed: {e}")))?;
        let mut failures = lock(&self.failures);
        match verified {
            Some(role) => {
                failures.remove(name);
                Ok(User {
                    name: name.to_owned(),
                    role,
                })
            }
            None => {
                let now = Instant::now();
                if failures.len() >= FAILURE_LOG_SWEEP_AT {
                    let window = self.failure_window;
                    failures.retain(|_, times| {
                        times
                            .back()
                            .is_some_and(|last| now.duration_since(*last) < window)
                    });
                }
                let times = failures.entry(name.to_owned()).or_default();
                times.push_back(now);
                while times.len() > self.max_failures {
                    times.pop_front();
                }
                Err(LoginFailure::Wrong)
            }
        }
    }

    /// `Err(Limited)` if `name` has had too many failures in the window.
    fn check_limit(&self, name: &str) -> Result<(), LoginFailure> {
        let mut failures = lock(&self.failures);
        let Some(times) = failures.get_mut(name) else {
            return Ok(());
        };
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|first| now.duration_since(*first) >= self.failure_window)
        {
            times.pop_front();
        }
        match times.front() {
            None => {
                failures.remove(name);
                Ok(())
            }
            Some(first) if times.len() >= self.max_failures => Err(LoginFailure::Limited {
                retry_after: self.failure_window - now.duration_since(*first),
            }),
            Some(_) => Ok(()),
        }
    }

    /// Starts a session for `user`, however their identity was proven, and
    /// returns its token (256 random bits, hex).
    pub fn open_session(&self, user: User) -> Result<String, AuthError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, session| session.expires > now);
        sessions.insert(
            token.clone(),
            Session {
                user,
                expires: now + self.session_ttl,
            },
        );
        Ok(token)
    }

    /// The user of a live session, if `token` is one.
    pub fn session_user(&self, token: &str) -> Option<User> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get(token)?;
        if session.expires > Instant::now() {
            Some(session.user.clone())
        } else {
            sessions.remove(token);
            None
        }
    }

    /// Ends the session `token` (if it is one).
    pub fn close_session(&self, token: &str) -> Option<User> {
        lock(&self.sessions)
            .remove(token)
            .map(|session| session.user)
    }

    /// The `Set-Cookie` value carrying `token`.
    fn session_cookie(&self, token: &str) -> String {
        format!(
            "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.session_ttl.as_secs(),
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that makes the browser forget the cookie.
    fn cleared_cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }
}

/// Locks `mutex`, carrying on if a panicking holder poisoned it (the maps
/// stay consistent: every change is one insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    /// A quick hash for tests (argon2id, tiny memory): the real parameters
    /// take long in an unoptimised build.
    fn quick_hash(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        Argon2::from(params)
            .hash_password_with_salt(password.as_bytes(), b"test-salt-16byte")
            .unwrap()
            .to_string()
    }

    fn users() -> Users {
        Users::from_toml(&format!(
            r#"
[[user]]
name = "alice"
role = "operator"
password_hash = "{}"

[[user]]
name = "victor"
role = "viewer"
password_hash = "{}"

[[user]]
name = "ada"
role = "admin"
password_hash = "{}"
"#,
            quick_hash("alice-pw"),
            quick_hash("victor-pw"),
            quick_hash("ada-pw"),
        ))
        .unwrap()
    }

    fn app_with(auth: Auth) -> Router {
        routes::<Arc<Auth>>()
            .route(
                "/api/admin-only",
                get(|user: User| async move { user.require(Role::Admin).map(|()| "ok") }),
            )
            .with_state(Arc::new(auth))
    }

    fn app() -> Router {
        app_with(Auth::new(users(), Duration::from_secs(3600)))
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        json: Value,
    }

    impl Answer {
        /// The session token the answer's `Set-Cookie` carries.
        fn token(&self) -> String {
            let cookie = self.headers[header::SET_COOKIE].to_str().unwrap();
            let (pair, _) = cookie.split_once(';').unwrap();
            pair.strip_prefix("lhcie_session=").unwrap().to_owned()
        }
    }

    async fn send(app: &Router, request: Request<Body>) -> Answer {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn login(app: &Router, name: &str, password: &str) -> Answer {
        let body = json!({ "username": name, "password": password }).to_string();
        let request = Request::post("/api/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        send(app, request).await
    }

    async fn get_with(app: &Router, path: &str, name: &str, value: &str) -> Answer {
        let request = Request::get(path)
            .header(name, value)
            .body(Body::empty())
            .unwrap();
        send(app, request).await
    }

    async fn me_with_cookie(app: &Router, token: &str) -> Answer {
        get_with(app, "/api/me", "cookie", &format!("lhcie_session={token}")).await
    }

    fn basic(name: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Basic {encoded}")
    }

    #[tokio::test]
    async fn login_sets_an_http_only_strict_cookie_that_identifies_the_user() {
        let app = app();
        let answer = login(&app, "alice", "alice-pw").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json, json!({"user": "alice", "role": "operator"}));
        let cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("lhcie_session="), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
        assert!(!cookie.contains("Secure"), "{cookie}");
        let token = answer.token();
        assert_eq!(token.len(), 64, "256 bits in hex");
        let me = me_with_cookie(&app, &token).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json, json!({"user": "alice", "role": "operator"}));
    }

    #[tokio::test]
    async fn secure_cookie_adds_the_secure_flag() {
        let app = app_with(Auth::new(users(), Duration::from_secs(60)).secure_cookie(true));
        let answer = login(&app, "alice", "alice-pw").await;
        let cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.contains("; Secure"), "{cookie}");
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_get_the_same_401() {
        let app = app();
        let wrong = login(&app, "alice", "not-her-password").await;
        let unknown = login(&app, "mallory", "alice-pw").await;
        for answer in [&wrong, &unknown] {
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
            assert_eq!(answer.json, json!({"error": "wrong user name or password"}));
            assert!(answer.headers.get(header::SET_COOKIE).is_none());
        }
    }

    #[tokio::test]
    async fn sessions_tokens_are_distinct_and_unknown_ones_refused() {
        let app = app();
        let first = login(&app, "alice", "alice-pw").await.token();
        let second = login(&app, "alice", "alice-pw").await.token();
        assert_ne!(first, second);
        let forged = me_with_cookie(&app, &"0".repeat(64)).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
        assert!(forged.json["error"].is_string());
        let none = send(&app, Request::get("/api/me").body(Body::empty()).unwrap()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.json, json!({"error": "not logged in"}));
    }

    #[tokio::test]
    async fn basic_authentication_uses_the_same_users() {
        let app = app();
        let ok = get_with(
            &app,
            "/api/me",
            "authorization",
            &basic("victor", "victor-pw"),
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.json, json!({"user": "victor", "role": "viewer"}));
        let wrong = get_with(&app, "/api/me", "authorization", &basic("victor", "nope")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.headers.get(header::WWW_AUTHENTICATE).is_none());
        let garbage = get_with(&app, "/api/me", "authorization", "Basic !!!").await;
        assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            garbage.json,
            json!({"error": "malformed Basic credentials"})
        );
    }

    #[tokio::test]
    async fn an_expired_session_is_refused() {
        let app = app_with(Auth::new(users(), Duration::from_millis(50)));
        let token = login(&app, "alice", "alice-pw").await.token();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let me = me_with_cookie(&app, &token).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me.json,
            json!({"error": "the session has ended; log in again"})
        );
    }

    #[tokio::test]
    async fn logout_ends_the_session() {
        let app = app();
        let token = login(&app, "alice", "alice-pw").await.token();
        let other = login(&app, "alice", "alice-pw").await.token();
        let request = Request::post("/api/logout")
            .header("cookie", format!("lhcie_session={token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let out = send(&app, request).await;
        assert_eq!(out.status, StatusCode::OK);
        assert_eq!(out.json, json!({}));
        let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(
            me_with_cookie(&app, &token).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            me_with_cookie(&app, &other).await.status,
            StatusCode::OK,
            "only that session ends"
        );
    }

    #[tokio::test]
    async fn posts_without_a_json_content_type_are_refused_with_415() {
        let app = app();
        let body = json!({ "username": "alice", "password": "alice-pw" }).to_string();
        let request = Request::post("/api/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let answer = send(&app, request).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(answer.json["error"].is_string());
        let token = login(&app, "alice", "alice-pw").await.token();
        let request = Request::post("/api/logout")
            .header("cookie", format!("lhcie_session={token}"))
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(
            send(&app, request).await.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(me_with_cookie(&app, &token).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn five_failures_lock_the_name_out_even_with_the_right_password() {
        let app = app();
        for _ in 0..DEFAULT_MAX_FAILURES {
            assert_eq!(
                login(&app, "alice", "guess").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        let limited = login(&app, "alice", "alice-pw").await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            limited.json["error"]
                .as_str()
                .unwrap()
                .contains("too many failed logins")
        );
        let retry: u64 = limited.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=300).contains(&retry), "{retry}");
        let by_basic = get_with(
            &app,
            "/api/me",
            "authorization",
            &basic("alice", "alice-pw"),
        )
        .await;
        assert_eq!(by_basic.status, StatusCode::TOO_MANY_REQUESTS);
        // Other names are not affected, unknown names are limited alike.
        assert_eq!(
            login(&app, "victor", "victor-pw").await.status,
            StatusCode::OK
        );
        for _ in 0..DEFAULT_MAX_FAILURES {
            login(&app, "nobody", "guess").await;
        }
        assert_eq!(
            login(&app, "nobody", "guess").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[tokio::test]
    async fn the_limit_lifts_when_the_window_passes_and_success_resets_it() {
        let auth =
            Auth::new(users(), Duration::from_secs(60)).login_limit(2, Duration::from_millis(200));
        let app = app_with(auth);
        login(&app, "alice", "guess").await;
        assert_eq!(
            login(&app, "alice", "alice-pw").await.status,
            StatusCode::OK,
            "one failure"
        );
        login(&app, "alice", "guess").await;
        assert_eq!(
            login(&app, "alice", "guess").await.status,
            StatusCode::UNAUTHORIZED,
            "the success reset the count"
        );
        assert_eq!(
            login(&app, "alice", "alice-pw").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            login(&app, "alice", "alice-pw").await.status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn roles_are_ordered_and_require_answers_403() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!(
            serde_json::to_value(Role::Operator).unwrap(),
            json!("operator")
        );
        let alice = User {
            name: "alice".into(),
            role: Role::Operator,
        };
        assert!(alice.require(Role::Viewer).is_ok());
        assert!(alice.require(Role::Operator).is_ok());
        let (status, Json(body)) = alice.require(Role::Admin).unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            json!({"error": "this needs the admin role; alice has the operator role"})
        );

        let app = app();
        let denied = get_with(
            &app,
            "/api/admin-only",
            "authorization",
            &basic("alice", "alice-pw"),
        )
        .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(denied.json["error"].is_string());
        let allowed = get_with(
            &app,
            "/api/admin-only",
            "authorization",
            &basic("ada", "ada-pw"),
        )
        .await;
        assert_eq!(allowed.status, StatusCode::OK);
    }

    #[test]
    fn hash_password_makes_an_argon2id_phc_string_that_verifies() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert_ne!(hash, hash_password("correct horse").unwrap(), "random salt");
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"correct horse", hash.as_str())
                .is_ok()
        );
        assert!(argon2.verify_password(b"wrong", hash.as_str()).is_err());
        let users = Users::from_toml(&format!(
            "[[user]]\nname = \"a\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\n"
        ))
        .unwrap();
        assert_eq!(users.role_of("a"), Some(Role::Admin));
    }

    fn users_error(text: &str) -> String {
        Users::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn users_file_errors_name_the_key_and_line() {
        let hash = quick_hash("x");
        let unknown_key = users_error(&format!(
            "[[user]]\nname = \"a\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\npassword = \"x\"\n"
        ));
        assert!(
            unknown_key.contains("unknown field `password`"),
            "{unknown_key}"
        );
        assert!(
            unknown_key.contains("<users>:5: user[0].password:"),
            "{unknown_key}"
        );

        let duplicate = users_error(&format!(
            "[[user]]\nname = \"bob\"\nrole = \"viewer\"\npassword_hash = \"{hash}\"\n\
             [[user]]\nname = \"Bob\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\n"
        ));
        assert!(duplicate.contains("user[1].name"), "{duplicate}");
        assert!(duplicate.contains("<users>:6:"), "{duplicate}");
        assert!(
            duplicate.contains("duplicate user name \"Bob\""),
            "{duplicate}"
        );

        let bad_hash = users_error(
            "[[user]]\nname = \"c\"\nrole = \"viewer\"\npassword_hash = \"plaintext\"\n",
        );
        assert!(bad_hash.contains("user[0].password_hash"), "{bad_hash}");
        assert!(bad_hash.contains("<users>:4:"), "{bad_hash}");
        assert!(bad_hash.contains("not a PHC password hash"), "{bad_hash}");

        let not_argon2 = users_error(
            "[[user]]\nname = \"c\"\nrole = \"viewer\"\npassword_hash = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg\"\n",
        );
        assert!(not_argon2.contains("is not argon2"), "{not_argon2}");

        let bad_role = users_error(&format!(
            "[[user]]\nname = \"d\"\nrole = \"root\"\npassword_hash = \"{hash}\"\n"
        ));
        assert!(bad_role.contains("unknown variant `root`"), "{bad_role}");

        let colon = users_error(&format!(
            "[[user]]\nname = \"e:f\"\nrole = \"viewer\"\npassword_hash = \"{hash}\"\n"
        ));
        assert!(colon.contains("contains ':'"), "{colon}");

        assert!(users_error("").contains("no [[user]] is defined"));
        let syntax = users_error("[[user]]\nname = ");
        assert!(syntax.contains("<users>:2:"), "{syntax}");
    }

    #[test]
    fn load_names_the_file_and_debug_hides_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let missing = Users::load(&path).unwrap_err().to_string();
        assert!(
            missing.contains("users.toml") && missing.contains("cannot read"),
            "{missing}"
        );
        let hash = quick_hash("x");
        std::fs::write(
            &path,
            format!("[[user]]\nname = \"a\"\nrole = \"viewer\"\npassword_hash = \"{hash}\"\n"),
        )
        .unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.len(), 1);
        let debug = format!("{users:?}");
        assert!(!debug.contains("argon2"), "{debug}");
        assert!(debug.contains("\"a\""), "{debug}");
    }

    #[test]
    fn the_decoy_is_the_costliest_hash() {
        let cheap = quick_hash("x");
        let costly = Argon2::from(Params::new(256, 2, 1, None).unwrap())
            .hash_password_with_salt(b"y", b"test-salt-16byte")
            .unwrap()
            .to_string();
        let users = Users::from_toml(&format!(
            "[[user]]\nname = \"a\"\nrole = \"viewer\"\npassword_hash = \"{cheap}\"\n\
             [[user]]\nname = \"b\"\nrole = \"viewer\"\npassword_hash = \"{costly}\"\n\
             [[user]]\nname = \"c\"\nrole = \"viewer\"\npassword_hash = \"{cheap}\"\n"
        ))
        .unwrap();
        assert_eq!(users.decoy_hash(), costly);
    }
}
