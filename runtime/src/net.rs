//! Listening for TCP connections: every server of the project binds here,
//! and every connection it accepts has `TCP_NODELAY` set.
//!
//! Why: with Nagle's algorithm on the server's side and delayed
//! acknowledgements on the client's, a reply that does not fill a segment
//! waits for the client's ACK of the previous one, about 40 ms on Linux. A
//! registry `DecideBatch` reply of 205 bytes took 0.8 ms, one of 311 bytes
//! 44 ms; with `TCP_NODELAY`, `DecideBatch` of 100 went from 2,090 to 16,240
//! decisions/s (issue 15). Every request/response protocol we serve (gRPC
//! unary calls, HTTP, MLLP acknowledgements) has that shape.
//!
//! tonic's `Server::builder().tcp_nodelay(true)` and hyper's options only
//! apply to listeners the library binds itself; our servers are handed
//! their own listener (`serve_with_incoming_shutdown`, `axum::serve`,
//! accept loops doing TLS with revocation checks), so the option has to be
//! set on each accepted stream. [`Listener`] does that in one place:
//!
//! - [`bind`] a [`Listener`];
//! - hand-written accept loops call [`Listener::accept`];
//! - tonic takes [`Listener::incoming`] (`serve_with_incoming_shutdown`);
//! - `axum::serve` takes the [`Listener`] itself (it implements
//!   `axum::serve::Listener`, with the default feature `full`);
//! - [`nodelay`] is for a stream accepted some other way.
//!
//! A test in this module fails if production code binds a `TcpListener`
//! anywhere but here (see `no_listener_is_bound_outside_this_module`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_stream::Stream;

/// Binds a listener on `addr` (`127.0.0.1:0` picks a free port; read it
/// back with [`Listener::local_addr`]).
///
/// # Errors
///
/// The bind failed (address in use, permission, unresolvable name).
pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Listener> {
    Ok(Listener {
        inner: TcpListener::bind(addr).await?,
    })
}

/// Sets `TCP_NODELAY` on `stream`; a failure (the peer already gone) is
/// logged at debug level and otherwise ignored.
pub fn nodelay(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// A bound TCP listener whose accepted streams all have `TCP_NODELAY` set.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

/// Wraps a listener bound elsewhere (e.g. handed over by a test harness or
/// a service manager); its accepted streams get `TCP_NODELAY` like any.
impl From<TcpListener> for Listener {
    fn from(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl Listener {
    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The operating system could not report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts one connection, with `TCP_NODELAY` set, and its peer's
    /// address.
    ///
    /// # Errors
    ///
    /// The accept failed (typically out of file descriptors: back off and
    /// try again).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        nodelay(&stream);
        Ok((stream, peer))
    }

    /// The accepted connections as a stream, for tonic's
    /// `serve_with_incoming_shutdown`. Accept errors are passed on (tonic
    /// logs them and keeps accepting).
    pub fn incoming(self) -> Incoming {
        Incoming { inner: self.inner }
    }
}

/// [`Listener::incoming`]: accepted connections, with `TCP_NODELAY` set.
#[derive(Debug)]
pub struct Incoming {
    inner: TcpListener,
}

impl Incoming {
    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The operating system could not report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Stream for Incoming {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_accept(cx) {
            Poll::Ready(Ok((stream, _))) => {
                nodelay(&stream);
                Poll::Ready(Some(Ok(stream)))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// For `axum::serve(listener, routes)`: accepts as axum does for a
/// `TcpListener` (retrying after errors), then sets `TCP_NODELAY`.
#[cfg(feature = "full")]
impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, peer) = axum::serve::Listener::accept(&mut self.inner).await;
        nodelay(&stream);
        (stream, peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use tokio_stream::StreamExt;

    use super::*;

    /// The premise: a plainly accepted stream does not have `TCP_NODELAY`
    /// (so the tests below would fail without the helper).
    #[tokio::test]
    async fn a_plainly_accepted_stream_has_no_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(!stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn accept_sets_nodelay() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn incoming_sets_nodelay() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut incoming = listener.incoming();
        let _client = TcpStream::connect(address).await.unwrap();
        let stream = incoming.next().await.unwrap().unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_wrapped_listener_sets_nodelay() {
        let listener = Listener::from(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(stream.nodelay().unwrap());
    }

    /// Through `axum::serve`: a tap outside the helper sees the option
    /// already set on the connection axum then serves.
    #[cfg(feature = "full")]
    #[tokio::test]
    async fn axum_serve_gets_nodelay() {
        use axum::serve::ListenerExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tapped = {
            let seen = seen.clone();
            listener.tap_io(move |stream: &mut TcpStream| {
                seen.lock().unwrap().push(stream.nodelay().unwrap());
            })
        };
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(tapped, app).await });
        let mut client = TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        client.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert_eq!(*seen.lock().unwrap(), vec![true]);
    }

    /// What marks a legitimate bind outside this module: a comment on the
    /// same line or the line above.
    const ALLOW: &str = "nodelay: test-only";

    /// The guard: production code binds TCP listeners only through
    /// [`bind`], so no server can miss `TCP_NODELAY`.
    ///
    /// Scans every `.rs` file of the repository except this one, skipping
    /// what is test code by the project's layout: directories named
    /// `tests`, `benches`, `target`, `integration-tests` and `fuzz`, hidden
    /// directories, and files named `tests.rs` (`#[cfg(test)] mod tests;`).
    /// A line naming `TcpListener::bind` or `TcpListenerStream` anywhere
    /// else (an inline `#[cfg(test)]` module, say, reserving a free port)
    /// needs the comment `// nodelay: test-only` on it or on the line
    /// above.
    #[test]
    fn no_listener_is_bound_outside_this_module() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/net.rs");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(
            files.len() > 50,
            "the scan found only {} files",
            files.len()
        );
        let this = this.canonicalize().unwrap();
        let mut offenders = Vec::new();
        for file in files {
            // A file gone since the listing (an editor's) is not source.
            let (Ok(path), Ok(text)) = (file.canonicalize(), std::fs::read_to_string(&file)) else {
                continue;
            };
            if path == this {
                continue;
            }
            let mut previous = "";
            for (number, line) in text.lines().enumerate() {
                if (line.contains("TcpListener::bind") || line.contains("TcpListenerStream"))
                    && !line.contains(ALLOW)
                    && !previous.contains(ALLOW)
                {
                    offenders.push(format!(
                        "{}:{}: {}",
                        file.strip_prefix(&root).unwrap_or(&file).display(),
                        number + 1,
                        line.trim()
                    ));
                }
                previous = line;
            }
        }
        assert!(
            offenders.is_empty(),
            "bind listeners with lhcie_runtime::net::bind (TCP_NODELAY on every \
             accepted connection), or mark test-only lines `// {ALLOW}`:\n{}",
            offenders.join("\n")
        );
    }

    fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
        const SKIP: [&str; 5] = ["tests", "benches", "target", "integration-tests", "fuzz"];
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIP.contains(&name.as_ref()) {
                    sources(&path, files);
                }
            } else if kind.is_file() && name.ends_with(".rs") && name != "tests.rs" {
                files.push(path);
            }
        }
    }
}
