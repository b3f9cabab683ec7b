//! Identifiers and the people and organisations they name: NHS numbers
//! (modulus 11), ODS codes, patients, practitioners, organisations.
//!
//! Identifier systems are compared exactly. A system that is the NHS
//! number or ODS system with different case (`https://fhir.nhs.uk/id/...`),
//! scheme (`http://`), a trailing slash or the British spelling
//! `ods-organisation-code` is refused (422 `value` at `.system`) rather
//! than folded: the national specifications publish one spelling, and a
//! system that differs is a sender bug worth fixing at source, while
//! silently treating an unknown system as a local identifier would lose the
//! NHS number or the sender.

use lhcie_model::{
    Coding, Gender, HumanName, Identifier, NhsNumber, OdsCode, PatientIdentity, Practitioner,
};

use crate::datetime;
use crate::node::Node;
use crate::outcome::Rejection;
use crate::systems::*;

/// What an identifier system is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemKind {
    NhsNumber,
    Ods,
    Other,
}

fn loose(system: &str) -> String {
    let lower = system.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    rest.trim_end_matches('/')
        .replace("ods-organisation-code", "ods-organization-code")
}

/// Classifies a system, refusing near misses of the national systems.
pub(crate) fn system_kind(system: &str, path: &str) -> Result<SystemKind, Rejection> {
    if system == NHS_NUMBER_SYSTEM {
        return Ok(SystemKind::NhsNumber);
    }
    if system == ODS_ORGANISATION_SYSTEM {
        return Ok(SystemKind::Ods);
    }
    let l = loose(system);
    if l == "fhir.nhs.uk/id/nhs-number" {
        return Err(Rejection::value(
            path,
            format!("NHS number identifier system must be exactly {NHS_NUMBER_SYSTEM}"),
        ));
    }
    if l == "fhir.nhs.uk/id/ods-organization-code" {
        return Err(Rejection::value(
            path,
            format!("ODS identifier system must be exactly {ODS_ORGANISATION_SYSTEM}"),
        ));
    }
    Ok(SystemKind::Other)
}

/// An NHS number's value, validated.
pub(crate) fn nhs_number(identifier: &Node<'_>) -> Result<NhsNumber, Rejection> {
    let value = identifier.req_str("value")?;
    NhsNumber::parse(value).map_err(|e| Rejection::value(&identifier.at("value"), e.to_string()))
}

/// An ODS code's value, validated.
pub(crate) fn ods_code(identifier: &Node<'_>) -> Result<OdsCode, Rejection> {
    let value = identifier.req_str("value")?;
    OdsCode::parse(value).map_err(|_| {
        Rejection::value(
            &identifier.at("value"),
            "not an ODS code (3 to 10 upper-case letters and digits)",
        )
    })
}

/// The ODS code of an `Identifier` node, if its system is ODS.
pub(crate) fn ods_identifier(identifier: &Node<'_>) -> Result<Option<OdsCode>, Rejection> {
    let Some(system) = identifier.str("system")? else {
        return Ok(None);
    };
    match system_kind(system, &identifier.at("system"))? {
        SystemKind::Ods => ods_code(identifier).map(Some),
        _ => Ok(None),
    }
}

/// The NHS number of an `Identifier` node, if its system is the NHS number.
pub(crate) fn nhs_identifier(identifier: &Node<'_>) -> Result<Option<NhsNumber>, Rejection> {
    let Some(system) = identifier.str("system")? else {
        return Ok(None);
    };
    match system_kind(system, &identifier.at("system"))? {
        SystemKind::NhsNumber => nhs_number(identifier).map(Some),
        _ => Ok(None),
    }
}

/// The ODS code of an Organization resource (first ODS identifier).
pub(crate) fn organisation_ods(org: &Node<'_>) -> Result<Option<OdsCode>, Rejection> {
    for identifier in org.arr("identifier")? {
        if let Some(code) = ods_identifier(&identifier)? {
            return Ok(Some(code));
        }
    }
    Ok(None)
}

/// A `Coding` node.
pub(crate) fn coding(node: &Node<'_>) -> Result<Option<Coding>, Rejection> {
    let (Some(system), Some(code)) = (node.str("system")?, node.str("code")?) else {
        return Ok(None);
    };
    Ok(Some(Coding {
        system: system.to_owned(),
        code: code.to_owned(),
        display: node.str("display")?.map(str::to_owned),
    }))
}

/// The first coding of a `CodeableConcept` child, preferring SNOMED CT.
pub(crate) fn concept(parent: &Node<'_>, name: &str) -> Result<Option<Coding>, Rejection> {
    match parent.obj(name)? {
        Some(cc) => concept_of(&cc),
        None => Ok(None),
    }
}

/// The first coding of a `CodeableConcept` node, preferring SNOMED CT.
pub(crate) fn concept_of(cc: &Node<'_>) -> Result<Option<Coding>, Rejection> {
    let mut first = None;
    for c in cc.arr("coding")? {
        if let Some(coding) = coding(&c)? {
            if coding.system == SNOMED_CT_SYSTEM {
                return Ok(Some(coding));
            }
            first.get_or_insert(coding);
        }
    }
    Ok(first)
}

/// A `HumanName` node.
pub(crate) fn human_name(node: &Node<'_>) -> Result<HumanName, Rejection> {
    Ok(HumanName {
        family: node.str("family")?.map(str::to_owned),
        given: node
            .str_arr("given")?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        prefix: node.str_arr("prefix")?.first().map(|s| (*s).to_owned()),
        suffix: node.str_arr("suffix")?.first().map(|s| (*s).to_owned()),
    })
}

/// The name to use from a list: `official`, else `usual`, else the first.
pub(crate) fn preferred_name(resource: &Node<'_>) -> Result<Option<HumanName>, Rejection> {
    let names = resource.arr("name")?;
    let mut chosen = None;
    for rank in ["official", "usual"] {
        if chosen.is_none() {
            for n in &names {
                if n.str("use")? == Some(rank) {
                    chosen = Some(n.clone());
                    break;
                }
            }
        }
    }
    chosen
        .or_else(|| names.first().cloned())
        .map(|n| human_name(&n))
        .transpose()
}

/// A non-national `Identifier` node as a canonical identifier.
pub(crate) fn local_identifier(node: &Node<'_>) -> Result<Option<Identifier>, Rejection> {
    let (Some(system), Some(value)) = (node.str("system")?, node.str("value")?) else {
        return Ok(None);
    };
    let mut type_code = None;
    if let Some(t) = node.obj("type")? {
        for c in t.arr("coding")? {
            if c.str("system")? == Some(V2_IDENTIFIER_TYPE) {
                type_code = c.str("code")?.map(str::to_owned);
            }
        }
    }
    Ok(Some(Identifier {
        system: system.to_owned(),
        value: value.to_owned(),
        type_code,
    }))
}

/// A Practitioner resource.
pub(crate) fn practitioner(node: &Node<'_>) -> Result<Practitioner, Rejection> {
    let mut identifiers = Vec::new();
    for i in node.arr("identifier")? {
        if let Some(id) = local_identifier(&i)? {
            identifiers.push(id);
        }
    }
    Ok(Practitioner {
        name: preferred_name(node)?,
        identifiers,
        role: None,
    })
}

/// NHS Data Dictionary verification codes and their UK Core names.
pub(crate) const VERIFICATION: [(&str, &str); 8] = [
    ("01", "number-present-and-verified"),
    ("02", "number-present-but-not-traced"),
    ("03", "trace-required"),
    ("04", "trace-attempted"),
    ("05", "trace-needs-to-be-resolved"),
    ("06", "trace-in-progress"),
    ("07", "number-not-present-and-trace-not-required"),
    ("08", "trace-postponed"),
];

fn verification(identifier: &Node<'_>) -> Result<Option<String>, Rejection> {
    for ext in identifier.arr("extension")? {
        if ext.str("url")? == Some(NHS_VERIFICATION_EXTENSION)
            && let Some(cc) = ext.obj("valueCodeableConcept")?
        {
            for c in cc.arr("coding")? {
                if let Some(code) = c.str("code")? {
                    let dd = VERIFICATION
                        .iter()
                        .find(|(_, name)| *name == code)
                        .map_or(code, |(dd, _)| dd);
                    return Ok(Some(dd.to_owned()));
                }
            }
        }
    }
    Ok(None)
}

/// A Patient resource as a canonical identity. `gp` resolves a
/// `generalPractitioner` reference to an ODS code (inside a Bundle).
pub(crate) fn patient(
    node: &Node<'_>,
    gp: &dyn Fn(&Node<'_>) -> Result<Option<OdsCode>, Rejection>,
) -> Result<PatientIdentity, Rejection> {
    let mut out = PatientIdentity::default();
    for identifier in node.arr("identifier")? {
        let Some(system) = identifier.str("system")? else {
            continue;
        };
        match system_kind(system, &identifier.at("system"))? {
            SystemKind::NhsNumber => {
                let number = nhs_number(&identifier)?;
                if out.nhs_number.is_some_and(|n| n != number) {
                    return Err(Rejection::value(
                        &identifier.at("value"),
                        "a second, different NHS number",
                    ));
                }
                out.nhs_number = Some(number);
                out.nhs_number_verification = verification(&identifier)?;
            }
            SystemKind::Ods => {}
            SystemKind::Other => {
                if let Some(id) = local_identifier(&identifier)? {
                    out.local_identifiers.push(id);
                }
            }
        }
    }
    out.name = preferred_name(node)?;
    out.birth_date = datetime::date(node, "birthDate")?;
    out.gender = match node.str("gender")? {
        None => None,
        Some("male") => Some(Gender::Male),
        Some("female") => Some(Gender::Female),
        Some("other") => Some(Gender::Other),
        Some("unknown") => Some(Gender::Unknown),
        Some(_) => {
            return Err(Rejection::value(
                &node.at("gender"),
                "not an AdministrativeGender code",
            ));
        }
    };
    for address in node.arr("address")? {
        if let Some(pc) = address.str("postalCode")? {
            out.postcode = Some(pc.to_owned());
            break;
        }
    }
    for g in node.arr("generalPractitioner")? {
        if let Some(code) = gp(&g)? {
            out.registered_gp_practice = Some(code);
            break;
        }
    }
    out.deceased_at = datetime::date_time(node, "deceasedDateTime")?;
    if let Some(meta) = node.obj("meta")? {
        for s in meta.arr("security")? {
            if s.str("system")? == Some(V3_CONFIDENTIALITY) && s.str("code")? == Some("R") {
                out.restricted = true;
            }
        }
    }
    if out.nhs_number.is_none() && out.local_identifiers.is_empty() {
        return Err(Rejection::required(
            &node.at("identifier"),
            "the patient needs an NHS number or a local identifier",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::IssueType;
    use serde_json::json;

    #[test]
    fn near_miss_systems_are_refused_exact_ones_accepted() {
        for bad in [
            "https://fhir.nhs.uk/id/ods-organization-code",
            "http://fhir.nhs.uk/Id/ods-organization-code",
            "https://fhir.nhs.uk/Id/ods-organisation-code",
            "https://fhir.nhs.uk/Id/nhs-number/",
            "HTTPS://FHIR.NHS.UK/ID/NHS-NUMBER",
        ] {
            let e = system_kind(bad, "X.system").unwrap_err();
            assert_eq!((e.status, e.issue().code), (422, IssueType::Value), "{bad}");
        }
        assert_eq!(
            system_kind(NHS_NUMBER_SYSTEM, "x").unwrap(),
            SystemKind::NhsNumber
        );
        assert_eq!(
            system_kind(ODS_ORGANISATION_SYSTEM, "x").unwrap(),
            SystemKind::Ods
        );
        assert_eq!(
            system_kind("https://fhir.nhs.uk/Id/dos-service-id", "x").unwrap(),
            SystemKind::Other
        );
    }

    #[test]
    fn bad_nhs_number_is_reported_without_its_value() {
        let v = json!({"identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "3478526985"}]});
        let e = patient(&Node::root(&v, "Patient"), &|_| Ok(None)).unwrap_err();
        assert_eq!(
            e.issue().expression.as_deref(),
            Some("Patient.identifier[0].value")
        );
        assert!(!e.to_string().contains("3478526985"));
        assert!(!format!("{e:?}").contains("3478526985"));
    }
}
