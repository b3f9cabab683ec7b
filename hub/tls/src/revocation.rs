//! Revocation of exchange certificates: the hub's gRPC server checks every
//! client certificate against a certificate revocation list (CRL) file,
//! reloaded when the file changes.
//!
//! - [`server_config`]: the hub's rustls server configuration for mutual
//!   TLS (ALPN `h2`) whose client verifier is a [`ReloadingCrlVerifier`].
//! - [`ReloadingCrlVerifier`]: rustls' `WebPkiClientVerifier` with the CRLs
//!   of one PEM file; before each handshake it looks at the file's
//!   modification time and size and, if they changed, reads it again. A
//!   file that cannot be read or parsed any more is reported in the log and
//!   the last good list stays in force (a revocation is never undone by a
//!   broken file); at start-up it is an error.
//! - [`incoming`]: accepted TCP connections, handshaken with that
//!   configuration off the accept loop (with a timeout), as the stream of
//!   `tokio_rustls` server streams tonic serves; tonic then gives the
//!   client certificate to the handlers (`Request::peer_certs`) as with its
//!   own TLS.
//! - [`DevCa::crl_pem`]: a CRL from the development CA (rcgen), and
//!   [`crl_path`] where the development PKI keeps it.
//!
//! A revoked certificate is refused in the handshake
//! (`CertificateError::Revoked`); nothing reaches the hub's services. With
//! CRLs configured, a certificate whose status the lists cannot tell (no
//! list from its issuer) is refused too. See `docs/security.md`,
//! "Credentials and revocation".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
/// The server configuration [`server_config`] makes (rustls's), for
/// callers that keep one without depending on rustls themselves.
pub use rustls::ServerConfig;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::pki::{DevCa, Issued, PkiLayout};

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// A file could not be read or holds nothing usable.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the combination.
    #[error("TLS settings: {0}")]
    Tls(String),
    /// rcgen could not make the list.
    #[error("making the CRL: {0}")]
    Generate(#[from] rcgen::Error),
}

fn file_error(path: &Path, problem: impl std::fmt::Display) -> RevocationError {
    RevocationError::File {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RevocationError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate"));
    }
    Ok(certs)
}

/// The CRLs of a PEM file (`-----BEGIN X509 CRL-----`), at least one.
pub fn read_crls(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, RevocationError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .and_then(|crls| crls.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(path, e))?;
    if crls.is_empty() {
        return Err(file_error(path, "no X509 CRL in the file"));
    }
    Ok(crls)
}

/// What identifies a version of a file: modification time and size.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// A client-certificate verifier (mandatory client certificates chaining
/// to the CA) that checks revocation against a CRL file, reloaded when the
/// file changes. See the module docs.
pub struct ReloadingCrlVerifier {
    roots: Arc<RootCertStore>,
    crl: PathBuf,
    hints: Vec<DistinguishedName>,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingCrlVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCrlVerifier")
            .field("crl", &self.crl)
            .finish_non_exhaustive()
    }
}

fn build_verifier(
    roots: &Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, RevocationError> {
    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .with_crls(crls)
        .build()
        .map_err(|e| RevocationError::Tls(e.to_string()))
}

impl ReloadingCrlVerifier {
    /// A verifier trusting the CA certificates in `client_ca` and the CRLs
    /// in `crl` (both PEM); an error if either cannot be read now.
    pub fn new(client_ca: &Path, crl: &Path) -> Result<Self, RevocationError> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(client_ca)? {
            roots.add(cert).map_err(|e| file_error(client_ca, e))?;
        }
        let roots = Arc::new(roots);
        let stamp = stamp(crl);
        let verifier = build_verifier(&roots, read_crls(crl)?).map_err(|e| file_error(crl, e))?;
        Ok(Self {
            hints: roots.subjects(),
            roots,
            crl: crl.to_owned(),
            loaded: Mutex::new(Loaded { stamp, verifier }),
        })
    }

    /// The verifier for the file as it is now: read again if it changed.
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = stamp(&self.crl);
        if now != loaded.stamp {
            match read_crls(&self.crl).and_then(|crls| build_verifier(&self.roots, crls)) {
                Ok(verifier) => {
                    loaded.verifier = verifier;
                    loaded.stamp = now;
                    tracing::info!(crl = %self.crl.display(), "certificate revocation list reloaded");
                }
                Err(error) => {
                    // Keep the last good list; say so on every change.
                    loaded.stamp = now;
                    tracing::error!(%error, "the certificate revocation list could not be reloaded: the previous one stays in force");
                }
            }
        }
        loaded.verifier.clone()
    }
}

impl ClientCertVerifier for ReloadingCrlVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(error) = &verified {
            tracing::info!(%error, "client certificate refused");
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// The hub's gRPC server TLS: its certificate and key, mandatory client
/// certificates chaining to `client_ca`, and with `crl` revocation checked
/// against that file (reloaded on change); ALPN `h2`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    crl: Option<&Path>,
) -> Result<Arc<ServerConfig>, RevocationError> {
    let verifier: Arc<dyn ClientCertVerifier> = match crl {
        Some(crl) => Arc::new(ReloadingCrlVerifier::new(client_ca, crl)?),
        None => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(client_ca)? {
                roots.add(cert).map_err(|e| file_error(client_ca, e))?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| RevocationError::Tls(e.to_string()))?
        }
    };
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| RevocationError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(cert)?, key)
        .map_err(|e| file_error(cert, e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections on `listener` (with `TCP_NODELAY`, see
/// `lhcie_runtime::net`) until `shutdown` and handshakes each
/// with `config` in a task of its own (at most `handshake_timeout`); the
/// established streams, for tonic's `serve_with_incoming`. A refused
/// handshake is logged and the connection closed.
pub fn incoming(
    listener: lhcie_runtime::net::Listener,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    shutdown: CancellationToken,
) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
    let (established, receiver) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let established = established.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = established.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(%peer, %error, "gRPC TLS handshake refused");
                    }
                    Err(_) => tracing::info!(%peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

/// Where the development PKI keeps its CRL: `crl.pem` beside `ca.pem`.
pub fn crl_path(layout: &PkiLayout) -> PathBuf {
    layout.ca_cert().with_file_name("crl.pem")
}

impl DevCa {
    /// A CRL signed by this CA listing the certificates `revoked` (PEM, as
    /// issued), valid for a year from now; PEM. `number` orders successive
    /// lists (1, 2, ...).
    pub fn crl_pem(&self, revoked: &[&Issued], number: u64) -> Result<String, RevocationError> {
        let now = time::OffsetDateTime::now_utc();
        let mut revoked_certs = Vec::new();
        for issued in revoked {
            let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes())
                .map_err(|e| RevocationError::Tls(format!("not a PEM certificate: {e}")))?;
            let cert = pem
                .parse_x509()
                .map_err(|e| RevocationError::Tls(format!("not a certificate: {e}")))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(cert.raw_serial()),
                revocation_time: now,
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(1),
            next_update: now + time::Duration::days(365),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(self.issuer())?.pem()?)
    }

    /// Writes [`DevCa::crl_pem`] to `path` (replacing it in one rename, so
    /// a reader never sees half a list).
    pub fn write_crl(
        &self,
        path: &Path,
        revoked: &[&Issued],
        number: u64,
    ) -> Result<(), RevocationError> {
        let pem = self.crl_pem(revoked, number)?;
        let temporary = path.with_extension("pem.new");
        std::fs::write(&temporary, pem).map_err(|e| file_error(&temporary, e))?;
        std::fs::rename(&temporary, path).map_err(|e| file_error(path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lhcie_model::ExchangeId;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Files {
        _dir: tempfile::TempDir,
        dir: PathBuf,
    }

    impl Files {
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    fn client(ca: &DevCa, issued: &Issued) -> tokio_rustls::TlsConnector {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// Connects with `issued` and exchanges a byte; true if served.
    async fn served(address: std::net::SocketAddr, ca: &DevCa, issued: &Issued) -> bool {
        let stream = TcpStream::connect(address).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let Ok(mut tls) = client(ca, issued).connect(name, stream).await else {
            return false;
        };
        // TLS 1.3: the server's verdict on the client certificate comes
        // with the first read.
        if tls.write_all(b"x").await.is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        matches!(tls.read(&mut byte).await, Ok(1))
    }

    #[tokio::test]
    async fn a_revoked_certificate_is_refused_once_the_list_names_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let files = Files {
            dir: dir.path().to_owned(),
            _dir: dir,
        };
        let ca = DevCa::generate().unwrap();
        let server = ca.issue_server(&["localhost"]).unwrap();
        let imperial = ca
            .issue_exchange(&ExchangeId::parse("nwl-imperial").unwrap())
            .unwrap();
        let royal_free = ca
            .issue_exchange(&ExchangeId::parse("ncl-royal-free").unwrap())
            .unwrap();
        let ca_file = files.write("ca.pem", ca.cert_pem());
        let crl = files.dir.join("crl.pem");
        ca.write_crl(&crl, &[], 1).unwrap();
        let config = server_config(
            &files.write("hub.pem", &server.cert_pem),
            &files.write("hub.key", &server.key_pem),
            &ca_file,
            Some(&crl),
        )
        .unwrap();
        let listener = lhcie_runtime::net::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let mut streams = Box::pin(incoming(
            listener,
            config,
            Duration::from_secs(5),
            stop.clone(),
        ));
        tokio::spawn(async move {
            use tokio_stream::StreamExt;
            while let Some(Ok(mut stream)) = streams.next().await {
                tokio::spawn(async move {
                    let mut byte = [0u8; 1];
                    if stream.read_exact(&mut byte).await.is_ok() {
                        let _ = stream.write_all(&byte).await;
                    }
                });
            }
        });

        assert!(served(address, &ca, &imperial).await);
        assert!(served(address, &ca, &royal_free).await);
        // Imperial's key is compromised: a new list, picked up at once.
        std::thread::sleep(Duration::from_millis(20));
        ca.write_crl(&crl, &[&imperial], 2).unwrap();
        assert!(!served(address, &ca, &imperial).await);
        assert!(served(address, &ca, &royal_free).await);
        // A broken file does not undo the revocation.
        std::fs::write(&crl, "not a list").unwrap();
        assert!(!served(address, &ca, &imperial).await);
        assert!(served(address, &ca, &royal_free).await);
        stop.cancel();
    }

    #[test]
    fn a_missing_or_empty_list_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let missing = dir.path().join("none.pem");
        let error = ReloadingCrlVerifier::new(&ca_file, &missing).unwrap_err();
        assert!(error.to_string().contains("none.pem"), "{error}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = ReloadingCrlVerifier::new(&ca_file, &empty).unwrap_err();
        assert!(error.to_string().contains("no X509 CRL"), "{error}");
    }
}
