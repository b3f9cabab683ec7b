//! HL7 data types shared by the bodies: CE/CWE codings, XCN practitioners,
//! PL locations, CX/EI identifiers, PV1-2 patient class, NTE notes.

use lhcie_model::{Coding, Identifier, Location, OdsCode, PatientClass, Practitioner};

use super::fields::{Seg, comp, sub};
use super::patient::xpn;
use crate::{Message, Repetition};

/// The code system URI of an HL7 v2 coding system name (CE-3 / CWE-3).
pub(crate) fn coding_system(name: Option<&str>) -> String {
    match name.map(|n| n.to_ascii_uppercase()) {
        Some(n) if matches!(n.as_str(), "SCT" | "SNOMED CT" | "SNOMED-CT" | "SNOMEDCT") => {
            lhcie_model::SNOMED_CT_SYSTEM.into()
        }
        Some(n) if n == "LN" || n == "LOINC" => "http://loinc.org".into(),
        Some(n) if matches!(n.as_str(), "I10" | "ICD10" | "ICD-10") => {
            "http://hl7.org/fhir/sid/icd-10".into()
        }
        Some(n) if matches!(n.as_str(), "OPCS4" | "OPCS-4") => {
            "http://fhir.nhs.net/CodeSystem/opcs-4".into()
        }
        Some(_) => format!("urn:lhcie:hl7v2:coding-system:{}", name.unwrap_or_default()),
        None => "urn:lhcie:hl7v2:local-code".into(),
    }
}

/// The system URI for an HL7 table.
pub(crate) fn hl7_table(n: u16) -> String {
    format!("http://terminology.hl7.org/CodeSystem/v2-{n:04}")
}

/// A CE/CWE coding: the identifier (component 1) or, failing that, the
/// alternate identifier (component 4).
pub(crate) fn coding(rep: &Repetition) -> Option<Coding> {
    if let Some(code) = comp(rep, 1) {
        return Some(Coding {
            system: coding_system(comp(rep, 3)),
            code: code.to_owned(),
            display: comp(rep, 2).map(str::to_owned),
        });
    }
    comp(rep, 4).map(|code| Coding {
        system: coding_system(comp(rep, 6)),
        code: code.to_owned(),
        display: comp(rep, 5).map(str::to_owned),
    })
}

/// An XCN practitioner: id, name, assigning authority (XCN-9) as the
/// identifier's system.
pub(crate) fn practitioner(rep: &Repetition) -> Option<Practitioner> {
    // XCN-2.. is an XPN shifted by one component.
    let name = {
        let family = sub(rep, 2, 1).map(str::to_owned);
        let given: Vec<String> = [comp(rep, 3), comp(rep, 4)]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect();
        let n = lhcie_model::HumanName {
            family,
            given,
            prefix: comp(rep, 6).map(str::to_owned),
            suffix: comp(rep, 5).map(str::to_owned),
        };
        (n != lhcie_model::HumanName::default()).then_some(n)
    };
    let identifiers = comp(rep, 1)
        .map(|id| Identifier {
            system: sub(rep, 9, 1)
                .map(str::to_owned)
                .unwrap_or_else(|| "urn:lhcie:hl7v2:local-practitioner".into()),
            value: id.to_owned(),
            type_code: comp(rep, 13).map(str::to_owned),
        })
        .into_iter()
        .collect::<Vec<_>>();
    if name.is_none() && identifiers.is_empty() {
        return None;
    }
    Some(Practitioner {
        name,
        identifiers,
        role: None,
    })
}

/// A practitioner from an XPN name only (e.g. PRD-2).
pub(crate) fn practitioner_from_xpn(rep: &Repetition) -> Option<Practitioner> {
    xpn(rep).map(|name| Practitioner {
        name: Some(name),
        identifiers: Vec::new(),
        role: None,
    })
}

/// A PL location: point of care, room, bed, facility (organisation if an
/// ODS code), description (PL-9).
pub(crate) fn location(rep: &Repetition) -> Option<Location> {
    let facility = sub(rep, 4, 1);
    let loc = Location {
        organisation: facility.and_then(|f| OdsCode::parse(f).ok()),
        site: facility.map(str::to_owned),
        point_of_care: comp(rep, 1).map(str::to_owned),
        room: comp(rep, 2).map(str::to_owned),
        bed: comp(rep, 3).map(str::to_owned),
        description: comp(rep, 9).map(str::to_owned),
    };
    (loc != Location::default()).then_some(loc)
}

/// A CX identifier with a given type code when CX-5 is empty.
pub(crate) fn cx_identifier(
    rep: &Repetition,
    default_system: &str,
    default_type: &str,
) -> Option<Identifier> {
    let value = comp(rep, 1)?;
    Some(Identifier {
        system: sub(rep, 4, 1)
            .or_else(|| sub(rep, 4, 2))
            .unwrap_or(default_system)
            .to_owned(),
        value: value.to_owned(),
        type_code: Some(comp(rep, 5).unwrap_or(default_type).to_owned()),
    })
}

/// An EI identifier (entity id ^ namespace ^ universal id ^ type).
pub(crate) fn ei_identifier(
    rep: &Repetition,
    default_system: &str,
    type_code: &str,
) -> Option<Identifier> {
    let value = comp(rep, 1)?;
    Some(Identifier {
        system: comp(rep, 2)
            .or_else(|| comp(rep, 3))
            .unwrap_or(default_system)
            .to_owned(),
        value: value.to_owned(),
        type_code: Some(type_code.to_owned()),
    })
}

/// PV1-2 (HL7 table 0004, with the NHS additions D day case and C
/// community... read as given here).
pub(crate) fn patient_class(message: &Message) -> Option<PatientClass> {
    let pv1 = Seg::first(message, "PV1")?;
    Some(match pv1.get(2, 1)?.to_ascii_uppercase().as_str() {
        "I" => PatientClass::Inpatient,
        "O" | "R" => PatientClass::Outpatient,
        "E" => PatientClass::Emergency,
        "P" => PatientClass::PreAdmission,
        "D" => PatientClass::DayCase,
        "N" | "U" => return None,
        _ => PatientClass::Other,
    })
}

/// The NTE segments directly after segment number `index` (0-based index
/// into all segments), their NTE-3 texts.
pub(crate) fn notes_after(message: &Message, index: usize) -> Vec<String> {
    message
        .all_segments()
        .iter()
        .skip(index + 1)
        .take_while(|s| s.id() == "NTE")
        .flat_map(|s| {
            s.field(3)
                .map(|f| f.repetitions())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| comp(r, 1).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}
