//! Which exchange a client certificate speaks for.
//!
//! An adapter's certificate names its exchange in a subject alternative
//! name URI, `urn:lhcie:exchange:<exchange-id>`. The hub trusts that name
//! only because the certificate chains to the CA it is configured with;
//! the TLS layer has already checked the chain when this runs.

use lhcie_model::ExchangeId;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI prefix that names an exchange in a certificate.
pub const EXCHANGE_URI_PREFIX: &str = "urn:lhcie:exchange:";

/// Why a certificate does not identify an exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a parsable X.509 certificate.
    #[error("the client certificate cannot be parsed")]
    Unparsable,
    /// No `urn:lhcie:exchange:` URI.
    #[error(
        "the client certificate names no exchange (expected a subject alternative name URI {EXCHANGE_URI_PREFIX}<exchange-id>)"
    )]
    NoExchange,
    /// More than one exchange URI.
    #[error("the client certificate names more than one exchange")]
    SeveralExchanges,
    /// The URI's id is not a valid exchange id.
    #[error("the client certificate names an invalid exchange id: {0}")]
    InvalidExchange(String),
}

/// The exchange named by a DER-encoded certificate.
pub fn exchange_of(certificate_der: &[u8]) -> Result<ExchangeId, IdentityError> {
    let (_, certificate) =
        X509Certificate::from_der(certificate_der).map_err(|_| IdentityError::Unparsable)?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparsable)?
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let mut exchanges = names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) => uri.strip_prefix(EXCHANGE_URI_PREFIX),
        _ => None,
    });
    let id = exchanges.next().ok_or(IdentityError::NoExchange)?;
    if exchanges.next().is_some() {
        return Err(IdentityError::SeveralExchanges);
    }
    ExchangeId::parse(id).map_err(|e| IdentityError::InvalidExchange(e.to_string()))
}
