//! Sample envelopes, one per category, for tests, documentation and the
//! demo. All patients are synthetic (NHS numbers in the 9 test range); the
//! organisations are real London trusts and practices.

use bytes::Bytes;
use time::macros::{date, datetime};

use crate::*;

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).expect("example ODS code")
}

fn exchange(id: &str) -> ExchangeId {
    ExchangeId::parse(id).expect("example exchange id")
}

/// A synthetic patient: NHS number 9434765919, registered at Ampthill
/// Practice (F83006), Camden.
pub fn patient() -> PatientIdentity {
    PatientIdentity {
        nhs_number: Some(NhsNumber::parse("9434765919").expect("valid test number")),
        nhs_number_verification: Some("01".into()),
        local_identifiers: vec![Identifier {
            system: "https://fhir.imperial.nhs.uk/Id/mrn".into(),
            value: "MRN0001234".into(),
            type_code: Some("MR".into()),
        }],
        name: Some(HumanName {
            family: Some("TESTPATIENT".into()),
            given: vec!["ALEX".into()],
            prefix: Some("Mx".into()),
            suffix: None,
        }),
        birth_date: Some(date!(1961 - 07 - 14)),
        gender: Some(Gender::Unknown),
        postcode: Some("NW1 1TN".into()),
        registered_gp_practice: Some(ods("F83006")),
        deceased_at: None,
        restricted: false,
    }
}

fn sender_imperial() -> Party {
    Party {
        ods_code: ods("RYJ"),
        exchange_id: exchange("nwl-imperial"),
        sending_system: Some("CERNER-MILLENNIUM".into()),
    }
}

fn to(code: &str) -> Addressing {
    Addressing {
        recipients: vec![Recipient {
            ods_code: ods(code),
            intent: RecipientIntent::ForAction,
        }],
        rule: None,
    }
}

fn author_imperial() -> Author {
    Author {
        practitioner: Some(Practitioner {
            name: Some(HumanName {
                family: Some("EXAMPLE".into()),
                given: vec!["SAM".into()],
                prefix: Some("Dr".into()),
                suffix: None,
            }),
            identifiers: vec![Identifier {
                system: "https://fhir.hl7.org.uk/Id/gmc-number".into(),
                value: "C1234567".into(),
                type_code: None,
            }],
            role: None,
        }),
        organisation: Some(ods("RYJ")),
    }
}

fn base(message_id: &str, category: Category, addressing: Addressing, body: Body) -> Envelope {
    Envelope {
        message_id: MessageId::parse(message_id).expect("example message id"),
        correlation_id: None,
        created_at: datetime!(2026-11-20 14:30:00 UTC),
        sender: sender_imperial(),
        addressing,
        purpose: PurposeOfUse::DirectCare,
        category,
        patient: Some(patient()),
        body,
        original: None,
        acknowledgements_requested: AcknowledgementRequest {
            infrastructure: true,
            business: false,
        },
        sender_reference: None,
    }
}

fn document(
    document_id: &str,
    snomed: (&str, &str),
    title: &str,
    section: (&str, &str),
) -> ClinicalDocument {
    ClinicalDocument {
        document_id: document_id.into(),
        version: 1,
        replaces: None,
        document_type: Coding::snomed(snomed.0, snomed.1),
        title: title.into(),
        author: Some(author_imperial()),
        status: DocumentStatus::Final,
        authored_at: Some(datetime!(2026-11-20 14:00:00 UTC)),
        encounter: Some(Identifier {
            system: "https://fhir.imperial.nhs.uk/Id/encounter".into(),
            value: "ENC778899".into(),
            type_code: Some("VN".into()),
        }),
        sections: vec![DocumentSection {
            code: None,
            title: section.0.into(),
            text: section.1.into(),
            media_type: "text/plain".into(),
        }],
        attachments: vec![],
    }
}

/// A discharge summary from Imperial (RYJ, NWL) to the Royal Free (RAL, NCL),
/// version 2 replacing version 1, with a PDF rendering attached.
pub fn discharge_summary() -> Envelope {
    let mut doc = document(
        "DS-RYJ-2026-000123",
        ("373942005", "Discharge summary"),
        "Discharge summary: stroke unit",
        (
            "Diagnoses",
            "Ischaemic stroke, thrombolysed. Discharged to home trust for rehabilitation.",
        ),
    );
    doc.version = 2;
    doc.replaces = Some(DocumentVersionRef {
        document_id: doc.document_id.clone(),
        version: 1,
    });
    doc.attachments.push(Attachment::inline(
        "application/pdf",
        Some("Discharge summary (PDF)".into()),
        Bytes::from_static(b"%PDF-1.4\n% synthetic example\n"),
    ));
    let mut envelope = base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a01",
        Category::DischargeSummary,
        to("RAL"),
        Body::Document(doc),
    );
    envelope.original = Some(OriginalPayload {
        media_type: MEDIA_TYPE_FHIR_JSON.into(),
        content: Bytes::from_static(br#"{"resourceType":"Bundle","type":"message"}"#),
    });
    envelope.acknowledgements_requested.business = true;
    envelope
}

/// A repatriation request from Imperial to the Royal Free: move the patient
/// back to their home trust.
pub fn repatriation_request() -> Envelope {
    let mut envelope = base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a02",
        Category::RepatriationRequest,
        to("RAL"),
        Body::Document(document(
            "REPAT-RYJ-2026-000045",
            ("3457005", "Patient referral"),
            "Repatriation request: major trauma",
            (
                "Reason for repatriation",
                "Medically fit for transfer to home trust.",
            ),
        )),
    );
    envelope.purpose = PurposeOfUse::CareManagement;
    envelope
}

/// A cancer document (MDT outcome) to the Royal Marsden (RPY).
pub fn cancer_document() -> Envelope {
    base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a03",
        Category::CancerDocument,
        to("RPY"),
        Body::Document(document(
            "MDT-RYJ-2026-000777",
            ("371531000", "Report of clinical encounter"),
            "Lung cancer MDT outcome",
            ("Outcome", "Refer for oncology opinion."),
        )),
    )
}

/// An end-of-life care plan shared with the patient's GP practice (F83006).
pub fn end_of_life_care_plan() -> Envelope {
    base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a04",
        Category::EndOfLifeCarePlan,
        to("F83006"),
        Body::Document(document(
            "EOL-RYJ-2026-000010",
            ("736373009", "End of life care plan"),
            "Coordinate my care plan",
            ("Preferred place of death", "Home."),
        )),
    )
}

/// An emergency department attendance at Imperial, routed by rule to the
/// patient's registered GP.
pub fn care_event_attendance() -> Envelope {
    let body = Body::CareEvent(CareEvent {
        kind: CareEventKind::Attendance,
        occurred_at: Some(datetime!(2026-11-20 02:17:00 UTC)),
        recorded_at: Some(datetime!(2026-11-20 02:19:00 UTC)),
        location: Some(Location {
            organisation: Some(ods("RYJ")),
            site: Some("ST MARY'S HOSPITAL".into()),
            point_of_care: Some("EMERGENCY DEPARTMENT".into()),
            ..Default::default()
        }),
        prior_location: None,
        encounter: Some(Identifier {
            system: "https://fhir.imperial.nhs.uk/Id/encounter".into(),
            value: "ED20261120-0042".into(),
            type_code: Some("VN".into()),
        }),
        patient_class: Some(PatientClass::Emergency),
        attending: None,
        reason: None,
        discharge_destination: None,
        merged_from: None,
    });
    let mut envelope = base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a05",
        Category::CareEvent,
        Addressing {
            recipients: vec![],
            rule: Some(RoutingRule::RegisteredGp),
        },
        body,
    );
    envelope.original = Some(OriginalPayload {
        media_type: MEDIA_TYPE_HL7V2_ER7.into(),
        content: Bytes::from_static(
            b"MSH|^~\\&|CERNER|RYJ|HUB|LHCIE|20261120021900||ADT^A04|0042|P|2.4\r",
        ),
    });
    envelope
}

/// A potassium result from Imperial's laboratory to the GP practice.
pub fn result() -> Envelope {
    base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a06",
        Category::Result,
        to("F83006"),
        Body::Result(DiagnosticReport {
            report_id: "LAB-RYJ-26-555001".into(),
            code: Coding {
                system: "http://loinc.org".into(),
                code: "24326-1".into(),
                display: Some("Electrolytes panel".into()),
            },
            status: ResultStatus::Final,
            effective_at: Some(datetime!(2026-11-20 08:00:00 UTC)),
            issued_at: Some(datetime!(2026-11-20 11:42:00 UTC)),
            performer: Some(author_imperial()),
            order: None,
            observations: vec![Observation {
                code: Coding {
                    system: "http://loinc.org".into(),
                    code: "2823-3".into(),
                    display: Some("Potassium".into()),
                },
                value: Some(ObservationValue::Quantity {
                    value: "5.90".into(),
                    unit: Some("mmol/L".into()),
                }),
                reference_range: Some("3.5-5.3".into()),
                interpretation: Some("H".into()),
                status: ResultStatus::Final,
                effective_at: None,
                notes: vec![],
            }],
            conclusion: None,
            attachments: vec![],
        }),
    )
}

/// A referral from Imperial to Moorfields Eye Hospital (RP6).
pub fn referral() -> Envelope {
    base(
        "0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a07",
        Category::Referral,
        to("RP6"),
        Body::Referral(Referral {
            referral_id: "REF-RYJ-2026-003300".into(),
            service_requested: Some(Coding::snomed("394594003", "Ophthalmology")),
            reason: None,
            priority: ReferralPriority::Urgent,
            requester: Some(author_imperial()),
            recipient_service: Some("Medical retina clinic".into()),
            requested_at: Some(datetime!(2026-11-20 10:00:00 UTC)),
            summary: Some("Sudden visual loss, left eye.".into()),
            attachments: vec![],
        }),
    )
}

/// The Royal Free's positive infrastructure acknowledgement of
/// [`discharge_summary`], routed back to Imperial.
pub fn acknowledgement() -> Envelope {
    let acked = discharge_summary();
    Envelope {
        message_id: MessageId::parse("0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a08").expect("example id"),
        correlation_id: Some(acked.message_id.to_string()),
        created_at: datetime!(2026-11-20 14:30:05 UTC),
        sender: Party {
            ods_code: ods("RAL"),
            exchange_id: exchange("ncl-royal-free"),
            sending_system: None,
        },
        addressing: to("RYJ"),
        purpose: PurposeOfUse::DirectCare,
        category: Category::Acknowledgement,
        patient: None,
        body: Body::Acknowledgement(Acknowledgement::itk(
            acked.message_id,
            AckLevel::Infrastructure,
            AckOutcome::Positive,
            itk_response::SUCCESS,
            None,
        )),
        original: None,
        acknowledgements_requested: AcknowledgementRequest::default(),
        sender_reference: None,
    }
}

/// One example per category, in [`Category::ALL`] order.
pub fn all() -> Vec<Envelope> {
    vec![
        discharge_summary(),
        repatriation_request(),
        cancer_document(),
        end_of_life_care_plan(),
        care_event_attendance(),
        result(),
        referral(),
        acknowledgement(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_valid_and_they_cover_every_category() {
        let examples = all();
        let categories: Vec<Category> = examples.iter().map(|e| e.category).collect();
        assert_eq!(categories, Category::ALL.to_vec());
        for envelope in examples {
            envelope
                .validate()
                .unwrap_or_else(|e| panic!("{:?}: {e}", envelope.category));
        }
    }

    #[test]
    fn validation_catches_cross_field_errors() {
        let mut wrong_body = discharge_summary();
        wrong_body.category = Category::CareEvent;
        assert_eq!(
            wrong_body.validate().unwrap_err().kind,
            ValidationErrorKind::Inconsistent
        );

        let mut nowhere = discharge_summary();
        nowhere.addressing = Addressing::default();
        assert_eq!(nowhere.validate().unwrap_err().field, "addressing");

        let mut anonymous = result();
        anonymous.patient = None;
        assert_eq!(anonymous.validate().unwrap_err().field, "patient");

        let mut twice = referral();
        let again = twice.addressing.recipients[0].clone();
        twice.addressing.recipients.push(again);
        assert_eq!(
            twice.validate().unwrap_err().field,
            "addressing.recipients[1].ods_code"
        );

        let mut bad_hash = discharge_summary();
        if let Body::Document(doc) = &mut bad_hash.body {
            doc.attachments[0].sha256 = [0; 32];
        }
        assert_eq!(
            bad_hash.validate().unwrap_err().field,
            "document.attachments[0].sha256"
        );

        let mut backwards = discharge_summary();
        if let Body::Document(doc) = &mut backwards.body {
            doc.version = 1;
        }
        assert_eq!(
            backwards.validate().unwrap_err().field,
            "document.replaces.version"
        );
    }

    #[test]
    fn an_acknowledgement_carries_nothing_about_a_patient() {
        let mut with_patient = acknowledgement();
        with_patient.patient = discharge_summary().patient;
        let error = with_patient.validate().unwrap_err();
        assert_eq!(error.field, "patient");
        assert!(error.to_string().contains("carries no patient"), "{error}");

        let mut with_original = acknowledgement();
        with_original.original = discharge_summary().original;
        assert_eq!(with_original.validate().unwrap_err().field, "original");

        let mut long_text = acknowledgement();
        if let Body::Acknowledgement(ack) = &mut long_text.body {
            ack.text = Some("x".repeat(crate::MAX_ACKNOWLEDGEMENT_TEXT + 1));
        }
        assert_eq!(
            long_text.validate().unwrap_err().field,
            "acknowledgement.text"
        );
        if let Body::Acknowledgement(ack) = &mut long_text.body {
            ack.text = Some("é".repeat(crate::MAX_ACKNOWLEDGEMENT_TEXT));
        }
        long_text.validate().expect("the limit counts characters");
    }

    #[test]
    fn envelope_debug_shows_no_patient_data_or_content() {
        let shown = format!("{:?}", discharge_summary());
        for secret in [
            "9434765919",
            "TESTPATIENT",
            "Ischaemic",
            "PDF",
            "resourceType",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a01"));
    }
}
