//! Organisation Data Service (ODS) codes, which identify NHS organisations.

use std::fmt;

/// The FHIR identifier system for ODS organisation codes.
pub const ODS_ORGANISATION_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// An ODS code such as `RAL` (a trust), `RAL01` (a site) or `F83006` (a GP
/// practice). Only the shape is checked here (3 to 10 upper-case letters and
/// digits); whether the organisation exists, is open and is served by an
/// exchange is a question for the topology.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OdsCode(String);

/// Why a string is not an ODS code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OdsCodeError {
    /// Shorter than 3 or longer than 10 characters.
    #[error("ODS code must be 3 to 10 characters long, found {0}")]
    Length(usize),
    /// Lower-case letters, punctuation or spaces.
    #[error("ODS code `{0}` may contain only upper-case letters and digits")]
    Characters(String),
}

impl OdsCode {
    /// Checks the shape of an ODS code. Lower case is refused rather than
    /// silently folded, so that a typo in configuration is seen.
    pub fn parse(input: &str) -> Result<Self, OdsCodeError> {
        if !(3..=10).contains(&input.len()) {
            return Err(OdsCodeError::Length(input.chars().count()));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(OdsCodeError::Characters(input.escape_default().to_string()));
        }
        Ok(Self(input.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OdsCode({})", self.0)
    }
}

impl TryFrom<String> for OdsCode {
    type Error = OdsCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OdsCode> for String {
    fn from(code: OdsCode) -> Self {
        code.0
    }
}

impl std::str::FromStr for OdsCode {
    type Err = OdsCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_london_codes() {
        for code in [
            "RAL", "RRV", "G6V2S", "K0N6A", "F83006", "Y00542", "RAL01", "93C",
        ] {
            assert_eq!(OdsCode::parse(code).unwrap().as_str(), code);
        }
    }

    #[test]
    fn refuses_malformed_codes() {
        assert_eq!(OdsCode::parse("RA"), Err(OdsCodeError::Length(2)));
        assert_eq!(OdsCode::parse("ABCDEFGHIJK"), Err(OdsCodeError::Length(11)));
        assert!(matches!(
            OdsCode::parse("ral"),
            Err(OdsCodeError::Characters(_))
        ));
        assert!(matches!(
            OdsCode::parse("RA L"),
            Err(OdsCodeError::Characters(_))
        ));
        assert!(matches!(
            OdsCode::parse("R-AL"),
            Err(OdsCodeError::Characters(_))
        ));
    }
}
