//! # lhcie-tls: mutual TLS between the hub and its adapters
//!
//! Every adapter connects to the hub's gRPC endpoint with a client
//! certificate that names its exchange (`urn:lhcie:exchange:<id>` as a
//! subject alternative name URI); the hub accepts envelopes only from
//! organisations of that exchange.
//!
//! - [`identity`]: reading the exchange from a certificate.
//! - [`pki`]: a development CA and certificates (rcgen) for `make run` and
//!   tests.
//! - [`services`]: service (`urn:lhcie:service:<name>`) and registry-node
//!   (`urn:lhcie:registry-node:<id>`) identities, and their development
//!   certificates.
//! - [`principal_verifier`]: a client that also checks which principal
//!   the server's certificate names (the hub following the registry).
//! - [`revocation`]: the hub's gRPC server TLS with client certificates
//!   checked against a CRL file reloaded on change; development CRLs.
//! - [`tonic_config`]: tonic server and client TLS settings from PEM files.
//!
//! The crypto provider is ring, the only one in the build.

pub mod identity;
pub mod pki;
pub mod principal_verifier;
pub mod revocation;
pub mod services;
pub mod tonic_config;

pub use identity::{EXCHANGE_URI_PREFIX, IdentityError, exchange_of};
pub use pki::{DevCa, Issued, PkiLayout};
pub use services::{
    Principal, PrincipalError, REGISTRY_NODE_URI_PREFIX, SERVICE_URI_PREFIX, principal_of,
};

#[cfg(test)]
mod tests {
    use super::*;
    use lhcie_model::ExchangeId;

    fn der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }

    #[test]
    fn an_exchange_certificate_names_its_exchange() {
        let ca = DevCa::generate().unwrap();
        let id = ExchangeId::parse("nwl-imperial").unwrap();
        let issued = ca.issue_exchange(&id).unwrap();
        assert_eq!(exchange_of(&der(&issued.cert_pem)).unwrap(), id);
    }

    #[test]
    fn certificates_without_a_valid_exchange_are_refused() {
        let ca = DevCa::generate().unwrap();
        let other = ca.issue_client("urn:example:something", "x").unwrap();
        assert_eq!(
            exchange_of(&der(&other.cert_pem)),
            Err(IdentityError::NoExchange)
        );
        let bad = ca
            .issue_client("urn:lhcie:exchange:NWL Imperial", "x")
            .unwrap();
        assert!(matches!(
            exchange_of(&der(&bad.cert_pem)),
            Err(IdentityError::InvalidExchange(_))
        ));
        let server = ca.issue_server(&["localhost"]).unwrap();
        assert_eq!(
            exchange_of(&der(&server.cert_pem)),
            Err(IdentityError::NoExchange)
        );
        assert_eq!(
            exchange_of(b"not a certificate"),
            Err(IdentityError::Unparsable)
        );
    }

    #[test]
    fn the_layout_writes_every_file_with_private_keys_protected() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let ids = [
            ExchangeId::parse("nwl-imperial").unwrap(),
            ExchangeId::parse("ncl-royal-free").unwrap(),
        ];
        layout.generate(&ids).unwrap();
        for id in &ids {
            let pem = std::fs::read_to_string(layout.exchange_cert(id)).unwrap();
            assert_eq!(&exchange_of(&der(&pem)).unwrap(), id);
            let mode = std::fs::metadata(layout.exchange_key(id))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key readable by others");
        }
        assert!(
            layout.ca_cert().exists() && layout.hub_cert().exists() && layout.hub_key().exists()
        );
    }
}
