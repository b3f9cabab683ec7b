//! The MLLP server: [`MllpListener`] accepts connections and answers every
//! frame with the acknowledgement its [`Handler`] returns.
//!
//! Per connection, frames are handled one at a time, in the order they
//! arrived, and each acknowledgement is written before the next frame is
//! handed to the handler (so a sender that pipelines gets its ACKs in
//! order). Connections are closed when:
//!
//! - no frame has started within [`ListenerConfig::first_byte_timeout`] of
//!   the connection opening (a client that connects and sends nothing does
//!   not hold a slot for the whole idle timeout);
//! - no byte arrives for [`ListenerConfig::idle_timeout`] between frames;
//! - inside a frame, no byte arrives for [`ListenerConfig::byte_timeout`],
//!   or the frame is not complete within [`ListenerConfig::frame_timeout`]
//!   (a slow or stalled client), even if bytes keep trickling in;
//! - an acknowledgement cannot be written within
//!   [`ListenerConfig::write_timeout`];
//! - a frame is longer than [`ListenerConfig::max_frame_len`] (see below);
//! - the peer closes, or an I/O error occurs;
//! - shutdown is requested (see [`MllpListener::serve`]).
//!
//! An **oversized frame** (content longer than
//! [`ListenerConfig::max_frame_len`]) is not handed to the handler: its
//! first segment (the MSH, at most [`crate::codec::MAX_HEAD_LEN`] bytes) goes
//! to [`Handler::too_large`], whose negative acknowledgement is written at
//! once; the rest of the frame is read and discarded (within the frame and
//! byte timeouts, so the sender's write completes and it reads the answer),
//! then the connection is closed. It is logged at warn level with the limit,
//! never with content.
//!
//! **TLS** is optional: [`MllpListener::with_tls`] takes a
//! `tokio_rustls::TlsAcceptor` (whose `ServerConfig` decides, among other
//! things, whether client certificates are required). The handshake must
//! finish within [`ListenerConfig::frame_timeout`].
//!
//! At most [`ListenerConfig::max_connections`] connections are served at
//! once; further clients wait in the kernel's accept backlog until a slot is
//! free. With [`ListenerConfig::max_connections_per_peer`], a connection
//! from an address (IP, any port) that already has that many is closed as
//! soon as it is accepted, logged at warn level and reported to
//! [`Handler::connection_refused`], so one sending system cannot take every
//! slot. Accepted connections have `TCP_NODELAY` set (the listener is an
//! `lhcie_runtime::net::Listener`), so an acknowledgement is never held
//! back waiting for the sender's delayed ACK. Logs carry peer addresses and
//! connection ids, never content.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lhcie_runtime::net::Listener;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::{CodecError, DEFAULT_MAX_FRAME_LEN, MllpCodec};

/// Settings of an [`MllpListener`]. `Default` gives the values documented on
/// each field.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Most connections served at once. Default 256.
    pub max_connections: usize,
    /// Most connections served at once from one peer address (IP, any
    /// port); one more is closed as soon as it is accepted. Default `None`:
    /// only [`ListenerConfig::max_connections`] applies.
    pub max_connections_per_peer: Option<usize>,
    /// A new connection whose first frame has not started this long after
    /// it opened is closed. Default 10 minutes (the idle timeout).
    pub first_byte_timeout: Duration,
    /// A connection on which no byte arrives for this long between frames
    /// is closed. Default 10 minutes (interface engines keep connections
    /// open between messages, and reconnect when one is closed).
    pub idle_timeout: Duration,
    /// Inside a frame, the longest wait for the next bytes; then the
    /// connection is closed. Default 30 seconds.
    pub byte_timeout: Duration,
    /// A frame must be complete this long after it started, or the
    /// connection is closed (slow-client protection). Default 30 seconds.
    pub frame_timeout: Duration,
    /// Writing one acknowledgement may take at most this long. Default 30
    /// seconds.
    pub write_timeout: Duration,
    /// Largest frame content accepted, in bytes. Default
    /// [`DEFAULT_MAX_FRAME_LEN`] (4 MiB).
    pub max_frame_len: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_peer: None,
            first_byte_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
            byte_timeout: Duration::from_secs(30),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// Who sent a message: handed to the [`Handler`] with each frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The local address the client connected to.
    pub local_addr: SocketAddr,
    /// A number identifying the connection within this listener (starting at
    /// 1), for logs and for telling connections apart.
    pub connection_id: u64,
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Its peer address already had
    /// [`ListenerConfig::max_connections_per_peer`] connections.
    PerPeerLimit,
}

impl Refusal {
    /// A short code for logs and metric labels (`per-peer-limit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerPeerLimit => "per-peer-limit",
        }
    }
}

/// Handles one received message and returns the content of the
/// acknowledgement frame to write back (without the MLLP block bytes).
///
/// Implemented for every `Fn(Bytes, PeerInfo) -> impl Future<Output = Bytes>`
/// closure that is `Send + Sync + 'static` (with the provided
/// [`Handler::too_large`] and [`Handler::connection_refused`]). The
/// returned acknowledgement must not contain `0x0B` or `0x1C`; if it does
/// the connection is closed.
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`, the content of one frame received from `peer`.
    fn handle(&self, message: Bytes, peer: PeerInfo) -> impl Future<Output = Bytes> + Send;

    /// A frame from `peer` was longer than `max_frame_len` bytes; `head` is
    /// its first segment (empty if it could not be kept). Returns the
    /// negative acknowledgement to write before the connection is closed,
    /// or `None` to close it without an answer (the default).
    fn too_large(
        &self,
        head: Bytes,
        max_frame_len: usize,
        peer: PeerInfo,
    ) -> impl Future<Output = Option<Bytes>> + Send {
        let _ = (head, max_frame_len, peer);
        async { None }
    }

    /// A connection from `remote_addr` was closed as soon as it was
    /// accepted, for `reason` (to count it; the listener logs it). The
    /// default does nothing.
    fn connection_refused(&self, remote_addr: SocketAddr, reason: Refusal) {
        let _ = (remote_addr, reason);
    }
}

impl<F, Fut> Handler for F
where
    F: Fn(Bytes, PeerInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send,
{
    fn handle(&self, message: Bytes, peer: PeerInfo) -> impl Future<Output = Bytes> + Send {
        self(message, peer)
    }
}

/// A bound MLLP server socket. [`MllpListener::serve`] runs it.
pub struct MllpListener {
    listener: Listener,
    config: ListenerConfig,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for MllpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MllpListener")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl MllpListener {
    /// Binds to `addr` (for example `127.0.0.1:0` for any free port; read it
    /// back with [`MllpListener::local_addr`]).
    ///
    /// # Errors
    ///
    /// The bind failed (address in use, permission, unresolvable name).
    pub async fn bind(addr: impl ToSocketAddrs, config: ListenerConfig) -> io::Result<Self> {
        Ok(Self {
            listener: lhcie_runtime::net::bind(addr).await?,
            config,
            tls: None,
        })
    }

    /// Wraps an already bound TCP listener (its connections get
    /// `TCP_NODELAY` all the same).
    pub fn from_tcp(listener: TcpListener, config: ListenerConfig) -> Self {
        Self {
            listener: listener.into(),
            config,
            tls: None,
        }
    }

    /// Serves MLLP over TLS: every accepted connection must complete a TLS
    /// handshake with `acceptor` (within [`ListenerConfig::frame_timeout`])
    /// before any frame is read.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The operating system could not report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections and serves them with `handler` until `shutdown`
    /// is cancelled.
    ///
    /// On shutdown the listener stops accepting (the socket is closed),
    /// every connection stops reading, handler calls already under way run
    /// to completion and their acknowledgements are written, then the
    /// connections are closed; `serve` returns when all of that is done.
    /// Frames received but not yet handed to the handler are dropped
    /// unanswered (their senders will resend). Wrap the call in a timeout to
    /// bound how long a slow handler may hold shutdown up.
    pub async fn serve<H: Handler>(self, handler: H, shutdown: CancellationToken) {
        let Self {
            listener,
            config,
            tls,
        } = self;
        let handler = Arc::new(handler);
        let config = Arc::new(config);
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let peers = PeerSlots::new(config.max_connections_per_peer);
        let tasks = TaskTracker::new();
        let mut connection_id = 0u64;
        loop {
            if slots.available_permits() == 0 {
                tracing::debug!(
                    max_connections = config.max_connections,
                    "MLLP connection limit reached; waiting for a free slot"
                );
            }
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // the semaphore is never closed
                },
            };
            let (stream, remote_addr) = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Typically out of file descriptors: back off a little.
                        tracing::warn!(%error, "MLLP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            connection_id += 1;
            let Some(peer_slot) = peers.take(remote_addr.ip()) else {
                refuse(stream, remote_addr, connection_id, &config, &*handler);
                continue;
            };
            let local_addr = match stream.local_addr() {
                Ok(addr) => addr,
                Err(error) => {
                    tracing::debug!(%error, %remote_addr, "MLLP connection lost before setup");
                    continue;
                }
            };
            let peer = PeerInfo {
                remote_addr,
                local_addr,
                connection_id,
            };
            tracing::debug!(%remote_addr, connection_id, "MLLP connection accepted");
            let handler = Arc::clone(&handler);
            let config = Arc::clone(&config);
            let shutdown = shutdown.clone();
            let tls = tls.clone();
            tasks.spawn(async move {
                let end = match tls {
                    None => serve_connection(stream, &peer, &*handler, &config, &shutdown).await,
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(config.frame_timeout, acceptor.accept(stream));
                        tokio::select! {
                            biased;
                            () = shutdown.cancelled() => End::Shutdown,
                            done = handshake => match done {
                                Ok(Ok(stream)) => {
                                    serve_connection(stream, &peer, &*handler, &config, &shutdown)
                                        .await
                                }
                                Ok(Err(error)) => {
                                    tracing::debug!(
                                        %error,
                                        connection_id = peer.connection_id,
                                        "MLLP TLS handshake failed"
                                    );
                                    End::Handshake
                                }
                                Err(_) => End::SlowClient,
                            },
                        }
                    }
                };
                drop(peer_slot);
                drop(permit);
                tracing::debug!(
                    remote_addr = %peer.remote_addr,
                    connection_id = peer.connection_id,
                    reason = end.as_str(),
                    "MLLP connection closed"
                );
            });
        }
        drop(listener);
        tasks.close();
        tasks.wait().await;
    }
}

/// Closes a connection refused at accept (its peer is at its limit),
/// logs it (address and limit only) and tells the handler.
fn refuse<H: Handler>(
    stream: tokio::net::TcpStream,
    remote_addr: SocketAddr,
    connection_id: u64,
    config: &ListenerConfig,
    handler: &H,
) {
    drop(stream);
    let reason = Refusal::PerPeerLimit;
    tracing::warn!(
        %remote_addr,
        connection_id,
        max_connections_per_peer = config.max_connections_per_peer,
        reason = reason.as_str(),
        "MLLP connection refused: this peer address has as many connections as allowed"
    );
    handler.connection_refused(remote_addr, reason);
}

/// Connections open per peer address, against an optional limit.
struct PeerSlots {
    limit: Option<usize>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PeerSlots {
    fn new(limit: Option<usize>) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or `None` if it has as
    /// many as allowed. IPv4-mapped IPv6 addresses count as IPv4.
    fn take(&self, ip: IpAddr) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if self.limit.is_some_and(|limit| *count >= limit.max(1)) {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

/// One connection's place in [`PeerSlots`], given back when dropped.
struct PeerSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    PeerClosed,
    PeerClosedInFrame,
    Idle,
    SlowClient,
    FirstByteTimeout,
    ByteTimeout,
    TooLarge,
    WriteTimeout,
    Io,
    BadAck,
    Shutdown,
    Handshake,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::PeerClosed => "closed by peer",
            End::PeerClosedInFrame => "closed by peer inside a frame",
            End::Idle => "idle timeout",
            End::SlowClient => "frame not completed in time",
            End::FirstByteTimeout => "no frame started in time after connecting",
            End::ByteTimeout => "no byte in time inside a frame",
            End::TooLarge => "frame over the maximum size",
            End::WriteTimeout => "acknowledgement write timed out",
            End::Io => "I/O error",
            End::BadAck => "handler's acknowledgement cannot be framed",
            End::Shutdown => "shutdown",
            End::Handshake => "TLS handshake failed",
        }
    }
}

/// Serves one connection until it ends; generic over the stream so that a
/// TLS stream can be served the same way.
async fn serve_connection<S, H>(
    mut stream: S,
    peer: &PeerInfo,
    handler: &H,
    config: &ListenerConfig,
    shutdown: &CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let end = exchange_frames(&mut stream, peer, handler, config, shutdown).await;
    // Best effort: a TLS close_notify (or a TCP FIN) before the drop.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    end
}

/// Reads frames and writes acknowledgements until the connection must end.
async fn exchange_frames<S, H>(
    stream: &mut S,
    peer: &PeerInfo,
    handler: &H,
    config: &ListenerConfig,
    shutdown: &CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let mut reader = FrameReader::new(config);
    let mut output = BytesMut::new();
    loop {
        match reader.codec.decode(&mut reader.input) {
            Ok(Some(message)) => {
                reader.frame_ended();
                if shutdown.is_cancelled() {
                    return End::Shutdown;
                }
                let ack = handler.handle(message, peer.clone()).await;
                if let Err(end) = write_ack(stream, ack, &mut output, peer, config).await {
                    return end;
                }
                continue;
            }
            Ok(None) => {}
            Err(CodecError::FrameTooLarge { max }) => {
                return too_large(stream, &mut reader, max, peer, handler, config, shutdown).await;
            }
            Err(error) => {
                tracing::debug!(%error, connection_id = peer.connection_id, "MLLP decode failed");
                return End::Io;
            }
        }
        // The decoder needs more bytes: wait for them, within the limits.
        if let Err(end) = reader.read_more(stream, peer, shutdown).await {
            return end;
        }
    }
}

/// The reading side of one connection: the codec, its input, and the
/// deadlines that apply to the next read.
struct FrameReader<'a> {
    codec: MllpCodec,
    input: BytesMut,
    config: &'a ListenerConfig,
    /// Until the first frame starts: the first-byte deadline.
    first_frame_by: Option<Instant>,
    frame_started: Option<Instant>,
}

impl<'a> FrameReader<'a> {
    fn new(config: &'a ListenerConfig) -> Self {
        Self {
            codec: MllpCodec::with_max_frame_len(config.max_frame_len),
            input: BytesMut::with_capacity(8 * 1024),
            config,
            first_frame_by: Some(Instant::now() + config.first_byte_timeout),
            frame_started: None,
        }
    }

    fn frame_ended(&mut self) {
        self.first_frame_by = None;
        self.frame_started = None;
    }

    /// When the next read must have returned, and why the connection
    /// ends if it has not.
    fn deadline(&mut self, now: Instant) -> (Instant, End) {
        if self.codec.in_frame() {
            self.first_frame_by = None;
            let frame_by = *self.frame_started.get_or_insert(now) + self.config.frame_timeout;
            let byte_by = now + self.config.byte_timeout;
            return if frame_by <= byte_by {
                (frame_by, End::SlowClient)
            } else {
                (byte_by, End::ByteTimeout)
            };
        }
        match self.first_frame_by {
            Some(first) => (first, End::FirstByteTimeout),
            None => (now + self.config.idle_timeout, End::Idle),
        }
    }

    /// Reads more bytes into the input, within the deadline; `Err` with
    /// why the connection ends otherwise.
    async fn read_more<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        peer: &PeerInfo,
        shutdown: &CancellationToken,
    ) -> Result<(), End> {
        let (deadline, on_timeout) = self.deadline(Instant::now());
        tokio::select! {
            biased;
            () = shutdown.cancelled() => Err(End::Shutdown),
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut self.input)) => match read {
                Err(_) => Err(on_timeout),
                Ok(Ok(0)) if self.codec.in_frame() => Err(End::PeerClosedInFrame),
                Ok(Ok(0)) => Err(End::PeerClosed),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => {
                    tracing::debug!(%error, connection_id = peer.connection_id, "MLLP read failed");
                    Err(End::Io)
                }
            },
        }
    }
}

/// Frames and writes one acknowledgement within the write timeout.
async fn write_ack<S: AsyncWrite + Unpin>(
    stream: &mut S,
    ack: Bytes,
    output: &mut BytesMut,
    peer: &PeerInfo,
    config: &ListenerConfig,
) -> Result<(), End> {
    output.clear();
    if let Err(error) = MllpCodec::new().encode(ack, output) {
        tracing::warn!(
            %error,
            remote_addr = %peer.remote_addr,
            connection_id = peer.connection_id,
            "MLLP handler returned an acknowledgement that cannot be framed"
        );
        return Err(End::BadAck);
    }
    match tokio::time::timeout(config.write_timeout, stream.write_all(output)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::debug!(%error, connection_id = peer.connection_id, "MLLP write failed");
            Err(End::Io)
        }
        Err(_) => Err(End::WriteTimeout),
    }
}

/// A frame over the maximum: the handler's negative acknowledgement (if
/// any) is written, the rest of the frame read and discarded (so the
/// sender finishes writing and reads the answer), then the connection ends.
async fn too_large<S, H>(
    stream: &mut S,
    reader: &mut FrameReader<'_>,
    max: usize,
    peer: &PeerInfo,
    handler: &H,
    config: &ListenerConfig,
    shutdown: &CancellationToken,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    tracing::warn!(
        max_frame_len = max,
        remote_addr = %peer.remote_addr,
        connection_id = peer.connection_id,
        "MLLP frame over the maximum size: answered (if the handler can) and the connection closed"
    );
    let head = reader.codec.take_oversized_head().unwrap_or_default();
    let Some(nak) = handler.too_large(head, max, peer.clone()).await else {
        return End::TooLarge;
    };
    let mut output = BytesMut::new();
    if let Err(end) = write_ack(stream, nak, &mut output, peer, config).await {
        return end;
    }
    while reader.codec.is_discarding() {
        if reader.read_more(stream, peer, shutdown).await.is_err() {
            break;
        }
        // Discards what came; a frame after it is not answered.
        let _ = reader.codec.decode(&mut reader.input);
    }
    End::TooLarge
}
