//! Listener and sender over loopback: concurrency, ordering, timeouts,
//! per-peer limits, first-byte and between-byte timeouts, oversize
//! handling (answered, then closed), shutdown, reconnection and
//! acknowledgement timeouts.
//! Everything binds 127.0.0.1 port 0 and uses short timeouts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lhcie_mllp::{
    Handler, ListenerConfig, MllpListener, MllpSender, PeerInfo, Refusal, SendError, SenderConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LOOPBACK: &str = "127.0.0.1:0";

/// An acknowledgement naming the message it answers.
async fn echo_ack(message: Bytes, _peer: PeerInfo) -> Bytes {
    let mut ack = b"ACK|".to_vec();
    ack.extend_from_slice(&message);
    Bytes::from(ack)
}

/// Starts a listener on `addr` with `handler`; returns its address, the
/// shutdown token and the serving task.
async fn start<H: lhcie_mllp::Handler>(
    addr: &str,
    config: ListenerConfig,
    handler: H,
) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
    let listener = MllpListener::bind(addr, config).await.unwrap();
    let local = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let task = tokio::spawn(listener.serve(handler, token.clone()));
    (local, token, task)
}

fn quick_sender() -> SenderConfig {
    SenderConfig {
        connect_timeout: Duration::from_secs(1),
        connect_attempts: 3,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        write_timeout: Duration::from_secs(1),
        ack_timeout: Duration::from_secs(2),
        ..SenderConfig::default()
    }
}

/// Reads until end of stream (or error), failing if that takes longer than
/// `within`; returns the bytes read and how long it took.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let result = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "the server did not close the connection within {within:?}"
    );
    (got, started.elapsed())
}

/// Reads exactly `len` bytes within a second.
async fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buf))
        .await
        .expect("no answer in time")
        .expect("read failed");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_connections_get_their_own_acks() {
    let connections = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::clone(&connections);
    let handler = move |message: Bytes, peer: PeerInfo| {
        seen.lock().unwrap().insert(peer.connection_id);
        async move {
            // Interleave the connections.
            tokio::task::yield_now().await;
            echo_ack(message, peer).await
        }
    };
    let (addr, token, task) = start(LOOPBACK, ListenerConfig::default(), handler).await;

    let mut clients = Vec::new();
    for client in 0..50 {
        clients.push(tokio::spawn(async move {
            let sender = MllpSender::new(addr.to_string(), quick_sender());
            for n in 0..5 {
                let message = format!("MSH|^~\\&|C{client}|N{n}\rPID|1\n");
                let ack = sender.send(message.as_bytes()).await.unwrap();
                assert_eq!(ack, format!("ACK|{message}").as_bytes());
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    // One reused connection per sender.
    assert_eq!(connections.lock().unwrap().len(), 50);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn pipelined_frames_are_answered_in_order_one_at_a_time() {
    let active = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&active);
    let handler = move |message: Bytes, peer: PeerInfo| {
        let counter = Arc::clone(&counter);
        async move {
            *counter.lock().unwrap() += 1;
            assert_eq!(*counter.lock().unwrap(), 1, "handler called concurrently");
            // Later messages finish sooner if run concurrently.
            let delay = 30 - 10 * u64::from(message[0] - b'0');
            tokio::time::sleep(Duration::from_millis(delay)).await;
            *counter.lock().unwrap() -= 1;
            echo_ack(message, peer).await
        }
    };
    let (addr, _token, _task) = start(LOOPBACK, ListenerConfig::default(), handler).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    // Three frames in one write, with stray CR/LF and a missing trailer.
    client
        .write_all(b"\r\n\x0b0\x1c\x0d\x0b1\x1c\n\x0b2\x1c\x0d")
        .await
        .unwrap();
    let answers = read_exact(&mut client, 3 * 8).await;
    assert_eq!(
        answers,
        b"\x0bACK|0\x1c\x0d\x0bACK|1\x1c\x0d\x0bACK|2\x1c\x0d".to_vec()
    );
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_idle_timeout() {
    let config = ListenerConfig {
        idle_timeout: Duration::from_millis(300),
        frame_timeout: Duration::from_secs(10),
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;

    let mut client = TcpStream::connect(addr).await.unwrap();
    // Activity keeps it open past the timeout...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(b"\x0bping\x1c\x0d").await.unwrap();
        assert_eq!(read_exact(&mut client, 11).await, b"\x0bACK|ping\x1c\x0d");
    }
    // ...silence closes it.
    let started = Instant::now();
    let (rest, _) = read_to_close(&mut client, Duration::from_secs(3)).await;
    assert!(rest.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
}

#[tokio::test]
async fn slow_client_is_closed_when_its_frame_is_not_completed_in_time() {
    let config = ListenerConfig {
        idle_timeout: Duration::from_secs(10),
        frame_timeout: Duration::from_millis(300),
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // A frame starts, then one byte every 50 ms: never idle, never complete.
    let trickle = tokio::spawn(async move {
        writer.write_all(b"\x0bMSH|").await.unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 64];
        // Anything but end of stream (or a reset) means an answer to an
        // incomplete frame.
        let read = reader.read(&mut buf).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the server answered an incomplete frame"
        );
    })
    .await;
    assert!(closed.is_ok(), "the slow client was not disconnected");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    trickle.abort();
}

#[tokio::test]
async fn oversized_frame_without_an_answer_from_the_handler_closes_the_connection() {
    let config = ListenerConfig {
        max_frame_len: 16,
        ..ListenerConfig::default()
    };
    // A closure handler has no answer for an oversized frame.
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"\x0bMSH|").await.unwrap();
    client.write_all(&[b'x'; 100]).await.unwrap();
    client
        .write_all(b"\x1c\x0d\x0bsmall\x1c\x0d")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut client, Duration::from_secs(3)).await;
    assert!(answer.is_empty(), "answered: {answer:?}");
}

/// Echoes frames; answers an oversized one with `NAK|<head>|<limit>`, and
/// counts refused connections.
#[derive(Default, Clone)]
struct Nak {
    refused: Arc<Mutex<Vec<(SocketAddr, Refusal)>>>,
}

impl Handler for Nak {
    async fn handle(&self, message: Bytes, peer: PeerInfo) -> Bytes {
        echo_ack(message, peer).await
    }

    async fn too_large(&self, head: Bytes, max_frame_len: usize, _peer: PeerInfo) -> Option<Bytes> {
        let mut nak = b"NAK|".to_vec();
        nak.extend_from_slice(&head);
        nak.extend_from_slice(format!("|{max_frame_len}").as_bytes());
        Some(Bytes::from(nak))
    }

    fn connection_refused(&self, remote_addr: SocketAddr, reason: Refusal) {
        self.refused.lock().unwrap().push((remote_addr, reason));
    }
}

#[tokio::test]
async fn oversized_frame_is_answered_from_its_msh_then_the_connection_closed() {
    let config = ListenerConfig {
        max_frame_len: 1024,
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, Nak::default()).await;
    // Well over the limit, written whole before reading (as senders do):
    // the rest of the frame is read and discarded, so the write completes.
    let mut frame = b"\x0bMSH|^~\\&|PAS|RYJ\rOBX|1|ED|".to_vec();
    frame.extend(std::iter::repeat_n(b'A', 4 * 1024 * 1024));
    frame.extend_from_slice(b"\x1c\x0d\x0bnext\x1c\x0d");
    let mut client = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), client.write_all(&frame))
        .await
        .expect("the oversized frame was not read")
        .unwrap();
    let (answer, _) = read_to_close(&mut client, Duration::from_secs(3)).await;
    // The answer names the MSH and the limit; the frame after it is not
    // answered: the connection is closed.
    assert_eq!(answer, b"\x0bNAK|MSH|^~\\&|PAS|RYJ|1024\x1c\x0d");

    // A frame complete in one read is answered the same way.
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut small_limit = b"\x0bMSH|^~\\&|X\r".to_vec();
    small_limit.extend(std::iter::repeat_n(b'B', 2000));
    small_limit.extend_from_slice(b"\x1c\x0d");
    client.write_all(&small_limit).await.unwrap();
    let (answer, _) = read_to_close(&mut client, Duration::from_secs(3)).await;
    assert_eq!(answer, b"\x0bNAK|MSH|^~\\&|X|1024\x1c\x0d");
}

/// A connection to `addr` from the local address `from` (any port).
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends `text` in a frame and expects it echoed.
async fn round_trip(stream: &mut TcpStream, text: &str) {
    stream
        .write_all(format!("\x0b{text}\x1c\x0d").as_bytes())
        .await
        .unwrap();
    let expected = format!("\x0bACK|{text}\x1c\x0d");
    assert_eq!(
        read_exact(stream, expected.len()).await,
        expected.as_bytes()
    );
}

#[tokio::test]
async fn per_peer_limit_refuses_one_more_from_that_address_and_leaves_room_for_others() {
    let config = ListenerConfig {
        max_connections: 4,
        max_connections_per_peer: Some(2),
        ..ListenerConfig::default()
    };
    let nak = Nak::default();
    let (addr, _token, _task) = start(LOOPBACK, config, nak.clone()).await;
    let mut first = connect_from("127.0.0.1", addr).await;
    let mut second = connect_from("127.0.0.1", addr).await;
    round_trip(&mut first, "one").await;
    round_trip(&mut second, "two").await;

    // A third from the same address is closed at once, unanswered.
    let mut third = connect_from("127.0.0.1", addr).await;
    let _ = third.write_all(b"\x0bthree\x1c\x0d").await;
    let (answer, waited) = read_to_close(&mut third, Duration::from_secs(2)).await;
    assert!(answer.is_empty(), "answered: {answer:?}");
    assert!(waited < Duration::from_secs(1), "closed after {waited:?}");
    let refused = nak.refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0.ip().to_string(), "127.0.0.1");
    assert_eq!(refused[0].1, Refusal::PerPeerLimit);

    // Another sending system still gets in.
    let mut other = connect_from("127.0.0.2", addr).await;
    round_trip(&mut other, "other").await;

    // A slot given back is usable by the first address again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = connect_from("127.0.0.1", addr).await;
        if again.write_all(b"\x0bagain\x1c\x0d").await.is_ok() {
            let mut buf = [0u8; 12];
            let read =
                tokio::time::timeout(Duration::from_secs(1), again.read_exact(&mut buf)).await;
            if matches!(read, Ok(Ok(_))) {
                assert_eq!(&buf, b"\x0bACK|again\x1c\x0d");
                break;
            }
        }
        assert!(Instant::now() < deadline, "the slot was not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    round_trip(&mut second, "still").await;
}

#[tokio::test]
async fn a_connection_that_starts_no_frame_is_closed_after_the_first_byte_timeout() {
    let config = ListenerConfig {
        first_byte_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(10),
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;
    // Connects and sends nothing (stray bytes outside a frame do not count).
    let mut silent = TcpStream::connect(addr).await.unwrap();
    silent.write_all(b"\r\n").await.unwrap();
    let (rest, waited) = read_to_close(&mut silent, Duration::from_secs(3)).await;
    assert!(rest.is_empty());
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );

    // Once a frame came, the idle timeout applies between frames.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut busy, "first").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    round_trip(&mut busy, "later").await;
}

#[tokio::test]
async fn a_pause_inside_a_frame_longer_than_the_byte_timeout_closes_the_connection() {
    let config = ListenerConfig {
        byte_timeout: Duration::from_millis(300),
        frame_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;
    // Short pauses inside a frame are fine...
    let mut client = TcpStream::connect(addr).await.unwrap();
    for piece in [&b"\x0bMS"[..], b"H|", b"x\x1c\x0d"] {
        client.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read_exact(&mut client, 12).await, b"\x0bACK|MSH|x\x1c\x0d");
    // ...a long one ends the connection, unanswered.
    client.write_all(b"\x0bMSH|").await.unwrap();
    let (rest, waited) = read_to_close(&mut client, Duration::from_secs(3)).await;
    assert!(rest.is_empty());
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "closed too late: {waited:?}"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_handler_call_finish() {
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
    let handler = move |message: Bytes, peer: PeerInfo| {
        if let Some(tx) = entered_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            echo_ack(message, peer).await
        }
    };
    let (addr, token, task) = start(LOOPBACK, ListenerConfig::default(), handler).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"\x0bslow\x1c\x0d").await.unwrap();
    entered_rx.await.unwrap();
    token.cancel();
    // The call under way completes and is answered, then the connection closes.
    let (answer, _) = read_to_close(&mut client, Duration::from_secs(3)).await;
    assert_eq!(answer, b"\x0bACK|slow\x1c\x0d");
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
    // No longer accepting.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn connection_limit_makes_extra_clients_wait() {
    let config = ListenerConfig {
        max_connections: 1,
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(b"\x0bone\x1c\x0d").await.unwrap();
    assert_eq!(read_exact(&mut first, 10).await, b"\x0bACK|one\x1c\x0d");

    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(b"\x0btwo\x1c\x0d").await.unwrap();
    let mut buf = [0u8; 10];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut buf)).await;
    assert!(early.is_err(), "second connection served beyond the limit");
    drop(first);
    assert_eq!(read_exact(&mut second, 10).await, b"\x0bACK|two\x1c\x0d");
}

#[tokio::test]
async fn sender_reconnects_after_the_listener_restarts_on_the_same_port() {
    let ack = |tag: &'static str| {
        move |_message: Bytes, _peer: PeerInfo| async move { Bytes::from_static(tag.as_bytes()) }
    };
    let (addr, token, task) = start(LOOPBACK, ListenerConfig::default(), ack("first")).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender());
    assert_eq!(sender.send(b"MSH|1").await.unwrap(), &b"first"[..]);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();

    // While it is down: a bounded number of attempts, then a typed error.
    let started = Instant::now();
    match sender.send(b"MSH|2").await {
        Err(SendError::Connect { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    let (again, token, task) =
        start(&addr.to_string(), ListenerConfig::default(), ack("second")).await;
    assert_eq!(again, addr);
    assert_eq!(sender.send(b"MSH|3").await.unwrap(), &b"second"[..]);
    assert_eq!(sender.send(b"MSH|4").await.unwrap(), &b"second"[..]);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn sender_resends_once_when_its_idle_connection_was_dropped() {
    // The listener closes idle connections quickly; the sender's next
    // message must still get through on a new connection.
    let config = ListenerConfig {
        idle_timeout: Duration::from_millis(100),
        ..ListenerConfig::default()
    };
    let (addr, _token, _task) = start(LOOPBACK, config, echo_ack).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender());
    assert_eq!(sender.send(b"a").await.unwrap(), &b"ACK|a"[..]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sender.send(b"b").await.unwrap(), &b"ACK|b"[..]);
}

#[tokio::test]
async fn ack_timeout_when_the_receiver_never_answers() {
    // A receiver that reads and never answers.
    let silent = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0u32));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = silent.accept().await.unwrap();
            *count.lock().unwrap() += 1;
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    let config = SenderConfig {
        ack_timeout: Duration::from_millis(200),
        ..quick_sender()
    };
    let sender = MllpSender::new(addr.to_string(), config);
    let started = Instant::now();
    let error = sender.send(b"MSH|1").await.unwrap_err();
    assert!(matches!(error, SendError::AckTimeout(_)), "{error:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(1));
    // The connection is dropped after a timeout (a late ACK must not be
    // taken for the next message's): the next send connects anew.
    let error = sender.send(b"MSH|2").await.unwrap_err();
    assert!(matches!(error, SendError::AckTimeout(_)), "{error:?}");
    assert_eq!(*accepted.lock().unwrap(), 2);
}

#[tokio::test]
async fn connection_closed_without_ack_is_a_typed_error() {
    // A receiver that reads one frame and hangs up without answering.
    let rude = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = rude.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = rude.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
        }
    });
    let sender = MllpSender::new(addr.to_string(), quick_sender());
    let error = sender.send(b"MSH|1").await.unwrap_err();
    assert!(matches!(error, SendError::ConnectionClosed), "{error:?}");
}

#[tokio::test]
async fn sender_refuses_content_with_block_bytes() {
    let sender = MllpSender::new("127.0.0.1:9", quick_sender());
    let error = sender.send(b"MSH|\x1c").await.unwrap_err();
    assert!(matches!(error, SendError::InvalidMessage(_)), "{error:?}");
}
