//! Service and registry-node identities in certificates.
//!
//! Besides exchanges (`urn:lhcie:exchange:<id>`, [`crate::identity`]), two
//! kinds of principal prove themselves with a certificate from the
//! configured CA, named by a subject alternative name URI:
//!
//! - a service: `urn:lhcie:service:<name>` (`hub`, `registry-admin` for
//!   the registry's administration tool, and the consoles to come);
//! - a registry node: `urn:lhcie:registry-node:<id>`; its certificate is
//!   both a server certificate (its API and Raft ports) and a client
//!   certificate (Raft calls to the other nodes).
//!
//! A certificate names exactly one `urn:lhcie:` principal.

use std::path::PathBuf;

use lhcie_model::ExchangeId;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, SanType};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::EXCHANGE_URI_PREFIX;
use crate::pki::{DevCa, Issued, PkiError, PkiLayout, write};

/// The URI prefix that names a service.
pub const SERVICE_URI_PREFIX: &str = "urn:lhcie:service:";
/// The URI prefix that names a registry node.
pub const REGISTRY_NODE_URI_PREFIX: &str = "urn:lhcie:registry-node:";

/// Who a certificate speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// A service (`urn:lhcie:service:<name>`).
    Service(String),
    /// A registry node (`urn:lhcie:registry-node:<id>`).
    RegistryNode(u64),
    /// An exchange's adapter (`urn:lhcie:exchange:<id>`).
    Exchange(ExchangeId),
}

impl Principal {
    /// The principal's URI, as in its certificate.
    pub fn uri(&self) -> String {
        match self {
            Self::Service(name) => format!("{SERVICE_URI_PREFIX}{name}"),
            Self::RegistryNode(id) => format!("{REGISTRY_NODE_URI_PREFIX}{id}"),
            Self::Exchange(id) => format!("{EXCHANGE_URI_PREFIX}{id}"),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Why a certificate names no principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// Not a parsable X.509 certificate.
    #[error("the certificate cannot be parsed")]
    Unparsable,
    /// No `urn:lhcie:` URI.
    #[error(
        "the certificate names no principal (expected one subject alternative name URI {SERVICE_URI_PREFIX}<name>, {REGISTRY_NODE_URI_PREFIX}<id> or {EXCHANGE_URI_PREFIX}<id>)"
    )]
    None,
    /// More than one `urn:lhcie:` URI.
    #[error("the certificate names more than one principal")]
    Several,
    /// A `urn:lhcie:` URI that is not a valid name.
    #[error("the certificate names an invalid principal: {0}")]
    Invalid(String),
}

/// Whether `name` is a valid service name: 1 to 64 of `a-z`, `0-9`, `-`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn parse_uri(uri: &str) -> Option<Result<Principal, PrincipalError>> {
    let invalid = || PrincipalError::Invalid(uri.to_owned());
    if let Some(name) = uri.strip_prefix(SERVICE_URI_PREFIX) {
        return Some(if valid_service_name(name) {
            Ok(Principal::Service(name.to_owned()))
        } else {
            Err(invalid())
        });
    }
    if let Some(id) = uri.strip_prefix(REGISTRY_NODE_URI_PREFIX) {
        return Some(match id.parse::<u64>() {
            Ok(number) if number > 0 && number.to_string() == id => {
                Ok(Principal::RegistryNode(number))
            }
            _ => Err(invalid()),
        });
    }
    if let Some(id) = uri.strip_prefix(EXCHANGE_URI_PREFIX) {
        return Some(
            ExchangeId::parse(id)
                .map(Principal::Exchange)
                .map_err(|_| invalid()),
        );
    }
    uri.starts_with("urn:lhcie:").then(|| Err(invalid()))
}

/// The principal a DER-encoded certificate names. The TLS layer has
/// checked the chain when this runs.
pub fn principal_of(certificate_der: &[u8]) -> Result<Principal, PrincipalError> {
    let (_, certificate) =
        X509Certificate::from_der(certificate_der).map_err(|_| PrincipalError::Unparsable)?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|_| PrincipalError::Unparsable)?
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let mut found = names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) => parse_uri(uri),
        _ => None,
    });
    let first = found.next().ok_or(PrincipalError::None)??;
    if found.next().is_some() {
        return Err(PrincipalError::Several);
    }
    Ok(first)
}

impl DevCa {
    /// A client certificate for a service: SAN URI
    /// `urn:lhcie:service:<name>`.
    pub fn issue_service(&self, name: &str) -> Result<Issued, PkiError> {
        self.issue_client(&format!("{SERVICE_URI_PREFIX}{name}"), name)
    }

    /// A registry node's certificate, for its servers and as a client of
    /// the other nodes: SAN URI `urn:lhcie:registry-node:<id>` and `names`
    /// (DNS names or IP addresses).
    pub fn issue_registry_node(&self, id: u64, names: &[&str]) -> Result<Issued, PkiError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = crate::pki::name(&format!("lhcie registry node {id}"));
        params.subject_alt_names.push(SanType::URI(
            format!("{REGISTRY_NODE_URI_PREFIX}{id}")
                .as_str()
                .try_into()?,
        ));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params)
    }
}

impl PkiLayout {
    fn dir(&self) -> PathBuf {
        let ca = self.ca_cert();
        ca.parent().map(PathBuf::from).unwrap_or_default()
    }

    /// A service's certificate (`services/<name>.pem`).
    pub fn service_cert(&self, name: &str) -> PathBuf {
        self.dir().join("services").join(format!("{name}.pem"))
    }

    /// A service's key.
    pub fn service_key(&self, name: &str) -> PathBuf {
        self.dir().join("services").join(format!("{name}.key"))
    }

    /// A registry node's certificate (`registry/node-<id>.pem`).
    pub fn registry_node_cert(&self, id: u64) -> PathBuf {
        self.dir().join("registry").join(format!("node-{id}.pem"))
    }

    /// A registry node's key.
    pub fn registry_node_key(&self, id: u64) -> PathBuf {
        self.dir().join("registry").join(format!("node-{id}.key"))
    }

    /// Issues and writes, with `ca` (from [`PkiLayout::generate`]), a
    /// certificate per registry node (for `localhost` and `127.0.0.1`) and
    /// per service (e.g. `hub`, `registry-admin`).
    pub fn generate_services(
        &self,
        ca: &DevCa,
        registry_nodes: &[u64],
        services: &[&str],
    ) -> Result<(), PkiError> {
        for id in registry_nodes {
            let issued = ca.issue_registry_node(*id, &["localhost", "127.0.0.1"])?;
            write(&self.registry_node_cert(*id), &issued.cert_pem, false)?;
            write(&self.registry_node_key(*id), &issued.key_pem, true)?;
        }
        for name in services {
            let issued = ca.issue_service(name)?;
            write(&self.service_cert(name), &issued.cert_pem, false)?;
            write(&self.service_key(name), &issued.key_pem, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }

    #[test]
    fn certificates_name_their_principal() {
        let ca = DevCa::generate().unwrap();
        let hub = ca.issue_service("hub").unwrap();
        assert_eq!(
            principal_of(&der(&hub.cert_pem)).unwrap(),
            Principal::Service("hub".into())
        );
        let node = ca
            .issue_registry_node(3, &["localhost", "127.0.0.1"])
            .unwrap();
        let principal = principal_of(&der(&node.cert_pem)).unwrap();
        assert_eq!(principal, Principal::RegistryNode(3));
        assert_eq!(principal.uri(), "urn:lhcie:registry-node:3");
        let exchange = ca
            .issue_exchange(&ExchangeId::parse("nwl-imperial").unwrap())
            .unwrap();
        assert!(matches!(
            principal_of(&der(&exchange.cert_pem)).unwrap(),
            Principal::Exchange(_)
        ));
    }

    #[test]
    fn certificates_without_a_valid_principal_are_refused() {
        let ca = DevCa::generate().unwrap();
        for uri in [
            "urn:lhcie:service:Hub",
            "urn:lhcie:service:",
            "urn:lhcie:registry-node:0",
            "urn:lhcie:registry-node:x",
            "urn:lhcie:registry-node:01",
            "urn:lhcie:unknown:x",
        ] {
            let issued = ca.issue_client(uri, "x").unwrap();
            assert!(
                matches!(
                    principal_of(&der(&issued.cert_pem)),
                    Err(PrincipalError::Invalid(_))
                ),
                "{uri}"
            );
        }
        let other = ca.issue_client("urn:example:x", "x").unwrap();
        assert_eq!(
            principal_of(&der(&other.cert_pem)),
            Err(PrincipalError::None)
        );
        let server = ca.issue_server(&["localhost"]).unwrap();
        assert_eq!(
            principal_of(&der(&server.cert_pem)),
            Err(PrincipalError::None)
        );
    }

    #[test]
    fn the_layout_writes_registry_and_service_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PkiLayout::new(dir.path());
        let ca = layout.generate(&[]).unwrap();
        layout
            .generate_services(&ca, &[1, 2], &["hub", "registry-admin"])
            .unwrap();
        let pem = std::fs::read_to_string(layout.registry_node_cert(2)).unwrap();
        assert_eq!(
            principal_of(&der(&pem)).unwrap(),
            Principal::RegistryNode(2)
        );
        let pem = std::fs::read_to_string(layout.service_cert("registry-admin")).unwrap();
        assert_eq!(
            principal_of(&der(&pem)).unwrap(),
            Principal::Service("registry-admin".into())
        );
        assert!(layout.service_key("hub").exists() && layout.registry_node_key(1).exists());
    }
}
