//! A rustls client configuration that checks who the server is, not only
//! that its certificate chains to the pinned CA: the server's certificate
//! must name a principal the caller accepts (e.g. a registry node of its
//! configuration, `urn:lhcie:registry-node:<id>`). A hub following the
//! registry uses it, so a server holding some other certificate of the same
//! CA (the hub's own server certificate, say) is refused at the handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::services::{Principal, principal_of};

/// Which server principals are accepted.
pub type AcceptPrincipal = Arc<dyn Fn(&Principal) -> bool + Send + Sync>;

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM.
    #[error("{path}: {problem}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

struct PrincipalVerifier {
    chain: Arc<WebPkiServerVerifier>,
    accept: AcceptPrincipal,
}

impl std::fmt::Debug for PrincipalVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrincipalVerifier { .. }")
    }
}

impl ServerCertVerifier for PrincipalVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match principal_of(end_entity.as_ref()) {
            Ok(principal) if (self.accept)(&principal) => Ok(verified),
            Ok(principal) => Err(rustls::Error::General(format!(
                "the server's certificate names {principal}, which is not accepted here"
            ))),
            Err(error) => Err(rustls::Error::General(format!("the server's {error}"))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, VerifierError> {
    std::fs::read(path).map_err(|source| VerifierError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn pem_error(path: &Path, problem: impl std::fmt::Display) -> VerifierError {
    VerifierError::Pem {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// A client configuration for HTTP/2 (gRPC) with mutual TLS: trusting only
/// the CA in `ca` (no system roots), presenting `cert` and `key`, and
/// accepting a server only if its certificate names a principal `accept`
/// approves.
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    accept: AcceptPrincipal,
) -> Result<rustls::ClientConfig, VerifierError> {
    client_config_from_pem(
        &Pem {
            ca: read(ca)?,
            cert: read(cert)?,
            key: read(key)?,
            ca_path: ca.to_owned(),
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
        },
        accept,
    )
}

/// The PEM files of a client identity, read once.
#[derive(Clone)]
pub struct Pem {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
    ca_path: std::path::PathBuf,
    cert_path: std::path::PathBuf,
    key_path: std::path::PathBuf,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("ca", &self.ca_path)
            .field("cert", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl Pem {
    /// Reads the CA, the certificate and the key.
    pub fn read(ca: &Path, cert: &Path, key: &Path) -> Result<Self, VerifierError> {
        Ok(Self {
            ca: read(ca)?,
            cert: read(cert)?,
            key: read(key)?,
            ca_path: ca.to_owned(),
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
        })
    }
}

/// [`client_config`] from PEM already read.
pub fn client_config_from_pem(
    pem: &Pem,
    accept: AcceptPrincipal,
) -> Result<rustls::ClientConfig, VerifierError> {
    let (ca, cert, key) = (
        pem.ca_path.as_path(),
        pem.cert_path.as_path(),
        pem.key_path.as_path(),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem.ca) {
        let certificate = certificate.map_err(|e| pem_error(ca, e))?;
        roots
            .add(certificate)
            .map_err(|e| pem_error(ca, format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(pem_error(ca, "no certificate"));
    }
    let verifier = Arc::new(PrincipalVerifier {
        chain: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| pem_error(ca, e))?,
        accept,
    });
    let certificates = CertificateDer::pem_slice_iter(&pem.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    let private_key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| pem_error(key, e))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certificates, private_key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::DevCa;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_server_must_name_the_principal_the_client_expects() {
        let ca = DevCa::generate().unwrap();
        let other_ca = DevCa::generate().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca.cert_pem())).unwrap();
        let verifier = PrincipalVerifier {
            chain: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap(),
            accept: Arc::new(|p| *p == Principal::RegistryNode(1)),
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let check =
            |pem: &str| verifier.verify_server_cert(&der(pem), &[], &name, &[], UnixTime::now());
        let node_1 = ca
            .issue_registry_node(1, &["localhost", "127.0.0.1"])
            .unwrap();
        assert!(check(&node_1.cert_pem).is_ok());
        let node_2 = ca
            .issue_registry_node(2, &["localhost", "127.0.0.1"])
            .unwrap();
        let refused = check(&node_2.cert_pem).unwrap_err().to_string();
        assert!(refused.contains("urn:lhcie:registry-node:2"), "{refused}");
        // The hub's server certificate: right CA, right name, no principal.
        let hub = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        assert!(check(&hub.cert_pem).is_err());
        // Node 1 of another CA.
        let impostor = other_ca
            .issue_registry_node(1, &["localhost", "127.0.0.1"])
            .unwrap();
        assert!(check(&impostor.cert_pem).is_err());
    }
}
