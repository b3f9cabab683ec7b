//! Whom a FHIR payload is about, read from the bytes themselves: every NHS
//! number it names (any `{system, value}` with the NHS number system: a
//! Patient's identifier, a reference by identifier, a contained resource)
//! and how many Patient resources it carries. The hub compares these with
//! the patient an envelope was decided for, so that the bytes a recipient
//! is handed are about that patient and no one else.

use serde_json::Value;

use crate::limits::{ReadLimits, parse_json};
use crate::outcome::Rejection;
use crate::systems::NHS_NUMBER_SYSTEM;

/// What a payload says about its patients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientsNamed {
    /// Every NHS number named, as written (not validated), each once, in
    /// order of appearance.
    pub nhs_numbers: Vec<String>,
    /// The Patient resources carried (one per distinct `id`; each without
    /// an id counts alone).
    pub patient_resources: usize,
    /// Patient resources with no NHS number identifier.
    pub patients_without_nhs_number: usize,
}

/// Reads the patients a FHIR JSON payload names, within `limits`.
pub fn patients_named(bytes: &[u8], limits: &ReadLimits) -> Result<PatientsNamed, Rejection> {
    let value = parse_json(bytes, limits)?;
    let mut found = Walk::default();
    found.visit(&value);
    Ok(PatientsNamed {
        nhs_numbers: found.nhs_numbers,
        patient_resources: found.patient_ids.len() + found.patients_without_id,
        patients_without_nhs_number: found.patients_without_nhs_number,
    })
}

#[derive(Default)]
struct Walk {
    nhs_numbers: Vec<String>,
    patient_ids: Vec<String>,
    patients_without_id: usize,
    patients_without_nhs_number: usize,
}

impl Walk {
    fn visit(&mut self, value: &Value) {
        match value {
            Value::Object(object) => {
                if object.get("resourceType").and_then(Value::as_str) == Some("Patient") {
                    match object.get("id").and_then(Value::as_str) {
                        Some(id) if !self.patient_ids.iter().any(|seen| seen == id) => {
                            self.patient_ids.push(id.to_owned());
                        }
                        Some(_) => {}
                        None => self.patients_without_id += 1,
                    }
                    if !names_nhs_number(object.get("identifier")) {
                        self.patients_without_nhs_number += 1;
                    }
                }
                if object.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM)
                    && let Some(number) = object.get("value").and_then(Value::as_str)
                {
                    let compact: String = number.chars().filter(|c| *c != ' ').collect();
                    if !self.nhs_numbers.contains(&compact) {
                        self.nhs_numbers.push(compact);
                    }
                }
                object.values().for_each(|v| self.visit(v));
            }
            Value::Array(items) => items.iter().for_each(|v| self.visit(v)),
            _ => {}
        }
    }
}

/// Whether a Patient's `identifier` list has an NHS number.
fn names_nhs_number(identifiers: Option<&Value>) -> bool {
    identifiers.and_then(Value::as_array).is_some_and(|list| {
        list.iter().any(|identifier| {
            identifier.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(json: &str) -> PatientsNamed {
        patients_named(json.as_bytes(), &ReadLimits::default()).unwrap()
    }

    fn patient(id: &str, nhs: &str) -> String {
        format!(
            r#"{{"resource": {{"resourceType": "Patient", "id": "{id}", "identifier": [{{"system": "{NHS_NUMBER_SYSTEM}", "value": "{nhs}"}}]}}}}"#
        )
    }

    #[test]
    fn the_subject_is_found_wherever_it_is_named() {
        let bundle = format!(
            r#"{{"resourceType": "Bundle", "entry": [{}, {{"resource": {{"resourceType": "Composition", "subject": {{"identifier": {{"system": "{NHS_NUMBER_SYSTEM}", "value": "943 476 5919"}}}}}}}}]}}"#,
            patient("p1", "9434765919")
        );
        assert_eq!(
            named(&bundle),
            PatientsNamed {
                nhs_numbers: vec!["9434765919".into()],
                patient_resources: 1,
                patients_without_nhs_number: 0,
            }
        );
    }

    #[test]
    fn a_second_patient_is_counted_and_its_number_found() {
        let bundle = format!(
            r#"{{"resourceType": "Bundle", "entry": [{}, {}, {}]}}"#,
            patient("p1", "9434765919"),
            patient("p2", "9000000009"),
            patient("p1", "9434765919"),
        );
        let found = named(&bundle);
        assert_eq!(found.patient_resources, 2, "p1 twice is one patient");
        assert_eq!(found.nhs_numbers, vec!["9434765919", "9000000009"]);
        assert_eq!(found.patients_without_nhs_number, 0);
        let anonymous = r#"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "x"}}]}"#;
        assert_eq!(named(anonymous).patients_without_nhs_number, 1);
    }

    #[test]
    fn what_is_not_json_is_refused() {
        assert!(patients_named(b"MSH|^~\\&|", &ReadLimits::default()).is_err());
    }
}
