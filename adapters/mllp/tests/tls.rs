//! MLLP over TLS on loopback, with a throwaway self-signed certificate.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lhcie_mllp::{ListenerConfig, MllpListener, MllpSender, PeerInfo, SendError, SenderConfig};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// A server acceptor for `localhost` and a client connector trusting it.
fn tls_pair() -> (TlsAcceptor, TlsConnector) {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = issued.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

async fn echo_ack(message: Bytes, _peer: PeerInfo) -> Bytes {
    let mut ack = b"ACK|".to_vec();
    ack.extend_from_slice(&message);
    Bytes::from(ack)
}

fn quick_sender() -> SenderConfig {
    SenderConfig {
        connect_timeout: Duration::from_secs(2),
        connect_attempts: 2,
        backoff_initial: Duration::from_millis(10),
        ack_timeout: Duration::from_secs(1),
        ..SenderConfig::default()
    }
}

async fn tls_listener(
    acceptor: TlsAcceptor,
    config: ListenerConfig,
) -> (std::net::SocketAddr, CancellationToken) {
    let listener = MllpListener::bind("127.0.0.1:0", config)
        .await
        .unwrap()
        .with_tls(acceptor);
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(listener.serve(echo_ack, token.clone()));
    (addr, token)
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

#[tokio::test]
async fn messages_and_acks_travel_over_tls() {
    let (acceptor, connector) = tls_pair();
    let (addr, token) = tls_listener(acceptor, ListenerConfig::default()).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender()).with_tls(connector, localhost());
    for n in 0..3 {
        let message = format!("MSH|^~\\&|TLS|{n}\rPID|1");
        let ack = sender.send(message.as_bytes()).await.unwrap();
        assert_eq!(ack, format!("ACK|{message}").as_bytes());
    }
    token.cancel();
}

#[tokio::test]
async fn reused_tls_connection_closed_by_the_listener_is_replaced() {
    let (acceptor, connector) = tls_pair();
    let config = ListenerConfig {
        idle_timeout: Duration::from_millis(100),
        ..ListenerConfig::default()
    };
    let (addr, _token) = tls_listener(acceptor, config).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender()).with_tls(connector, localhost());
    assert_eq!(sender.send(b"a").await.unwrap(), &b"ACK|a"[..]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sender.send(b"b").await.unwrap(), &b"ACK|b"[..]);
}

#[tokio::test]
async fn wrong_server_name_is_a_tls_error() {
    let (acceptor, connector) = tls_pair();
    let (addr, _token) = tls_listener(acceptor, ListenerConfig::default()).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender())
        .with_tls(connector, ServerName::try_from("example.org").unwrap());
    let error = sender.send(b"MSH|1").await.unwrap_err();
    assert!(matches!(error, SendError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn plain_mllp_to_a_tls_listener_gets_no_ack() {
    let (acceptor, _connector) = tls_pair();
    let (addr, _token) = tls_listener(acceptor, ListenerConfig::default()).await;
    let sender = MllpSender::new(addr.to_string(), quick_sender());
    let error = sender.send(b"MSH|1").await.unwrap_err();
    assert!(
        matches!(
            error,
            SendError::ConnectionClosed | SendError::AckTimeout(_) | SendError::InvalidAck(_)
        ),
        "{error:?}"
    );
}
