//! The MLLP client: [`MllpSender`] delivers messages to a receiving system
//! and returns each acknowledgement.
//!
//! One sender keeps one connection and reuses it. Messages are sent one at a
//! time: [`MllpSender::send`] holds the connection (a fair, FIFO lock) from
//! writing the frame until the acknowledgement frame has been read, so
//! concurrent callers are served in the order they called and an
//! acknowledgement always belongs to the message just sent.
//!
//! Connecting is retried with exponential backoff, bounded by
//! [`SenderConfig::connect_attempts`]. After any failure once a frame has
//! been written (timeout waiting for the ACK, connection closed, I/O error)
//! the connection is dropped, because a late acknowledgement would otherwise
//! be taken for the next message's; the next `send` reconnects.
//!
//! **TLS** is optional: [`MllpSender::with_tls`] takes a
//! `tokio_rustls::TlsConnector` and the server name to verify. A failed
//! handshake is [`SendError::Tls`] and is not retried.
//!
//! **Resending.** The sender resends on its own in exactly one case: the
//! connection was a reused one, and it turned out to be closed (end of
//! stream, reset, broken pipe) before any byte of an answer arrived — the
//! receiver dropped an idle connection, or was restarted. Then the message
//! is sent once more on a new connection. Like MLLP in general this is
//! at-least-once: receivers de-duplicate by message control id (MSH-10).
//! Every other failure is returned to the caller, who decides.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::codec::Decoder;

use crate::codec::{self, CodecError, DEFAULT_MAX_FRAME_LEN, MllpCodec};

/// Settings of an [`MllpSender`]. `Default` gives the values documented on
/// each field.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Longest wait for one connection attempt. Default 10 seconds.
    pub connect_timeout: Duration,
    /// Connection attempts per `send` before giving up with
    /// [`SendError::Connect`] (at least one is always made). Default 5.
    pub connect_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    /// Default 200 milliseconds.
    pub backoff_initial: Duration,
    /// Longest wait between attempts. Default 5 seconds.
    pub backoff_max: Duration,
    /// Longest wait to write one frame. Default 30 seconds.
    pub write_timeout: Duration,
    /// Longest wait for the acknowledgement once the frame is written.
    /// Default 30 seconds.
    pub ack_timeout: Duration,
    /// Largest acknowledgement content accepted, in bytes. Default
    /// [`DEFAULT_MAX_FRAME_LEN`] (4 MiB).
    pub max_frame_len: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 5,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(30),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// Why a message could not be delivered or acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message cannot be framed (it contains `0x0B` or `0x1C`). Nothing
    /// was sent.
    #[error("message cannot be sent over MLLP: {0}")]
    InvalidMessage(#[source] CodecError),
    /// No connection to the receiver could be made. Nothing was sent.
    #[error("could not connect to MLLP receiver {target} after {attempts} attempt(s): {source}")]
    Connect {
        /// The receiver's address, as configured.
        target: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: io::Error,
    },
    /// Writing the frame did not finish in time.
    #[error("writing the MLLP frame took longer than {0:?}")]
    WriteTimeout(Duration),
    /// The TLS handshake with the receiver failed (certificate not trusted,
    /// name mismatch, protocol error). Nothing was sent; not retried.
    #[error("TLS handshake with MLLP receiver {target} failed: {source}")]
    Tls {
        /// The receiver's address, as configured.
        target: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The frame was written but no acknowledgement arrived in time. The
    /// message may or may not have been processed.
    #[error("no MLLP acknowledgement within {0:?}")]
    AckTimeout(Duration),
    /// The receiver closed the connection before acknowledging. The message
    /// may or may not have been processed.
    #[error("MLLP receiver closed the connection before acknowledging")]
    ConnectionClosed,
    /// The receiver's answer is not a usable frame (for example too large).
    #[error("invalid MLLP acknowledgement: {0}")]
    InvalidAck(#[source] CodecError),
    /// Another I/O error on the connection.
    #[error("MLLP connection error: {0}")]
    Io(#[source] io::Error),
}

/// An MLLP client for one receiving system. See the
/// [module documentation](self).
pub struct MllpSender {
    target: String,
    config: SenderConfig,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for MllpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MllpSender")
            .field("target", &self.target)
            .field("config", &self.config)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .finish_non_exhaustive()
    }
}

/// A byte stream the sender can talk over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One open connection with its decoder state.
struct Connection {
    stream: Box<dyn Io>,
    codec: MllpCodec,
    input: BytesMut,
    /// Whether a message has already been exchanged on it.
    reused: bool,
}

/// A failed exchange, and whether resending on a new connection is safe.
struct Failure {
    error: SendError,
    stale: bool,
}

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

impl Connection {
    /// Checks, without waiting, that the idle connection is still open and
    /// nothing unexpected arrived on it; discards unsolicited frames.
    fn still_usable(&mut self) -> bool {
        // Poll the stream once with a waker that does nothing: ready data or
        // end of stream is seen, and nothing waits.
        let mut cx = Context::from_waker(Waker::noop());
        let mut chunk = [0u8; 4096];
        loop {
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.stream).poll_read(&mut cx, &mut read) {
                Poll::Pending => return !self.codec.in_frame(),
                Poll::Ready(Err(_)) => return false,
                Poll::Ready(Ok(())) if read.filled().is_empty() => return false,
                Poll::Ready(Ok(())) => {
                    self.input.extend_from_slice(read.filled());
                    loop {
                        match self.codec.decode(&mut self.input) {
                            Ok(Some(_)) => tracing::debug!(
                                "discarding an unsolicited MLLP frame from the receiver"
                            ),
                            Ok(None) => break,
                            Err(_) => return false,
                        }
                    }
                }
            }
        }
    }

    /// Writes one frame and reads one acknowledgement frame.
    async fn exchange(&mut self, frame: &[u8], config: &SenderConfig) -> Result<Bytes, Failure> {
        let reused = self.reused;
        self.reused = true;
        let mut answered = false;
        let fail = |error: SendError, answered: bool| {
            let stale = reused && !answered && matches!(error, SendError::ConnectionClosed);
            Failure { error, stale }
        };
        match tokio::time::timeout(config.write_timeout, self.stream.write_all(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if is_closed(&error) => {
                return Err(fail(SendError::ConnectionClosed, answered));
            }
            Ok(Err(error)) => return Err(fail(SendError::Io(error), answered)),
            Err(_) => {
                return Err(fail(
                    SendError::WriteTimeout(config.write_timeout),
                    answered,
                ));
            }
        }
        let deadline = Instant::now() + config.ack_timeout;
        loop {
            match self.codec.decode(&mut self.input) {
                Ok(Some(ack)) => return Ok(ack),
                Ok(None) => {}
                Err(error) => return Err(fail(SendError::InvalidAck(error), answered)),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.input)).await {
                Err(_) => return Err(fail(SendError::AckTimeout(config.ack_timeout), answered)),
                Ok(Ok(0)) => return Err(fail(SendError::ConnectionClosed, answered)),
                Ok(Ok(_)) => answered = true,
                Ok(Err(error)) if is_closed(&error) => {
                    return Err(fail(SendError::ConnectionClosed, answered));
                }
                Ok(Err(error)) => return Err(fail(SendError::Io(error), answered)),
            }
        }
    }
}

impl MllpSender {
    /// A sender to `target` (`host:port`). Nothing is connected until the
    /// first [`MllpSender::send`]; the name is resolved at each connection.
    pub fn new(target: impl Into<String>, config: SenderConfig) -> Self {
        Self {
            target: target.into(),
            config,
            tls: None,
            connection: Mutex::new(None),
        }
    }

    /// Sends over TLS: each connection is wrapped by `connector`, verifying
    /// the receiver's certificate against `server_name`.
    pub fn with_tls(mut self, connector: TlsConnector, server_name: ServerName<'static>) -> Self {
        self.tls = Some((connector, server_name));
        self
    }

    /// The receiver's address, as configured.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends `message` (the HL7 content, without MLLP block bytes) and
    /// returns the content of the acknowledgement frame. The acknowledgement
    /// is not interpreted: whether it is an `AA`, `AE` or `AR` is the
    /// caller's business.
    ///
    /// # Errors
    ///
    /// See [`SendError`]; its documentation says, per variant, whether
    /// anything may have reached the receiver.
    pub async fn send(&self, message: &[u8]) -> Result<Bytes, SendError> {
        let frame = codec::frame(message).map_err(SendError::InvalidMessage)?;
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.take() {
            Some(mut connection) => {
                if connection.still_usable() {
                    connection
                } else {
                    tracing::debug!(target = %self.target, "MLLP connection found closed; reconnecting");
                    self.connect().await?
                }
            }
            None => self.connect().await?,
        };
        let result = match connection.exchange(&frame, &self.config).await {
            Err(failure) if failure.stale => {
                tracing::debug!(
                    target = %self.target,
                    "reused MLLP connection was closed by the receiver; resending on a new one"
                );
                connection = self.connect().await?;
                connection.exchange(&frame, &self.config).await
            }
            other => other,
        };
        match result {
            Ok(ack) => {
                *slot = Some(connection);
                Ok(ack)
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// Closes the connection, if one is open. The next `send` reconnects.
    pub async fn close(&self) {
        self.connection.lock().await.take();
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let attempts = self.config.connect_attempts.max(1);
        let mut delay = self.config.backoff_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout(
                self.config.connect_timeout,
                TcpStream::connect(&self.target),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connection attempt took longer than {:?}",
                        self.config.connect_timeout
                    ),
                )),
            };
            match result {
                Ok(stream) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "could not set TCP_NODELAY");
                    }
                    let stream: Box<dyn Io> = match &self.tls {
                        None => Box::new(stream),
                        Some((connector, name)) => {
                            let handshake = connector.connect(name.clone(), stream);
                            let result =
                                match tokio::time::timeout(self.config.connect_timeout, handshake)
                                    .await
                                {
                                    Ok(result) => result,
                                    Err(_) => Err(io::Error::new(
                                        io::ErrorKind::TimedOut,
                                        "TLS handshake timed out",
                                    )),
                                };
                            match result {
                                Ok(tls) => Box::new(tls),
                                Err(source) => {
                                    return Err(SendError::Tls {
                                        target: self.target.clone(),
                                        source,
                                    });
                                }
                            }
                        }
                    };
                    tracing::debug!(target = %self.target, attempt, "MLLP sender connected");
                    return Ok(Connection {
                        stream,
                        codec: MllpCodec::with_max_frame_len(self.config.max_frame_len),
                        input: BytesMut::with_capacity(1024),
                        reused: false,
                    });
                }
                Err(source) if attempt >= attempts => {
                    return Err(SendError::Connect {
                        target: self.target.clone(),
                        attempts: attempt,
                        source,
                    });
                }
                Err(error) => {
                    tracing::debug!(
                        target = %self.target,
                        attempt,
                        %error,
                        retry_in = ?delay,
                        "MLLP connection attempt failed"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.backoff_max);
                }
            }
        }
    }
}
