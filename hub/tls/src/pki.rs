//! A development PKI: a CA, the hub's server certificate, and one client
//! certificate per exchange. For `make run` and tests; production
//! deployments use the NHS's own PKI, with the same naming rule for
//! exchanges.

use std::path::{Path, PathBuf};

use lhcie_model::ExchangeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::EXCHANGE_URI_PREFIX;

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Generating or signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued { .. }")
    }
}

/// A certificate authority for development.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

pub(crate) fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(
        DnType::OrganizationName,
        "London Health and Care Information Exchange (development)",
    );
    name.push(DnType::CommonName, common_name);
    name
}

impl DevCa {
    /// A new CA with a fresh key.
    pub fn generate() -> Result<Self, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name("LHCIE development CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's issuer (certificate parameters and key), for signing
    /// certificate revocation lists ([`crate::revocation`]).
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// A server certificate for the hub, valid for `names` (DNS names or IP
    /// addresses).
    pub fn issue_server(&self, names: &[&str]) -> Result<Issued, PkiError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = name("lhcie hub");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate for an exchange's adapter: subject CN and a SAN
    /// URI `urn:lhcie:exchange:<id>`.
    pub fn issue_exchange(&self, exchange: &ExchangeId) -> Result<Issued, PkiError> {
        self.issue_client(
            &format!("{EXCHANGE_URI_PREFIX}{exchange}"),
            exchange.as_str(),
        )
    }

    /// A client certificate with an arbitrary SAN URI (tests use it to make
    /// certificates the hub must refuse).
    pub fn issue_client(&self, uri: &str, common_name: &str) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    pub(crate) fn sign(&self, params: CertificateParams) -> Result<Issued, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The files of a development PKI in one folder.
#[derive(Debug, Clone)]
pub struct PkiLayout {
    dir: PathBuf,
}

impl PkiLayout {
    /// The layout under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The hub's certificate.
    pub fn hub_cert(&self) -> PathBuf {
        self.dir.join("hub.pem")
    }

    /// The hub's key.
    pub fn hub_key(&self) -> PathBuf {
        self.dir.join("hub.key")
    }

    /// An exchange's certificate.
    pub fn exchange_cert(&self, exchange: &ExchangeId) -> PathBuf {
        self.dir.join("exchanges").join(format!("{exchange}.pem"))
    }

    /// An exchange's key.
    pub fn exchange_key(&self, exchange: &ExchangeId) -> PathBuf {
        self.dir.join("exchanges").join(format!("{exchange}.key"))
    }

    /// Generates a CA, a hub certificate for `localhost` and `127.0.0.1`,
    /// and a certificate per exchange, and writes them (keys readable by
    /// the owner only). The CA's key is not written: to add an exchange
    /// later, generate the whole set again. The CA is returned for callers
    /// that issue more certificates at once.
    pub fn generate(&self, exchanges: &[ExchangeId]) -> Result<DevCa, PkiError> {
        let ca = DevCa::generate()?;
        write(&self.ca_cert(), ca.cert_pem(), false)?;
        let hub = ca.issue_server(&["localhost", "127.0.0.1"])?;
        write(&self.hub_cert(), &hub.cert_pem, false)?;
        write(&self.hub_key(), &hub.key_pem, true)?;
        for exchange in exchanges {
            let issued = ca.issue_exchange(exchange)?;
            write(&self.exchange_cert(exchange), &issued.cert_pem, false)?;
            write(&self.exchange_key(exchange), &issued.key_pem, true)?;
        }
        Ok(ca)
    }

    /// Writes an issued certificate and key under `name` (tests use it for
    /// certificates the hub must refuse).
    pub fn write_extra(&self, name: &str, issued: &Issued) -> Result<(PathBuf, PathBuf), PkiError> {
        let cert = self.dir.join("extra").join(format!("{name}.pem"));
        let key = self.dir.join("extra").join(format!("{name}.key"));
        write(&cert, &issued.cert_pem, false)?;
        write(&key, &issued.key_pem, true)?;
        Ok((cert, key))
    }
}

pub(crate) fn write(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    let fail = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, contents).map_err(fail)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    Ok(())
}
