//! The patient a decision is made for must be the patient in the bytes
//! delivered. The hub decides on the canonical envelope's NHS number, but a
//! recipient in the same format is handed the `original` unchanged; an
//! adapter (buggy or hostile) could otherwise get a permit for patient A
//! while the original carries patient B's record. So, for the formats the
//! hub can read, the patients are read again from the original itself, and
//! the envelope is refused unless:
//!
//! - every NHS number the original names is the envelope's (none at all
//!   when the envelope names none);
//! - HL7 v2 (ER7): every PID segment names the envelope's NHS number in
//!   PID-3;
//! - FHIR JSON: at most one Patient resource is carried, and it names the
//!   envelope's NHS number.
//!
//! Other media types (PDF, CDA, …) carry no structure the hub reads; they
//! are decided on the envelope alone. A refusal names the field, never a
//! number.

use lhcie_fhir_r4::ReadLimits;
use lhcie_hub_core::{RejectReason, Rejection};
use lhcie_model::{Envelope, MEDIA_TYPE_FHIR_JSON, MEDIA_TYPE_HL7V2_ER7};

/// `None` if the original (if any) is about the envelope's patient only.
pub fn check(envelope: &Envelope) -> Option<Rejection> {
    let original = envelope.original.as_ref()?;
    let expected = envelope
        .patient
        .as_ref()
        .and_then(|p| p.nhs_number.as_ref())
        .map(|n| n.as_str());
    let problem = match original.media_type.as_str() {
        MEDIA_TYPE_HL7V2_ER7 => hl7v2(&original.content, expected),
        MEDIA_TYPE_FHIR_JSON => fhir(&original.content, expected),
        _ => None,
    }?;
    Some(Rejection::new(
        RejectReason::InvalidEnvelope,
        format!("original: {problem}"),
    ))
}

fn hl7v2(bytes: &[u8], expected: Option<&str>) -> Option<String> {
    let message = match lhcie_hl7v2::parse_message(bytes) {
        Ok(message) => message,
        Err(error) => return Some(format!("not a readable HL7 v2 message ({})", error.kind())),
    };
    let pids = lhcie_hl7v2::nhs_numbers_in_pid(&message);
    let all: Vec<&str> = pids.iter().flatten().map(String::as_str).collect();
    if !names_only(&all, expected) {
        return Some(
            "an NHS number in PID-3 is not the one this envelope names (the decision was made for that patient)"
                .into(),
        );
    }
    if let Some(expected) = expected
        && !pids.iter().all(|pid| pid.iter().any(|n| n == expected))
    {
        return Some("a PID segment does not name the NHS number this envelope names".into());
    }
    None
}

fn fhir(bytes: &[u8], expected: Option<&str>) -> Option<String> {
    let found = match lhcie_fhir_r4::patients_named(bytes, &ReadLimits::default()) {
        Ok(found) => found,
        Err(rejection) => return Some(format!("not a readable FHIR resource ({rejection})")),
    };
    if found.patient_resources > 1 {
        return Some(format!(
            "carries {} Patient resources; only the patient this envelope names may be carried",
            found.patient_resources
        ));
    }
    let named: Vec<&str> = found.nhs_numbers.iter().map(String::as_str).collect();
    if !names_only(&named, expected) {
        return Some(
            "an NHS number identifier is not the one this envelope names (the decision was made for that patient)"
                .into(),
        );
    }
    if expected.is_some() && found.patients_without_nhs_number > 0 {
        return Some(
            "its Patient resource does not name the NHS number this envelope names".into(),
        );
    }
    None
}

/// Whether `named` holds no number but `expected`.
fn names_only(named: &[&str], expected: Option<&str>) -> bool {
    named.iter().all(|n| Some(*n) == expected)
}

#[cfg(test)]
mod tests {
    use lhcie_model::{Bytes, OriginalPayload, examples};

    use super::*;

    const NHS: &str = "9434765919";
    const OTHER: &str = "9000000009";

    fn with_original(media_type: &str, content: String) -> Envelope {
        let mut envelope = examples::discharge_summary();
        assert_eq!(
            envelope
                .patient
                .as_ref()
                .unwrap()
                .nhs_number
                .unwrap()
                .as_str(),
            NHS
        );
        envelope.original = Some(OriginalPayload {
            media_type: media_type.into(),
            content: Bytes::from(content),
        });
        envelope
    }

    fn hl7(pids: &[&str]) -> Envelope {
        let mut text =
            String::from("MSH|^~\\&|PAS|RYJ|HUB|LHCIE|20261120021900||ADT^A01|42|P|2.4\r");
        for nhs in pids {
            text.push_str(&format!(
                "PID|1||{nhs}^^^NHS^NH~L123^^^RYJ^MR||TEST^PATIENT\r"
            ));
        }
        with_original(MEDIA_TYPE_HL7V2_ER7, text)
    }

    fn fhir_bundle(patients: &[(&str, Option<&str>)]) -> Envelope {
        let entries: Vec<String> = patients
            .iter()
            .map(|(id, nhs)| {
                let identifier = nhs.map_or(String::new(), |n| {
                    format!(
                        r#", "identifier": [{{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "{n}"}}]"#
                    )
                });
                format!(r#"{{"resource": {{"resourceType": "Patient", "id": "{id}"{identifier}}}}}"#)
            })
            .collect();
        with_original(
            MEDIA_TYPE_FHIR_JSON,
            format!(
                r#"{{"resourceType": "Bundle", "type": "message", "entry": [{}]}}"#,
                entries.join(",")
            ),
        )
    }

    fn refusal(envelope: &Envelope) -> String {
        check(envelope).expect("refused").detail
    }

    #[test]
    fn an_original_about_the_envelopes_patient_passes() {
        assert_eq!(check(&hl7(&[NHS])), None);
        assert_eq!(check(&fhir_bundle(&[("p1", Some(NHS))])), None);
        assert_eq!(check(&examples::discharge_summary()), None, "no original");
    }

    #[test]
    fn an_hl7_original_about_another_patient_is_refused() {
        let detail = refusal(&hl7(&[OTHER]));
        assert!(detail.contains("PID-3"), "{detail}");
        assert!(!detail.contains(OTHER) && !detail.contains(NHS), "{detail}");
        assert!(refusal(&hl7(&[NHS, OTHER])).contains("PID-3"));
        let unnamed = refusal(&hl7(&[""]));
        assert!(unnamed.contains("does not name"), "{unnamed}");
    }

    #[test]
    fn a_fhir_original_with_a_second_patient_or_another_patient_is_refused() {
        let second = refusal(&fhir_bundle(&[("p1", Some(NHS)), ("p2", Some(OTHER))]));
        assert!(second.contains("2 Patient resources"), "{second}");
        let second_unnamed = refusal(&fhir_bundle(&[("p1", Some(NHS)), ("p2", None)]));
        assert!(
            second_unnamed.contains("2 Patient resources"),
            "{second_unnamed}"
        );
        let other = refusal(&fhir_bundle(&[("p1", Some(OTHER))]));
        assert!(other.contains("not the one this envelope names"), "{other}");
        let unnamed = refusal(&fhir_bundle(&[("p1", None)]));
        assert!(unnamed.contains("does not name"), "{unnamed}");
    }

    #[test]
    fn an_unreadable_original_in_a_readable_format_is_refused() {
        let mut envelope = hl7(&[NHS]);
        envelope.original.as_mut().unwrap().content = Bytes::from_static(b"not HL7");
        assert!(refusal(&envelope).contains("not a readable HL7 v2 message"));
        let mut envelope = fhir_bundle(&[]);
        envelope.original.as_mut().unwrap().content = Bytes::from_static(b"{");
        assert!(refusal(&envelope).contains("not a readable FHIR resource"));
    }

    #[test]
    fn other_media_types_are_decided_on_the_envelope() {
        let envelope = with_original("application/pdf", "%PDF-1.7".into());
        assert_eq!(check(&envelope), None);
    }
}
