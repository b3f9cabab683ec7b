//! TLS settings for tonic servers and clients, from PEM files.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct TlsFileError {
    /// The file.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        path: path.display().to_string(),
        source,
    })
}

/// Server side of mutual TLS: the server's certificate and key, and the CA
/// every client certificate must chain to. A client without a certificate
/// is refused during the handshake.
pub fn server(cert: &Path, key: &Path, client_ca: &Path) -> Result<ServerTlsConfig, TlsFileError> {
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .client_ca_root(Certificate::from_pem(read(client_ca)?))
        .client_auth_optional(false))
}

/// Client side of mutual TLS: the CA the server's certificate must chain
/// to, the client's certificate and key, and the name to check the server
/// certificate against (e.g. `localhost`).
pub fn client(
    ca: &Path,
    cert: &Path,
    key: &Path,
    server_name: &str,
) -> Result<ClientTlsConfig, TlsFileError> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .domain_name(server_name))
}

/// Client side without a client certificate (tests use it to show the hub
/// refuses such clients).
pub fn client_without_identity(
    ca: &Path,
    server_name: &str,
) -> Result<ClientTlsConfig, TlsFileError> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .domain_name(server_name))
}
