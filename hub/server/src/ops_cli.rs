//! `hub dead-letters …`: the dead-letter list, replay and discard from a
//! terminal, and `hub audit <message-id>`: the hub's audit records of one
//! message as JSON (what `registry explain` reads), through the dashboard's
//! API as a dashboard user (HTTP Basic
//! with the same users file, so the same roles apply and every replay is
//! recorded under the user's name). It speaks plain HTTP to the dashboard
//! on a management address; beyond one, put TLS in front of both.

use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

/// Where the dashboard is and who is asking.
#[derive(Debug, Args)]
pub struct Connection {
    /// The dashboard's address.
    #[arg(
        long,
        env = "LHCIE_DASHBOARD_URL",
        default_value = "http://127.0.0.1:9465"
    )]
    url: String,
    /// The dashboard user.
    #[arg(long, env = "LHCIE_OPS_USER")]
    user: String,
    /// A file holding the user's password (first line).
    #[arg(long, env = "LHCIE_OPS_PASSWORD_FILE")]
    password_file: PathBuf,
}

/// Which dead letters.
#[derive(Debug, Args)]
pub struct Selection {
    /// Only this destination (an exchange id, or `ingress`).
    #[arg(long)]
    destination: Option<String>,
    /// Only this reason (e.g. no-agreement, delivery_limit).
    #[arg(long)]
    reason: Option<String>,
    /// Only this category.
    #[arg(long)]
    category: Option<String>,
}

impl Selection {
    fn is_empty(&self) -> bool {
        self.destination.is_none() && self.reason.is_none() && self.category.is_none()
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 3] {
        [
            ("destination", &self.destination),
            ("reason", &self.reason),
            ("category", &self.category),
        ]
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters (pending unless --state says otherwise).
    List {
        /// Which.
        #[command(flatten)]
        selection: Selection,
        /// pending, replayed, discarded or all.
        #[arg(long, default_value = "pending")]
        state: String,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Replay dead letters: these ids, or every pending one matching the
    /// filter. Each is decided again with the current policy.
    Replay {
        /// Dead-letter ids.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Or every pending one matching.
        #[command(flatten)]
        selection: Selection,
        /// Decide, but publish and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Dead letters per second (capped by the hub's setting).
        #[arg(long)]
        rate: Option<u32>,
    },
    /// Discard pending dead letters.
    Discard {
        /// Dead-letter ids.
        #[arg(long = "id", required = true)]
        ids: Vec<String>,
    },
}

/// Prints the hub's audit records of one message as JSON (the dashboard
/// records the look in its access log, with the patient's NHS number).
pub async fn audit(connection: Connection, message_id: &str) -> anyhow::Result<()> {
    let client = Client::new(&connection)?;
    let answer = client
        .get(&format!("/api/trace/{}", path_segment(message_id)))
        .await?;
    println!("{}", serde_json::to_string_pretty(&answer["records"])?);
    Ok(())
}

/// Runs one command; fails if the hub refused it or any replay failed.
pub async fn run(connection: Connection, command: DeadLetterCommand) -> anyhow::Result<()> {
    let client = Client::new(&connection)?;
    match command {
        DeadLetterCommand::List {
            selection,
            state,
            limit,
        } => {
            let mut query = format!("state={state}&limit={limit}");
            for (key, value) in selection.fields() {
                if let Some(value) = value {
                    query.push_str(&format!("&{key}={value}"));
                }
            }
            let answer = client.get(&format!("/api/dead-letters?{query}")).await?;
            let letters = answer["dead_letters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            println!(
                "{:>8}  {:<24}  {:<20}  {:<22}  {:<9}  message id",
                "id", "destination", "reason", "category", "state"
            );
            for letter in &letters {
                let unverified = if letter["identity_verified"] == false {
                    "  (identity unverified: cannot be replayed)"
                } else {
                    ""
                };
                println!(
                    "{:>8}  {:<24}  {:<20}  {:<22}  {:<9}  {}{unverified}",
                    text(&letter["id"]),
                    text(&letter["destination"]),
                    text(&letter["reason"]),
                    text(&letter["category"]),
                    text(&letter["state"]),
                    text(&letter["message_id"]),
                );
            }
            println!("{} dead letter(s)", letters.len());
            Ok(())
        }
        DeadLetterCommand::Replay {
            ids,
            selection,
            dry_run,
            rate,
        } => {
            let mut request = if ids.is_empty() {
                if selection.is_empty() {
                    bail!("give --id, or a filter (--destination, --reason, --category)");
                }
                let filter: serde_json::Map<String, Value> = selection
                    .fields()
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), json!(value)))
                    .collect();
                json!({ "filter": filter })
            } else {
                json!({ "ids": ids })
            };
            request["dry_run"] = json!(dry_run);
            if let Some(rate) = rate {
                request["rate_per_second"] = json!(rate);
            }
            let answer = client.post("/api/dead-letters/replay", &request).await?;
            let results = answer["results"].as_array().cloned().unwrap_or_default();
            let mut failed = 0;
            for result in &results {
                let outcome = text(&result["outcome"]);
                if outcome == "failed" {
                    failed += 1;
                }
                println!(
                    "{:>8}  {:<14}  {}  {}",
                    text(&result["id"]),
                    outcome,
                    text(&result["message_id"]),
                    text(&result["detail"]),
                );
            }
            println!(
                "{} dead letter(s){}",
                results.len(),
                if dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
            if failed > 0 {
                bail!("{failed} replay(s) failed and stay pending");
            }
            Ok(())
        }
        DeadLetterCommand::Discard { ids } => {
            let answer = client
                .post("/api/dead-letters/discard", &json!({ "ids": ids }))
                .await?;
            println!("{} discarded", answer["discarded"]);
            Ok(())
        }
    }
}

/// `text` percent-encoded for one path segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

struct Client {
    base: String,
    authorization: String,
}

impl Client {
    fn new(connection: &Connection) -> anyhow::Result<Self> {
        let password = std::fs::read_to_string(&connection.password_file)
            .with_context(|| format!("reading {}", connection.password_file.display()))?;
        let password = password.lines().next().unwrap_or_default();
        Ok(Self {
            base: connection.url.trim_end_matches('/').to_owned(),
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{password}", connection.user))
            ),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("POST", path, Some(body)).await
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url: hyper::Uri = format!("{}{path}", self.base)
            .parse()
            .context("the dashboard URL")?;
        if url.scheme_str() != Some("http") {
            bail!(
                "the CLI speaks plain HTTP to the dashboard on a management address; give http://host:port"
            );
        }
        let host = url.host().context("the dashboard URL has no host")?;
        let port = url.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("connecting to the dashboard at {}", self.base))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url.path_and_query().map_or("/", |p| p.as_str()))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::AUTHORIZATION, &self.authorization);
        let payload = match body {
            Some(body) => {
                request = request.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body)?)
            }
            None => Bytes::new(),
        };
        let response = sender
            .send_request(request.body(Full::new(payload))?)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "the hub answered {status}: {}",
                value["error"].as_str().unwrap_or("(no detail)")
            );
        }
        Ok(value)
    }
}
