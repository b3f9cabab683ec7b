//! Parsing command-line values into wire values, with errors that say what
//! is accepted.

use lhcie_model::{Category, ExchangeId, NhsNumber, OdsCode, PurposeOfUse};
use lhcie_proto::canonical;
use lhcie_proto::convert::registry::time_to_wire;
use lhcie_proto::registry as pb;

/// `ods:RYJ`, `exchange:nwl-discovery` or `region:NWL`.
pub fn party(text: &str) -> Result<pb::IsaParty, String> {
    use pb::isa_party::Scope;
    let (kind, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: write ods:CODE, exchange:ID or region:CODE"))?;
    let scope = match kind {
        "ods" => Scope::OdsCode(ods(value)?),
        "exchange" => Scope::ExchangeId(
            ExchangeId::parse(value)
                .map_err(|e| format!("`{value}`: {e}"))?
                .to_string(),
        ),
        "region" if !value.trim().is_empty() => Scope::Region(value.trim().to_owned()),
        _ => {
            return Err(format!(
                "`{text}`: write ods:CODE, exchange:ID or region:CODE"
            ));
        }
    };
    Ok(pb::IsaParty { scope: Some(scope) })
}

/// An ODS code.
pub fn ods(text: &str) -> Result<String, String> {
    OdsCode::parse(text.trim())
        .map(|code| code.to_string())
        .map_err(|e| format!("`{text}`: {e}"))
}

/// An NHS number.
pub fn nhs(text: &str) -> Result<String, String> {
    NhsNumber::parse(text.trim())
        .map(|n| n.as_str().to_owned())
        .map_err(|e| format!("not a valid NHS number: {e}"))
}

/// A category by its kebab-case name.
pub fn category(text: &str) -> Result<i32, String> {
    Category::ALL
        .into_iter()
        .find(|c| c.as_str() == text)
        .map(|c| canonical::Category::from(c) as i32)
        .ok_or_else(|| {
            let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            format!("`{text}`: one of {}", names.join(", "))
        })
}

/// A purpose of use by its kebab-case name.
pub fn purpose(text: &str) -> Result<i32, String> {
    PurposeOfUse::ALL
        .into_iter()
        .find(|p| p.as_str() == text)
        .map(|p| canonical::PurposeOfUse::from(p) as i32)
        .ok_or_else(|| {
            let names: Vec<&str> = PurposeOfUse::ALL.iter().map(|p| p.as_str()).collect();
            format!("`{text}`: one of {}", names.join(", "))
        })
}

/// A start: `YYYY-MM-DD` (its first instant, UTC) or RFC 3339.
pub fn start(text: &str) -> Result<prost_types::Timestamp, String> {
    lhcie_config::policy::start_of(text).map(time_to_wire)
}

/// An end: `YYYY-MM-DD` (through the end of that day, UTC) or RFC 3339.
pub fn end(text: &str) -> Result<prost_types::Timestamp, String> {
    lhcie_config::policy::end_of(text).map(time_to_wire)
}
