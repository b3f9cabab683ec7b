//! Sessions, password checks and failed-login limiting (see the parent
//! module's docs).

use super::*;

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
    pub(super) fn session_cookie(&self, token: &str) -> String {
        format!(
            "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.session_ttl.as_secs(),
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that makes the browser forget the cookie.
    pub(super) fn cleared_cookie(&self) -> String {
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
