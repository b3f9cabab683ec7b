//! MLLP over TLS from the adapter's file: the listener's
//! [`TlsAcceptor`] (`[hl7v2.tls]`, optionally requiring client
//! certificates) and the sender's [`TlsConnector`] (`[hl7v2.deliver_tls]`,
//! optionally presenting a client certificate). rustls with the ring
//! provider only.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lhcie_config::{MllpDeliverTls, MllpListenTls};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading the private key {}", path.display()))
}

fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .with_context(|| format!("adding a CA certificate from {}", path.display()))?;
    }
    Ok(roots)
}

/// The listener's TLS: its certificate and key; with `client_ca`, every
/// client must present a certificate chaining to it.
pub fn acceptor(tls: &MllpListenTls) -> anyhow::Result<TlsAcceptor> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider)
                    .build()
                    .with_context(|| {
                        format!("client certificate verifier from {}", ca.display())
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certificates(&tls.cert)?, private_key(&tls.key)?)
        .with_context(|| format!("the MLLP listener's certificate {}", tls.cert.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The sender's TLS: the CA the local system's certificate must chain to,
/// the name it must carry, and optionally a client certificate.
pub fn connector(tls: &MllpDeliverTls) -> anyhow::Result<(TlsConnector, ServerName<'static>)> {
    let config = client_config(&tls.ca, tls.cert.as_deref(), tls.key.as_deref())?;
    let name = ServerName::try_from(tls.server_name.clone())
        .with_context(|| format!("{} is not a valid server name", tls.server_name))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// A TLS client configuration trusting `ca`, presenting `cert` and `key`
/// if both are given (also used by the `fhir-r4` kind's HTTP client).
pub fn client_config(
    ca: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots(ca)?);
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .with_context(|| format!("the client certificate {}", cert.display()))?,
        _ => builder.with_no_client_auth(),
    })
}

/// A TLS client configuration that trusts nothing (for an HTTP client
/// that is only ever given `http://` addresses).
pub fn no_trust_config() -> anyhow::Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use bytes::Bytes;
    use lhcie_mllp::{ListenerConfig, MllpListener, MllpSender, PeerInfo, SendError, SenderConfig};
    use lhcie_tls::DevCa;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// A CA, a listener certificate for `localhost` and a client
    /// certificate, written as PEM files.
    struct Pki {
        _dir: tempfile::TempDir,
        ca: PathBuf,
        server: (PathBuf, PathBuf),
        client: (PathBuf, PathBuf),
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let server = ca.issue_server(&["localhost"]).unwrap();
        let client = ca
            .issue_client("urn:lhcie:local-system:test", "test")
            .unwrap();
        Pki {
            ca: write("ca.pem", ca.cert_pem()),
            server: (
                write("server.pem", &server.cert_pem),
                write("server.key", &server.key_pem),
            ),
            client: (
                write("client.pem", &client.cert_pem),
                write("client.key", &client.key_pem),
            ),
            _dir: dir,
        }
    }

    async fn listener(tls: &MllpListenTls) -> (String, CancellationToken) {
        let listener = MllpListener::bind("127.0.0.1:0", ListenerConfig::default())
            .await
            .unwrap()
            .with_tls(acceptor(tls).unwrap());
        let address = listener.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        tokio::spawn(listener.serve(
            |_message: Bytes, _peer: PeerInfo| async { Bytes::from_static(b"MSA|AA|1\r") },
            stop.clone(),
        ));
        (address, stop)
    }

    fn sender(address: &str, tls: &MllpDeliverTls) -> MllpSender {
        let (connector, name) = connector(tls).unwrap();
        MllpSender::new(
            address,
            SenderConfig {
                connect_attempts: 1,
                ack_timeout: Duration::from_secs(2),
                ..SenderConfig::default()
            },
        )
        .with_tls(connector, name)
    }

    #[tokio::test]
    async fn a_configured_tls_listener_accepts_a_tls_client() {
        let pki = pki();
        let (address, stop) = listener(&MllpListenTls {
            cert: pki.server.0.clone(),
            key: pki.server.1.clone(),
            client_ca: None,
        })
        .await;
        let tls = MllpDeliverTls {
            ca: pki.ca.clone(),
            cert: None,
            key: None,
            server_name: "localhost".into(),
        };
        let ack = sender(&address, &tls).send(b"MSH|^~\\&|A\r").await.unwrap();
        assert_eq!(&ack[..], b"MSA|AA|1\r");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_required_client_certificate_is_checked() {
        let pki = pki();
        let (address, stop) = listener(&MllpListenTls {
            cert: pki.server.0.clone(),
            key: pki.server.1.clone(),
            client_ca: Some(pki.ca.clone()),
        })
        .await;
        let with_cert = MllpDeliverTls {
            ca: pki.ca.clone(),
            cert: Some(pki.client.0.clone()),
            key: Some(pki.client.1.clone()),
            server_name: "localhost".into(),
        };
        assert!(
            sender(&address, &with_cert)
                .send(b"MSH|^~\\&|A\r")
                .await
                .is_ok()
        );
        let without = MllpDeliverTls {
            cert: None,
            key: None,
            ..with_cert
        };
        let refused = sender(&address, &without).send(b"MSH|^~\\&|A\r").await;
        assert!(refused.is_err(), "{refused:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_wrong_server_name_is_refused() {
        let pki = pki();
        let (address, stop) = listener(&MllpListenTls {
            cert: pki.server.0.clone(),
            key: pki.server.1.clone(),
            client_ca: None,
        })
        .await;
        let tls = MllpDeliverTls {
            ca: pki.ca.clone(),
            cert: None,
            key: None,
            server_name: "epr.example".into(),
        };
        let refused = sender(&address, &tls).send(b"MSH|^~\\&|A\r").await;
        assert!(matches!(refused, Err(SendError::Tls { .. })), "{refused:?}");
        stop.cancel();
    }

    #[test]
    fn unreadable_files_are_named() {
        let error = acceptor(&MllpListenTls {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
        })
        .err()
        .unwrap();
        assert!(
            format!("{error:#}").contains("/nonexistent/cert.pem"),
            "{error:#}"
        );
    }
}
