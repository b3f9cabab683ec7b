//! Which exchange a gRPC call comes from.

use lhcie_model::ExchangeId;
use tonic::{Request, Status};

use crate::router::Router;

/// How callers are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityMode {
    /// From the client certificate (mutual TLS). The only mode for
    /// anything but local development.
    ClientCertificate,
    /// Development only, with plain-text gRPC: from the `lhcie-exchange`
    /// request header, which anyone can set.
    InsecureHeader,
}

/// The header naming the caller's exchange in insecure development mode.
pub const EXCHANGE_HEADER: &str = "lhcie-exchange";

/// The caller's exchange, which must be in the topology.
pub fn identify<T>(
    request: &Request<T>,
    mode: IdentityMode,
    router: &Router,
) -> Result<ExchangeId, Status> {
    let exchange = match mode {
        IdentityMode::ClientCertificate => {
            let certificates = request
                .peer_certs()
                .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
            let leaf = certificates
                .first()
                .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
            lhcie_tls::exchange_of(leaf).map_err(|e| Status::unauthenticated(e.to_string()))?
        }
        IdentityMode::InsecureHeader => {
            let value = request
                .metadata()
                .get(EXCHANGE_HEADER)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Status::unauthenticated(format!("the {EXCHANGE_HEADER} header is required"))
                })?;
            ExchangeId::parse(value).map_err(|e| Status::unauthenticated(e.to_string()))?
        }
    };
    if !router.knows_exchange(&exchange) {
        return Err(Status::permission_denied(format!(
            "exchange {exchange} is not in this hub's topology"
        )));
    }
    Ok(exchange)
}
