//! The hub's operations dashboard in tests: users (hashed with the real
//! `hub hash-password`), its section in the test hub's configuration, and
//! a small client of its JSON API authenticating with HTTP Basic, as the
//! `hub dead-letters` CLI does.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::TestEnv;

/// A dashboard user of a test.
#[derive(Debug, Clone)]
pub struct OpsUser {
    /// The name.
    pub name: &'static str,
    /// `viewer`, `operator` or `admin`.
    pub role: &'static str,
    /// The password.
    pub password: &'static str,
}

/// An operator, a viewer and an admin.
pub const USERS: [OpsUser; 3] = [
    OpsUser {
        name: "olivia",
        role: "operator",
        password: "olivia-operator-pass",
    },
    OpsUser {
        name: "victor",
        role: "viewer",
        password: "victor-viewer-pass",
    },
    OpsUser {
        name: "ada",
        role: "admin",
        password: "ada-admin-password",
    },
];

/// The test harness's own dashboard user (admin), in every test hub's users
/// file: the harness reads audit records, trace events and dead letters
/// through the dashboard's API, as operators do (the admin port serves
/// none of them).
pub const HARNESS: OpsUser = OpsUser {
    name: "harness",
    role: "admin",
    password: "lhcie-test-harness-pass",
};

/// [`HARNESS`]'s password hash: argon2id with tiny parameters, so checking
/// it on every request costs nothing (the hub verifies against a hash's own
/// parameters).
const HARNESS_HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$aGFybmVzcy1zYWx0LTE2Yg$3oOZBxsqSsPKKOtpHpFT55wk4NxnqxbrQicQxFXnNkU";

/// The argon2id hash of `password`, by `hub hash-password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(crate::binary("hub"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hub hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("writing the password");
    let output = child.wait_with_output().expect("hub hash-password");
    assert!(
        output.status.success(),
        "hub hash-password: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// Writes the users file (`users` and [`HARNESS`]) and sets `[dashboard]`
/// in the environment's hub configuration (replacing one already there);
/// returns the dashboard's address. Call before starting the hub.
pub fn enable_dashboard(env: &TestEnv, users: &[OpsUser]) -> SocketAddr {
    let mut file = format!(
        "[[user]]\nname = \"{}\"\nrole = \"{}\"\npassword_hash = \"{HARNESS_HASH}\"\n",
        HARNESS.name, HARNESS.role
    );
    for user in users {
        file.push_str(&format!(
            "[[user]]\nname = \"{}\"\nrole = \"{}\"\npassword_hash = \"{}\"\n",
            user.name,
            user.role,
            hash_password(user.password)
        ));
    }
    std::fs::write(env.dir().join("ops-users.toml"), file).expect("users file");
    let port = crate::free_port();
    let text = without_section(
        &std::fs::read_to_string(&env.hub_config).expect("hub.toml"),
        "[dashboard]",
    );
    let text = text
        + &format!(
            "[dashboard]\nlisten = \"127.0.0.1:{port}\"\nusers = \"ops-users.toml\"\nmax_replay_per_second = 50\n"
        );
    std::fs::write(&env.hub_config, text).expect("hub.toml");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The dashboard of the environment's hub: the one configured, or a new
/// one for [`HARNESS`] only.
pub fn ensure_dashboard(env: &TestEnv) -> SocketAddr {
    let text = std::fs::read_to_string(&env.hub_config).expect("hub.toml");
    let configured = text
        .split("[dashboard]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .find_map(|line| line.trim().strip_prefix("listen = "))
        })
        .and_then(|listen| listen.trim_matches('"').parse().ok());
    configured.unwrap_or_else(|| enable_dashboard(env, &[]))
}

/// `text` without the TOML table `header` (to the next table).
fn without_section(text: &str, header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            skipping = trimmed == header;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A hub following a one-node registry seeded from the test policy, with
/// its dashboard for [`USERS`].
pub struct OpsHub {
    /// The registry.
    pub cluster: crate::registry::RegistryCluster,
    /// The hub.
    pub hub: crate::hub::HubProcess,
    /// The dashboard's address.
    pub dashboard: SocketAddr,
}

/// Starts an [`OpsHub`] for `env`.
pub async fn start_ops_hub(env: &TestEnv) -> OpsHub {
    use crate::registry::{ClusterOptions, RegistryCluster};
    let cluster = RegistryCluster::start(
        env.dir(),
        &env.topology_file(),
        1,
        &ClusterOptions::default(),
    );
    cluster.leader(std::time::Duration::from_secs(20)).await;
    cluster.seed(&env.policy_file(), &env.topology_file());
    env.use_registry(&cluster.endpoints(), 2000);
    let dashboard = enable_dashboard(env, &USERS);
    let hub = crate::hub::HubProcess::start(env).await;
    OpsHub {
        cluster,
        hub,
        dashboard,
    }
}

/// The dashboard's API as one user.
pub struct DashboardClient {
    address: SocketAddr,
    authorization: String,
}

impl DashboardClient {
    /// A client for `user`.
    pub fn new(address: SocketAddr, user: &OpsUser) -> Self {
        Self {
            address,
            authorization: format!(
                "Authorization: Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", user.name, user.password))
            ),
        }
    }

    /// A client that logs in once (`POST /api/login`) and then sends the
    /// session cookie, as the browser does: no password check per request.
    pub async fn login(address: SocketAddr, user: &OpsUser) -> Self {
        let anonymous = Self {
            address,
            authorization: String::new(),
        };
        let body = serde_json::json!({"username": user.name, "password": user.password});
        let (status, headers, answer) = anonymous.exchange("POST", "/api/login", Some(&body)).await;
        assert_eq!(status, 200, "login: {answer}");
        let cookie = headers
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie").then(|| {
                    value
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            })
            .expect("a session cookie");
        Self {
            address,
            authorization: format!("Cookie: {cookie}"),
        }
    }

    /// The header that authenticates this client's requests.
    pub fn credentials_header(&self) -> &str {
        &self.authorization
    }

    /// A GET: status and JSON body (`Null` if not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    /// A POST of a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, Some(body)).await
    }

    /// A GET expecting 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, _, body) = self.exchange(method, path, body).await;
        (status, body)
    }

    /// One request: status, response headers, JSON body.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let mut stream = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("dashboard reachable");
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.address
        );
        if !self.authorization.is_empty() {
            request.push_str(&format!("{}\r\n", self.authorization));
        }
        if body.is_some() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&payload);
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("response read");
        let (status, headers, body) = crate::hub::split_response(&response);
        (
            status,
            headers,
            serde_json::from_str(&body).unwrap_or(Value::Null),
        )
    }
}
