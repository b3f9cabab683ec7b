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
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
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

    let bad_hash =
        users_error("[[user]]\nname = \"c\"\nrole = \"viewer\"\npassword_hash = \"plaintext\"\n");
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

#[tokio::test]
async fn a_live_stream_learns_that_its_session_ended() {
    let auth = Arc::new(Auth::new(users(), Duration::from_secs(3600)));
    let user = auth.verify_password("victor", "victor-pw").await.unwrap();
    let token = auth.open_session(user).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        format!("{SESSION_COOKIE}={token}").parse().unwrap(),
    );
    let every = Duration::from_millis(20);
    let ended = tokio::spawn(session_ended(auth.clone(), &headers, every));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!ended.is_finished(), "ended while the session was live");
    auth.close_session(&token);
    tokio::time::timeout(Duration::from_secs(2), ended)
        .await
        .expect("the stream outlived the logout")
        .unwrap();
    // Expiry too.
    let short = Arc::new(Auth::new(users(), Duration::from_millis(200)));
    let user = short.verify_password("victor", "victor-pw").await.unwrap();
    let token = short.open_session(user).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        format!("{SESSION_COOKIE}={token}").parse().unwrap(),
    );
    tokio::time::timeout(
        Duration::from_secs(2),
        session_ended(short, &headers, every),
    )
    .await
    .expect("the stream outlived the session's expiry");
    // Basic authentication: nothing to end.
    let basic_only = HeaderMap::new();
    assert!(
        tokio::time::timeout(
            Duration::from_millis(100),
            session_ended(auth, &basic_only, every)
        )
        .await
        .is_err()
    );
}
