//! The hub as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::TestEnv;

/// A running hub.
pub struct HubProcess {
    child: Child,
    /// Its gRPC address.
    pub grpc: SocketAddr,
    /// Its admin address (health, readiness, metrics).
    pub admin: SocketAddr,
    /// Its dashboard's address (audit, trace events, dead letters: what
    /// names a patient or a message, behind a login).
    pub dashboard: SocketAddr,
    log: PathBuf,
}

impl HubProcess {
    /// Starts the hub of `env` and waits until it is ready (admin `/readyz`
    /// answers 200: broker connected, ingress consuming).
    pub async fn start(env: &TestEnv) -> Self {
        let hub = Self::spawn(env);
        hub.wait_ready(Duration::from_secs(30)).await;
        hub
    }

    /// Starts the hub of `env` without waiting for readiness (adding a
    /// dashboard for the harness to its configuration if it has none).
    pub fn spawn(env: &TestEnv) -> Self {
        let dashboard = crate::dashboard::ensure_dashboard(env);
        let log = env
            .dir()
            .join(format!("hub-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(crate::binary("hub"))
            .arg("serve")
            .arg(&env.hub_config)
            .env("LHCIE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("hub log file"))
            .spawn()
            .expect("starting the hub");
        Self {
            child,
            grpc: SocketAddr::from(([127, 0, 0, 1], env.grpc_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], env.admin_port)),
            dashboard,
            log,
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.get("/readyz").await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the hub was not ready within {timeout:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A GET on the admin endpoint: status and body.
    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.admin, path).await
    }

    /// A GET on the admin endpoint, as JSON, expecting 200.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await.expect("admin endpoint reachable");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// The dashboard's API as the harness's own user (admin).
    pub fn ops(&self) -> crate::dashboard::DashboardClient {
        crate::dashboard::DashboardClient::new(self.dashboard, &crate::dashboard::HARNESS)
    }

    /// The audit records of a message id (`[]` if the hub knows nothing of
    /// it), through the dashboard's trace (`GET /api/trace/<id>`).
    pub async fn audit_of_message(&self, message_id: &str) -> serde_json::Value {
        self.trace(message_id).await["records"].clone()
    }

    /// A message's timeline: the hub's decision events and the trace events
    /// adapters, the hub and the broker recorded (`[]` if none).
    pub async fn events_of_message(&self, message_id: &str) -> serde_json::Value {
        self.trace(message_id).await["timeline"].clone()
    }

    async fn trace(&self, message_id: &str) -> serde_json::Value {
        let (status, body) = self.ops().get(&format!("/api/trace/{message_id}")).await;
        match status {
            200 => body,
            404 => serde_json::json!({ "records": [], "timeline": [] }),
            _ => panic!("GET /api/trace/{message_id}: {status} {body}"),
        }
    }

    /// The audit records naming a patient, newest first, whole (a search by
    /// NHS number, then each message's trace).
    pub async fn audit_of_patient(&self, nhs_number: &str) -> serde_json::Value {
        let found = self
            .ops()
            .get_ok(&format!("/api/trace?nhs_number={nhs_number}"))
            .await;
        let mut records = Vec::new();
        for result in found["results"].as_array().into_iter().flatten() {
            let id = result["message_id"].as_str().expect("a message id");
            for record in self
                .audit_of_message(id)
                .await
                .as_array()
                .into_iter()
                .flatten()
            {
                if record["nhs_number"] == nhs_number
                    && !records.iter().any(|r: &serde_json::Value| {
                        r["message_id"] == record["message_id"]
                            && r["submitted_by"] == record["submitted_by"]
                    })
                {
                    records.push(record.clone());
                }
            }
        }
        serde_json::Value::Array(records)
    }

    /// Waits (up to 30 s) until the hub keeps at least `count` pending dead
    /// letters for `destination` (an exchange id or `ingress`), and returns
    /// them as the dashboard lists them.
    pub async fn dead_letters(&self, destination: &str, count: usize) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let listing = self
                .ops()
                .get_ok(&format!("/api/dead-letters?destination={destination}"))
                .await;
            let letters = listing["dead_letters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if letters.len() >= count {
                return letters;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} dead letter(s) for {destination} not kept within 30 s: {listing}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the hub with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the hub to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("waiting for the hub")
    }

    /// Freezes the hub (SIGSTOP): it reads, answers and settles nothing
    /// until [`HubProcess::resume`], as a hub starved of CPU would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused hub run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} the hub");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The hub's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if self.running() {
            self.kill9();
        }
    }
}

/// A minimal HTTP/1.1 GET (tests only).
pub async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let (status, _, body) = split_response(&response);
    Ok((status, body))
}

/// An HTTP/1.1 response read to its end: status, header lines, body
/// (de-chunked).
pub(crate) fn split_response(response: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (headers, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), dechunk(b)))
        .unwrap_or_default();
    (status, headers, body)
}

/// Undoes chunked transfer encoding, if the body is chunked.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}
