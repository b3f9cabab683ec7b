//! Loopback ports for child processes that need a fixed port in their
//! configuration (a registry node's peers, an adapter's listener).
//!
//! A port found by binding port 0 and releasing it is not reserved: until
//! the child binds it, the kernel may hand it to any outgoing connection
//! (another test's broker connection) as its source port, or to another
//! test's "free" port. Both happened in CI ("binding the Raft port …:
//! Address already in use"). So ports come from below the kernel's
//! ephemeral range ([`RANGE`]), where no outgoing connection is ever given
//! one, and each is claimed with an exclusive lock on a file named after it
//! in a shared folder, held until this test process exits, so concurrently
//! running tests (each its own process under nextest) never share one.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::Mutex;

/// Where test ports come from: below Linux's default ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999), above the well-known and
/// commonly configured service ports.
pub const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Lock files of the ports this process holds; released when it exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A loopback port no other test process holds and nothing listens on,
/// reserved for this process until it exits.
pub fn free_port() -> u16 {
    let folder = lock_folder();
    let span = RANGE.end - RANGE.start;
    let offset = start_offset(span);
    for step in 0..span {
        let port = RANGE.start + (offset + step) % span;
        let Some(lock) = claim(&folder, port) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().expect("port locks").push(lock);
            return port;
        }
    }
    panic!("no free loopback port in {RANGE:?}");
}

/// A loopback port on which connections are refused, for as long as the
/// returned socket lives: bound (without address reuse) but not listening,
/// so nothing else can take the port meanwhile.
pub fn closed_port() -> (u16, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("binding a loopback port");
    let port = socket.local_addr().expect("its address").port();
    (port, socket)
}

/// The shared folder of port lock files.
fn lock_folder() -> PathBuf {
    let folder = std::env::temp_dir().join("lhcie-test-ports");
    std::fs::create_dir_all(&folder).expect("the port lock folder");
    folder
}

/// The port's lock, if no other process holds it.
fn claim(folder: &std::path::Path, port: u16) -> Option<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(folder.join(port.to_string()))
        .expect("a port lock file");
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(error)) => panic!("locking a port file: {error}"),
    }
}

/// Where this process starts looking, spread by process id and time so
/// concurrent tests rarely contend for the same locks.
fn start_offset(span: u16) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(std::process::id()).wrapping_mul(2_654_435_761) ^ u64::from(nanos);
    (mixed % u64::from(span)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_repeat_in_a_process() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        assert!(ports.iter().all(|p| RANGE.contains(p)));
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn a_port_locked_by_another_holder_is_not_handed_out() {
        let port = free_port();
        // Another process's view: the lock file is held, so a claim fails.
        assert!(claim(&lock_folder(), port).is_none());
    }

    #[tokio::test]
    async fn a_closed_port_refuses_connections_and_cannot_be_taken() {
        let (port, _held) = closed_port();
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert_eq!(
            refused.expect_err("nothing listens").kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    }
}
