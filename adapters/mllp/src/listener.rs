//! The MLLP server: [`MllpListener`] accepts connections and answers every
//! frame with the acknowledgement its [`Handler`] returns.
//!
//! Per connection, frames are handled one at a time, in the order they
//! arrived, and each acknowledgement is written before the next frame is
//! handed to the handler (so a sender that pipelines gets its ACKs in
//! order). Connections are closed when:
//!
//! - no byte arrives for [`ListenerConfig::idle_timeout`];
//! - a frame has started but is not complete within
//!   [`ListenerConfig::frame_timeout`] (a slow or stalled client), even if
//!   bytes keep trickling in;
//! - an acknowledgement cannot be written within
//!   [`ListenerConfig::write_timeout`];
//! - the peer closes, or an I/O error occurs;
//! - shutdown is requested (see [`MllpListener::serve`]).
//!
//! An **oversized frame** (content longer than
//! [`ListenerConfig::max_frame_len`]) is discarded without an answer, logged
//! at warn level, and the connection stays usable: the decoder resynchronises
//! at the next start block. The sender sees no ACK for that message and its
//! own timeout reports it.
//!
//! **TLS** is optional: [`MllpListener::with_tls`] takes a
//! `tokio_rustls::TlsAcceptor` (whose `ServerConfig` decides, among other
//! things, whether client certificates are required). The handshake must
//! finish within [`ListenerConfig::frame_timeout`].
//!
//! At most [`ListenerConfig::max_connections`] connections are served at
//! once; further clients wait in the kernel's accept backlog until a slot is
//! free. Accepted connections have `TCP_NODELAY` set (the listener is an
//! `lhcie_runtime::net::Listener`), so an acknowledgement is never held
//! back waiting for the sender's delayed ACK. Logs carry peer addresses and
//! connection ids, never content.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
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
    /// A connection on which no byte arrives for this long is closed.
    /// Default 10 minutes (interface engines keep connections open between
    /// messages, and reconnect when one is closed).
    pub idle_timeout: Duration,
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
            idle_timeout: Duration::from_secs(600),
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

/// Handles one received message and returns the content of the
/// acknowledgement frame to write back (without the MLLP block bytes).
///
/// Implemented for every `Fn(Bytes, PeerInfo) -> impl Future<Output = Bytes>`
/// closure that is `Send + Sync + 'static`. The returned acknowledgement
/// must not contain `0x0B` or `0x1C`; if it does the connection is closed.
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`, the content of one frame received from `peer`.
    fn handle(&self, message: Bytes, peer: PeerInfo) -> impl Future<Output = Bytes> + Send;
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

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    PeerClosed,
    PeerClosedInFrame,
    Idle,
    SlowClient,
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
    let mut codec = MllpCodec::with_max_frame_len(config.max_frame_len);
    let mut input = BytesMut::with_capacity(8 * 1024);
    let mut output = BytesMut::new();
    let mut frame_started: Option<Instant> = None;
    loop {
        match codec.decode(&mut input) {
            Ok(Some(message)) => {
                frame_started = None;
                if shutdown.is_cancelled() {
                    return End::Shutdown;
                }
                let ack = handler.handle(message, peer.clone()).await;
                output.clear();
                if let Err(error) = codec.encode(ack, &mut output) {
                    tracing::warn!(
                        %error,
                        remote_addr = %peer.remote_addr,
                        connection_id = peer.connection_id,
                        "MLLP handler returned an acknowledgement that cannot be framed"
                    );
                    return End::BadAck;
                }
                match tokio::time::timeout(config.write_timeout, stream.write_all(&output)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%error, connection_id = peer.connection_id, "MLLP write failed");
                        return End::Io;
                    }
                    Err(_) => return End::WriteTimeout,
                }
                continue;
            }
            Ok(None) => {}
            Err(CodecError::FrameTooLarge { max }) => {
                frame_started = None;
                tracing::warn!(
                    max_frame_len = max,
                    remote_addr = %peer.remote_addr,
                    connection_id = peer.connection_id,
                    "oversized MLLP frame discarded without acknowledgement"
                );
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, connection_id = peer.connection_id, "MLLP decode failed");
                return End::Io;
            }
        }

        // The decoder needs more bytes: wait for them, within the limits.
        let now = Instant::now();
        let mut deadline = now + config.idle_timeout;
        let mut on_timeout = End::Idle;
        if codec.in_frame() {
            let frame_deadline = *frame_started.get_or_insert(now) + config.frame_timeout;
            if frame_deadline <= deadline {
                deadline = frame_deadline;
                on_timeout = End::SlowClient;
            }
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return End::Shutdown,
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut input)) => match read {
                Err(_) => return on_timeout,
                Ok(Ok(0)) => {
                    return if codec.in_frame() { End::PeerClosedInFrame } else { End::PeerClosed };
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::debug!(%error, connection_id = peer.connection_id, "MLLP read failed");
                    return End::Io;
                }
            },
        }
    }
}
