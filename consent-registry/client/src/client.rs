//! A registry client that finds the leader and follows it.
//!
//! Every call but `Status` is served by the leader. A follower answers
//! FAILED_PRECONDITION naming the leader (`lhcie-leader`), or UNAVAILABLE
//! while an election is under way; the client goes to the leader, or tries
//! the next node, until the call's deadline. A call whose outcome is
//! unknown (the connection broke after it was sent) is retried only if it
//! is idempotent: reads, and writes keyed by the caller's own id.
//!
//! With [`RegistryClient::with_tls`], every connection is mutual TLS with a
//! pinned CA, and the server's certificate must name a registry node
//! (`urn:lhcie:registry-node:<id>`, of the configured ids when some are
//! given): anything a node sends, the watch feed's proofs of freshness
//! included, comes from an authenticated node. A `lhcie-leader` redirect
//! is followed only to one of the configured endpoints; any other is
//! refused and the next configured node is tried.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use lhcie_proto::registry::consent_registry_client::ConsentRegistryClient;
use lhcie_tls::Principal;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

/// The metadata entry naming the leader's API address.
pub const LEADER_HEADER: &str = "lhcie-leader";
/// The metadata entry older servers took the caller's name from. Servers
/// now record the caller's certificate identity; the client still sends its
/// `actor` label here, as information only.
pub const ACTOR_HEADER: &str = "lhcie-actor";

/// The largest message the client sends or accepts.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// Whether a call may be repeated when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes that name their record (setting a directive by
    /// id): doing them twice is doing them once.
    Idempotent,
    /// Everything else: repeated only when the node certainly did not act
    /// (it redirected, or there is no leader).
    OnlyIfNotSent,
}

/// A client of the registry cluster.
#[derive(Clone)]
pub struct RegistryClient {
    endpoints: Arc<Vec<String>>,
    actor: String,
    target: Arc<Mutex<Target>>,
    deadline: Duration,
    tls: Option<TlsConnector>,
}

/// Mutual TLS to the registry: files and which nodes are accepted.
#[derive(Debug, Clone)]
pub struct RegistryTls {
    /// The CA the nodes' certificates chain to (pinned).
    pub ca: std::path::PathBuf,
    /// This client's certificate (`urn:lhcie:service:<name>`).
    pub cert: std::path::PathBuf,
    /// Its key.
    pub key: std::path::PathBuf,
    /// The registry node ids accepted; empty: any registry node of the CA.
    pub nodes: Vec<u64>,
}

/// Connects over TCP and then TLS, checking the server's principal (a
/// tonic connector: `Endpoint::connect_with_connector_lazy`, with an
/// `http://` endpoint).
#[derive(Clone)]
pub struct TlsConnector {
    connector: tokio_rustls::TlsConnector,
}

impl TlsConnector {
    /// A connector with this rustls configuration (ALPN `h2` set), e.g.
    /// from `lhcie_tls::principal_verifier`.
    pub fn new(config: rustls::ClientConfig) -> Self {
        Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector { .. }")
    }
}

type Connected = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl tower::Service<Uri> for TlsConnector {
    type Response = Connected;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Connected, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        Box::pin(async move {
            let invalid =
                |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let host = uri
                .host()
                .ok_or_else(|| invalid(format!("no host in {uri}")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri
                .port_u16()
                .ok_or_else(|| invalid(format!("no port in {uri}")))?;
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| invalid(e.to_string()))?;
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

struct Target {
    address: String,
    channel: Channel,
    next_endpoint: usize,
}

fn channel(address: &str, tls: Option<&TlsConnector>) -> Result<Channel, tonic::Status> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| tonic::Status::invalid_argument(format!("registry address {address}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(match tls {
        // The scheme stays http: the connector makes the TLS connection.
        Some(tls) => endpoint.connect_with_connector_lazy(tls.clone()),
        None => endpoint.connect_lazy(),
    })
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("endpoints", &self.endpoints)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client of the nodes at `endpoints` (`host:port`), acting as
    /// `actor` (recorded on every change it makes).
    pub fn new(endpoints: Vec<String>, actor: impl Into<String>) -> Result<Self, tonic::Status> {
        let first = endpoints
            .first()
            .ok_or_else(|| tonic::Status::invalid_argument("name at least one registry node"))?
            .clone();
        Ok(Self {
            target: Arc::new(Mutex::new(Target {
                channel: channel(&first, None)?,
                address: first,
                next_endpoint: 1,
            })),
            endpoints: Arc::new(endpoints),
            actor: actor.into(),
            deadline: Duration::from_secs(15),
            tls: None,
        })
    }

    /// The same client, connecting with mutual TLS (see the module docs).
    pub fn with_tls(mut self, tls: &RegistryTls) -> Result<Self, tonic::Status> {
        let nodes = tls.nodes.clone();
        let accept: lhcie_tls::principal_verifier::AcceptPrincipal =
            Arc::new(move |principal: &Principal| match principal {
                Principal::RegistryNode(id) => nodes.is_empty() || nodes.contains(id),
                _ => false,
            });
        let config =
            lhcie_tls::principal_verifier::client_config(&tls.ca, &tls.cert, &tls.key, accept)
                .map_err(|e| tonic::Status::invalid_argument(format!("registry TLS: {e}")))?;
        let connector = TlsConnector::new(config);
        {
            let mut target = self.target.lock().expect("target lock");
            target.channel = channel(&target.address, Some(&connector))?;
        }
        self.tls = Some(connector);
        Ok(self)
    }

    /// How long a call keeps looking for the leader (15 s by default).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The address calls currently go to.
    pub fn current_target(&self) -> String {
        self.target.lock().expect("target lock").address.clone()
    }

    /// A request carrying the caller's name.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = self.actor.parse() {
            request.metadata_mut().insert(ACTOR_HEADER, value);
        }
        request
    }

    fn current(&self) -> (String, ConsentRegistryClient<Channel>) {
        let target = self.target.lock().expect("target lock");
        let client = ConsentRegistryClient::new(target.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        (target.address.clone(), client)
    }

    /// Goes to the leader a node named, if it is a configured endpoint.
    fn go_to(&self, address: &str) -> Result<(), tonic::Status> {
        if !self.endpoints.iter().any(|e| e == address) {
            tracing::warn!(
                redirect = address,
                "a registry node redirected to an address that is not a configured endpoint; refused"
            );
            return Err(tonic::Status::permission_denied(format!(
                "redirected to {address}, which is not a configured registry endpoint"
            )));
        }
        let mut target = self.target.lock().expect("target lock");
        if target.address != address {
            target.channel = channel(address, self.tls.as_ref())?;
            target.address = address.to_owned();
        }
        Ok(())
    }

    fn next_node(&self, failed: &str) -> Result<(), tonic::Status> {
        let mut target = self.target.lock().expect("target lock");
        if target.address != failed {
            return Ok(()); // someone moved on already
        }
        let next = self.endpoints[target.next_endpoint % self.endpoints.len()].clone();
        target.next_endpoint += 1;
        target.channel = channel(&next, self.tls.as_ref())?;
        target.address = next;
        Ok(())
    }

    /// After a call or stream failed outside [`RegistryClient::call`]: go
    /// to the leader it names, or else to the next node.
    pub fn after_failure(&self, status: Option<&tonic::Status>) {
        let address = self.current_target();
        let moved = match status.map(classify) {
            Some(Next::Leader(leader)) => self.go_to(&leader).or_else(|_| self.next_node(&address)),
            _ => self.next_node(&address),
        };
        if let Err(error) = moved {
            tracing::warn!(%error, "cannot move to another registry node");
        }
    }

    /// Sends one message to the leader (see [`RegistryClient::call`]):
    /// `call` is given a client and the message, with the actor attached,
    /// and makes one attempt.
    pub async fn unary<M, T, F, Fut>(
        &self,
        retry: Retry,
        message: &M,
        call: F,
    ) -> Result<T, tonic::Status>
    where
        M: Clone,
        F: Fn(ConsentRegistryClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call(retry, |client| call(client, self.request(message.clone())))
            .await
    }

    /// Calls the leader: `call` is given a client and makes one attempt; it
    /// may be called again, on another node.
    pub async fn call<T, F, Fut>(&self, retry: Retry, call: F) -> Result<T, tonic::Status>
    where
        F: Fn(ConsentRegistryClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let (address, client) = self.current();
            let status = match call(client).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            if started.elapsed() >= self.deadline {
                return Err(status);
            }
            match classify(&status) {
                Next::Leader(leader) => {
                    if self.go_to(&leader).is_ok() {
                        continue;
                    }
                    // Not a configured endpoint: not followed.
                    self.next_node(&address)?
                }
                Next::AnotherNode => self.next_node(&address)?,
                Next::AnotherNodeIfIdempotent if retry == Retry::Idempotent => {
                    self.next_node(&address)?
                }
                Next::AnotherNodeIfIdempotent | Next::GiveUp => return Err(status),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

enum Next {
    Leader(String),
    AnotherNode,
    AnotherNodeIfIdempotent,
    GiveUp,
}

fn classify(status: &tonic::Status) -> Next {
    let leader = status
        .metadata()
        .get(LEADER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (status.code(), leader) {
        (tonic::Code::FailedPrecondition, Some(leader)) => Next::Leader(leader),
        // No leader yet, or a node shutting down: it did not act.
        (tonic::Code::Unavailable, _) if is_registry_refusal(status) => Next::AnotherNode,
        // The connection failed: before sending (safe) or after (unknown).
        (tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled, _) => {
            Next::AnotherNodeIfIdempotent
        }
        _ => Next::GiveUp,
    }
}

/// Whether an UNAVAILABLE came from a registry node that did not act
/// (rather than from the transport).
fn is_registry_refusal(status: &tonic::Status) -> bool {
    let message = status.message();
    message.starts_with("no leader is known yet")
        || message.starts_with("the registry node is shutting down")
}
