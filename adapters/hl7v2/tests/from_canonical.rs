//! Canonical → HL7 v2 rendering: every body kind rendered, parsed and
//! translated back (the clinically meaningful fields must survive),
//! acknowledgements, errors, determinism and MSH-18.

#[path = "from_canonical_support.rs"]
mod support;

use lhcie_hl7v2::from_canonical::{ControlIdSource, control_id_for, html_to_text};
use lhcie_hl7v2::{RenderError, parse_message, render_acknowledgement, render_envelope};
use lhcie_model::examples;
use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, Attachment, AttachmentContent, Body, Bytes,
    CareEventKind, Category, Coding, DocumentSection, DocumentStatus, Envelope, HumanName,
    Identifier, Location, MessageId, NhsNumber, OdsCode, PatientClass, PatientIdentity,
    Practitioner, itk_response,
};
use support::{rctx, roundtrip};
use time::macros::datetime;

fn doc_of(e: &Envelope) -> &lhcie_model::ClinicalDocument {
    match &e.body {
        Body::Document(d) => d,
        _ => panic!("not a document"),
    }
}

fn doc_mut(e: &mut Envelope) -> &mut lhcie_model::ClinicalDocument {
    match &mut e.body {
        Body::Document(d) => d,
        _ => panic!("not a document"),
    }
}

fn inline_bytes(a: &Attachment) -> &[u8] {
    match &a.content {
        AttachmentContent::Inline(b) => b,
        AttachmentContent::Url(_) => panic!("inline expected"),
    }
}

/// The patient fields HL7 carries back.
fn assert_same_patient(sent: &PatientIdentity, got: &PatientIdentity) {
    assert_eq!(got.nhs_number, sent.nhs_number);
    assert_eq!(got.nhs_number_verification, sent.nhs_number_verification);
    assert_eq!(got.local_identifiers, sent.local_identifiers);
    assert_eq!(got.name, sent.name);
    assert_eq!(got.birth_date, sent.birth_date);
    assert_eq!(got.gender, sent.gender);
    assert_eq!(got.postcode, sent.postcode);
    assert_eq!(got.deceased_at, sent.deceased_at);
}

fn assert_document_round_trips(sent: &Envelope) {
    let got = roundtrip(sent);
    assert_eq!(got.category, sent.category);
    assert_eq!(got.sender.ods_code, sent.sender.ods_code);
    assert_eq!(got.created_at, sent.created_at);
    assert_eq!(
        got.acknowledgements_requested,
        sent.acknowledgements_requested
    );
    assert_same_patient(
        sent.patient.as_ref().unwrap(),
        got.patient.as_ref().unwrap(),
    );
    let (s, g) = (doc_of(sent), doc_of(&got));
    assert_eq!(g.document_id, s.document_id);
    assert_eq!(g.document_type.code, s.document_type.code);
    assert_eq!(g.document_type.system, s.document_type.system);
    assert_eq!(g.title, s.title);
    assert_eq!(g.status, s.status);
    assert_eq!(g.authored_at, s.authored_at);
    assert_eq!(
        g.encounter.as_ref().map(|e| (&e.system, &e.value)),
        s.encounter.as_ref().map(|e| (&e.system, &e.value))
    );
    let author =
        |d: &lhcie_model::ClinicalDocument| d.author.as_ref().and_then(|a| a.practitioner.clone());
    assert_eq!(author(g), author(s));
    assert_eq!(g.sections.len(), s.sections.len());
    for (gs, ss) in g.sections.iter().zip(&s.sections) {
        assert_eq!(gs.title, ss.title);
        assert_eq!(gs.text, ss.text);
    }
    assert_eq!(g.attachments.len(), s.attachments.len());
    for (ga, sa) in g.attachments.iter().zip(&s.attachments) {
        assert_eq!(inline_bytes(ga), inline_bytes(sa));
        assert_eq!(ga.sha256, sa.sha256);
        assert_eq!(ga.media_type, sa.media_type);
        assert_eq!(ga.title, sa.title);
    }
}

#[test]
fn every_document_example_round_trips() {
    for e in [
        examples::discharge_summary(),
        examples::repatriation_request(),
        examples::cancer_document(),
        examples::end_of_life_care_plan(),
    ] {
        assert_document_round_trips(&e);
    }
}

#[test]
fn discharge_summary_renders_mdm_t02_with_the_expected_fields() {
    let e = examples::discharge_summary();
    let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
    assert_eq!(m.get("MSH-9.1"), Some("MDM"));
    assert_eq!(m.get("MSH-9.2"), Some("T02"));
    assert_eq!(m.get("MSH-9.3"), Some("MDM_T02"));
    assert_eq!(m.get("MSH-3"), Some("LHCIE"));
    assert_eq!(m.get("MSH-4"), Some("RYJ"));
    assert_eq!(m.get("MSH-5"), Some("EPR"));
    assert_eq!(m.get("MSH-6"), Some("RAL"));
    assert_eq!(m.get("MSH-11"), Some("P"));
    assert_eq!(m.get("MSH-12"), Some("2.4"));
    assert_eq!(m.get("MSH-18"), None, "ASCII only: no MSH-18");
    assert_eq!(m.get("PID-3[1].1"), Some("9434765919"));
    assert_eq!(m.get("PID-3[1].4"), Some("NHS"));
    assert_eq!(m.get("PID-3[1].5"), Some("NH"));
    assert_eq!(m.get("PID-3[2].1"), Some("MRN0001234"));
    assert_eq!(m.get("TXA-2.1"), Some("DS"));
    assert_eq!(m.get("TXA-12"), Some("DS-RYJ-2026-000123"));
    assert_eq!(m.get("TXA-13"), Some("DS-RYJ-2026-000123"));
    assert_eq!(m.get("TXA-17"), Some("AU"));
    assert_eq!(m.get("TXA-21"), Some("Version 2 replaces version 1"));
    assert_eq!(m.get("OBX(1)-2"), Some("TX"));
    assert_eq!(m.get("OBX(1)-3.2"), Some("Diagnoses"));
    assert_eq!(m.get("OBX(2)-2"), Some("ED"));
    assert_eq!(m.get("OBX(2)-5.2"), Some("application"));
    assert_eq!(m.get("OBX(2)-5.3"), Some("pdf"));
    assert_eq!(m.get("OBX(2)-5.4"), Some("Base64"));
    let segments: Vec<&str> = m.all_segments().iter().map(|s| s.id()).collect();
    assert_eq!(segments, ["MSH", "EVN", "PID", "PV1", "TXA", "OBX", "OBX"]);
}

#[test]
fn delimiters_and_escapes_in_values_round_trip() {
    let mut e = examples::discharge_summary();
    let tricky = "A|B^C&D~E\\F \\H\\ \\.br\\ end";
    {
        let p = e.patient.as_mut().unwrap();
        p.name = Some(HumanName {
            family: Some("O'BRIEN|^&~\\".into()),
            given: vec!["ANN~MARIE".into(), "JO^".into()],
            prefix: Some("Dr&".into()),
            suffix: None,
        });
    }
    let d = doc_mut(&mut e);
    d.title = tricky.into();
    d.document_id = "DOC|1^2&3~4\\5".into();
    d.replaces = None;
    d.sections = vec![DocumentSection {
        code: None,
        title: tricky.into(),
        text: format!("line 1 {tricky}\nline 2\r\nline 3"),
        media_type: "text/plain".into(),
    }];
    let got = roundtrip(&e);
    let g = doc_of(&got);
    assert_eq!(g.title, tricky);
    assert_eq!(g.document_id, "DOC|1^2&3~4\\5");
    assert_eq!(g.sections[0].title, tricky);
    assert_eq!(
        g.sections[0].text,
        format!("line 1 {tricky}\nline 2\nline 3")
    );
    assert_eq!(got.patient.unwrap().name, e.patient.unwrap().name);
}

#[test]
fn html_sections_become_plain_text() {
    let mut e = examples::cancer_document();
    let d = doc_mut(&mut e);
    d.sections[0].media_type = "text/html".into();
    d.sections[0].text =
        "<div><p>Refer &amp; review</p><ul><li>CT &lt;2 weeks&gt;</li></ul></div>".into();
    let got = roundtrip(&e);
    assert_eq!(
        doc_of(&got).sections[0].text,
        "Refer & review\n- CT <2 weeks>"
    );
    assert_eq!(html_to_text("<p>Refer &amp; review</p>"), "Refer & review");
}

#[test]
fn non_ascii_sets_msh18_and_survives() {
    let mut e = examples::end_of_life_care_plan();
    e.patient.as_mut().unwrap().name = Some(HumanName {
        family: Some("ŻÓŁĆ-Müller".into()),
        given: vec!["Zoë".into()],
        ..Default::default()
    });
    doc_mut(&mut e).sections[0].text = "Préférence: domicile — 家".into();
    let bytes = render_envelope(&e, &rctx()).unwrap();
    let m = parse_message(&bytes).unwrap();
    assert_eq!(m.get("MSH-18"), Some("UNICODE UTF-8"));
    assert!(std::str::from_utf8(&bytes).is_ok());
    let got = roundtrip(&e);
    assert_eq!(doc_of(&got).sections[0].text, "Préférence: domicile — 家");
    assert_eq!(got.patient.unwrap().name, e.patient.unwrap().name);
}

#[test]
fn rendering_is_deterministic_and_the_control_id_comes_from_the_message_id() {
    let e = examples::discharge_summary();
    let a = render_envelope(&e, &rctx()).unwrap();
    let b = render_envelope(&e, &rctx()).unwrap();
    assert_eq!(a, b);
    let m = parse_message(&a).unwrap();
    let cid = m.get("MSH-10").unwrap();
    assert_eq!(cid, control_id_for(&e.message_id));
    assert!(cid.len() <= 20 && !cid.is_empty());
    let mut other = e.clone();
    other.message_id = MessageId::parse("another-id").unwrap();
    let o = parse_message(&render_envelope(&other, &rctx()).unwrap()).unwrap();
    assert_ne!(o.get("MSH-10"), Some(cid));

    let mut given = rctx();
    given.control_id = ControlIdSource::Given("CTRL42".into());
    let g = parse_message(&render_envelope(&e, &given).unwrap()).unwrap();
    assert_eq!(g.get("MSH-10"), Some("CTRL42"));
    given.control_id = ControlIdSource::Given("X".repeat(21));
    assert_eq!(
        render_envelope(&e, &given).unwrap_err(),
        RenderError::InvalidControlId
    );
}

#[test]
fn ack_flags_round_trip_through_msh15_and_msh16() {
    for (infrastructure, business) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut e = examples::cancer_document();
        e.acknowledgements_requested.infrastructure = infrastructure;
        e.acknowledgements_requested.business = business;
        let got = roundtrip(&e);
        assert_eq!(got.acknowledgements_requested, e.acknowledgements_requested);
    }
}

#[test]
fn attachment_by_url_becomes_a_tx_note() {
    let mut e = examples::discharge_summary();
    let mut a = Attachment::inline(
        "application/pdf",
        Some("Letter".into()),
        Bytes::from_static(b"x"),
    );
    a.content = AttachmentContent::Url("https://docs.example.nhs.uk/d/1".into());
    doc_mut(&mut e).attachments = vec![a];
    let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
    assert_eq!(m.get("OBX(2)-2"), Some("TX"));
    assert_eq!(m.get("OBX(2)-3.1"), Some("ATTACHMENT-REF"));
    let lines: Vec<&str> = m
        .segments("OBX")
        .nth(1)
        .unwrap()
        .field(5)
        .unwrap()
        .repetitions()
        .iter()
        .map(|r| r.value())
        .collect();
    assert!(lines[0].starts_with("Attachment not included"));
    assert!(lines.contains(&"URL: https://docs.example.nhs.uk/d/1"));
    assert!(lines.iter().any(|l| l.starts_with("SHA-256: 2d711642")));
    // It comes back as a section, never silently lost.
    let got = roundtrip(&e);
    assert_eq!(doc_of(&got).sections.len(), 2);
    assert!(
        doc_of(&got).sections[1]
            .text
            .contains("docs.example.nhs.uk")
    );
}

#[test]
fn statuses_map_and_entered_in_error_is_refused() {
    for (status, txa17) in [
        (DocumentStatus::Preliminary, "IP"),
        (DocumentStatus::Final, "AU"),
        (DocumentStatus::Amended, "AU"),
    ] {
        let mut e = examples::repatriation_request();
        doc_mut(&mut e).status = status;
        let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
        assert_eq!(m.get("TXA-17"), Some(txa17));
        if status == DocumentStatus::Amended {
            assert_eq!(m.get("TXA-21"), Some("Amended after being final"));
        }
    }
    let mut e = examples::repatriation_request();
    doc_mut(&mut e).status = DocumentStatus::EnteredInError;
    assert!(matches!(
        render_envelope(&e, &rctx()).unwrap_err(),
        RenderError::Unrepresentable { .. }
    ));
}

#[test]
fn errors_name_fields_never_values() {
    let mut e = examples::discharge_summary();
    doc_mut(&mut e).attachments[0].sha256 = [0; 32];
    let err = render_envelope(&e, &rctx()).unwrap_err();
    assert_eq!(
        err,
        RenderError::InvalidEnvelope {
            field: "document.attachments[0].sha256".into(),
            kind: lhcie_model::ValidationErrorKind::Inconsistent
        }
    );
    let shown = format!("{err} {err:?}");
    for secret in ["9434765919", "TESTPATIENT", "Ischaemic"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let mut unmapped = rctx();
    unmapped
        .document_types
        .retain(|m| m.category != Category::CancerDocument);
    assert_eq!(
        render_envelope(&examples::cancer_document(), &unmapped).unwrap_err(),
        RenderError::UnmappedDocumentType {
            category: Category::CancerDocument
        }
    );
}

fn ods(s: &str) -> OdsCode {
    OdsCode::parse(s).unwrap()
}

fn event(kind: CareEventKind, class: Option<PatientClass>) -> Envelope {
    let mut e = examples::care_event_attendance();
    let Body::CareEvent(ev) = &mut e.body else {
        unreachable!()
    };
    ev.kind = kind;
    ev.patient_class = class;
    ev.occurred_at = Some(datetime!(2026-11-20 02:17:00 UTC));
    ev.recorded_at = Some(datetime!(2026-11-20 02:19:00 UTC));
    ev.prior_location = Some(Location {
        organisation: Some(ods("RYJ")),
        point_of_care: Some("WARD^7|A".into()),
        room: Some("R1".into()),
        bed: Some("B2".into()),
        description: Some("Stroke unit".into()),
        ..Default::default()
    });
    ev.attending = Some(Practitioner {
        name: Some(HumanName {
            family: Some("CONSULTANT".into()),
            given: vec!["PAT".into()],
            prefix: Some("Dr".into()),
            suffix: None,
        }),
        identifiers: vec![Identifier {
            system: "GMC".into(),
            value: "C7654321".into(),
            type_code: None,
        }],
        role: None,
    });
    ev.reason = Some(Coding::snomed("230690007", "Stroke"));
    if matches!(kind, CareEventKind::Discharge) {
        ev.discharge_destination = Some(Coding {
            system: "http://terminology.hl7.org/CodeSystem/v2-0112".into(),
            code: "01".into(),
            display: None,
        });
    }
    if kind == CareEventKind::Merge {
        ev.merged_from = Some(Box::new(PatientIdentity {
            nhs_number: Some(NhsNumber::parse("9000000009").unwrap()),
            local_identifiers: vec![Identifier {
                system: "RYJ".into(),
                value: "OLD-MRN-1".into(),
                type_code: Some("MR".into()),
            }],
            ..Default::default()
        }));
    }
    e
}

#[test]
fn every_care_event_kind_round_trips() {
    use CareEventKind as K;
    use PatientClass as C;
    let cases = [
        (K::Admission, Some(C::Inpatient), "A01"),
        (K::Transfer, Some(C::Inpatient), "A02"),
        (K::Discharge, Some(C::Inpatient), "A03"),
        (K::Death, Some(C::Inpatient), "A03"),
        (K::Attendance, Some(C::Emergency), "A04"),
        (K::Attendance, Some(C::Outpatient), "A04"),
        (K::Registration, Some(C::Inpatient), "A04"),
        (K::Registration, None, "A04"),
        (K::PreAdmission, Some(C::PreAdmission), "A05"),
        (K::DemographicsUpdate, Some(C::DayCase), "A08"),
        (K::Merge, None, "A40"),
    ];
    for (kind, class, trigger) in cases {
        let sent = event(kind, class);
        let m = parse_message(&render_envelope(&sent, &rctx()).unwrap()).unwrap();
        assert_eq!(m.get("MSH-9.2"), Some(trigger), "{kind:?}");
        let got = roundtrip(&sent);
        let (Body::CareEvent(s), Body::CareEvent(g)) = (&sent.body, &got.body) else {
            panic!()
        };
        assert_eq!(g.kind, s.kind, "{kind:?}");
        assert_eq!(g.occurred_at, s.occurred_at, "{kind:?}");
        assert_eq!(g.recorded_at, s.recorded_at, "{kind:?}");
        assert_eq!(g.patient_class, s.patient_class, "{kind:?}");
        assert_eq!(
            g.location,
            s.location.as_ref().map(|l| Location {
                site: Some("RYJ".into()),
                ..l.clone()
            })
        );
        assert_eq!(
            g.prior_location.as_ref().unwrap().point_of_care,
            s.prior_location.as_ref().unwrap().point_of_care
        );
        assert_eq!(
            g.prior_location.as_ref().unwrap().bed.as_deref(),
            Some("B2")
        );
        assert_eq!(
            g.prior_location.as_ref().unwrap().description.as_deref(),
            Some("Stroke unit")
        );
        assert_eq!(g.attending, s.attending, "{kind:?}");
        assert_eq!(g.reason, s.reason, "{kind:?}");
        assert_eq!(
            g.encounter.as_ref().unwrap().value,
            s.encounter.as_ref().unwrap().value
        );
        match kind {
            K::Death => assert_eq!(g.discharge_destination.as_ref().unwrap().code, "20"),
            _ => assert_eq!(g.discharge_destination, s.discharge_destination, "{kind:?}"),
        }
        assert_eq!(g.merged_from, s.merged_from, "{kind:?}");
        assert_same_patient(
            sent.patient.as_ref().unwrap(),
            got.patient.as_ref().unwrap(),
        );
        assert_eq!(
            got.patient.as_ref().unwrap().registered_gp_practice,
            sent.patient.as_ref().unwrap().registered_gp_practice
        );
    }
}

#[test]
fn person_level_events_use_a28_and_a31() {
    for (kind, trigger) in [
        (CareEventKind::Registration, "A28"),
        (CareEventKind::DemographicsUpdate, "A31"),
    ] {
        let mut e = event(kind, None);
        let Body::CareEvent(ev) = &mut e.body else {
            unreachable!()
        };
        ev.encounter = None;
        let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
        assert_eq!(m.get("MSH-9.2"), Some(trigger));
        let Body::CareEvent(g) = roundtrip(&e).body else {
            panic!()
        };
        assert_eq!(g.kind, kind);
    }
}

#[test]
fn restricted_patients_keep_address_and_gp_out() {
    let mut e = examples::care_event_attendance();
    e.patient.as_mut().unwrap().restricted = true;
    let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
    assert_eq!(m.get("PID-11.5"), None);
    assert_eq!(m.get("PD1-3.3"), None);
    assert_eq!(m.get("PD1-12"), Some("Y"));
    e.patient.as_mut().unwrap().restricted = false;
    let m = parse_message(&render_envelope(&e, &rctx()).unwrap()).unwrap();
    assert_eq!(m.get("PID-11.5"), Some("NW1 1TN"));
    assert_eq!(m.get("PD1-3.3"), Some("F83006"));
}

#[test]
fn referral_round_trips() {
    let mut sent = examples::referral();
    let Body::Referral(r) = &mut sent.body else {
        unreachable!()
    };
    r.reason = Some(Coding::snomed("15203004", "Visual loss"));
    r.summary = Some("Sudden visual loss, left eye.\nNo pain ^ | no trauma".into());
    r.attachments.push(Attachment::inline(
        "application/pdf",
        Some("Referral letter".into()),
        Bytes::from_static(b"%PDF-1.4 letter"),
    ));
    let got = roundtrip(&sent);
    assert_eq!(got.category, Category::Referral);
    let (Body::Referral(s), Body::Referral(g)) = (&sent.body, &got.body) else {
        panic!()
    };
    assert_eq!(g.referral_id, s.referral_id);
    assert_eq!(g.priority, s.priority);
    assert_eq!(g.service_requested, s.service_requested);
    assert_eq!(g.reason, s.reason);
    assert_eq!(g.requested_at, s.requested_at);
    assert_eq!(g.recipient_service, s.recipient_service);
    assert_eq!(g.summary, s.summary);
    let sp = s.requester.as_ref().unwrap().practitioner.as_ref().unwrap();
    let gp = g.requester.as_ref().unwrap().practitioner.as_ref().unwrap();
    assert_eq!(gp.name, sp.name);
    assert_eq!(gp.identifiers[0].value, sp.identifiers[0].value);
    assert_eq!(gp.identifiers[0].system, sp.identifiers[0].system);
    assert_eq!(g.attachments.len(), 1);
    assert_eq!(
        inline_bytes(&g.attachments[0]),
        inline_bytes(&s.attachments[0])
    );
    assert_eq!(g.attachments[0].title, s.attachments[0].title);
    assert_same_patient(
        sent.patient.as_ref().unwrap(),
        got.patient.as_ref().unwrap(),
    );
}

#[test]
fn result_round_trips() {
    let mut sent = examples::result();
    let Body::Result(r) = &mut sent.body else {
        unreachable!()
    };
    r.order = Some(Identifier {
        system: "RYJ_OE".into(),
        value: "ORD-1".into(),
        type_code: Some("PLAC".into()),
    });
    r.observations[0].notes = vec!["Haemolysed sample?".into()];
    r.observations.push(lhcie_model::Observation {
        code: Coding {
            system: "http://loinc.org".into(),
            code: "8251-1".into(),
            display: Some("Comment".into()),
        },
        value: Some(lhcie_model::ObservationValue::Text(
            "Line 1\nLine 2 | ^ & ~".into(),
        )),
        reference_range: None,
        interpretation: None,
        status: lhcie_model::ResultStatus::Preliminary,
        effective_at: Some(datetime!(2026-11-20 09:00:00 UTC)),
        notes: vec![],
    });
    r.observations.push(lhcie_model::Observation {
        code: Coding::snomed("1234", "Organism"),
        value: Some(lhcie_model::ObservationValue::Coded(Coding::snomed(
            "112283007",
            "E. coli",
        ))),
        reference_range: None,
        interpretation: Some("A".into()),
        status: lhcie_model::ResultStatus::Final,
        effective_at: None,
        notes: vec![],
    });
    r.attachments.push(Attachment::inline(
        "image/png",
        Some("Film".into()),
        Bytes::from_static(&[0x89, b'P', b'N', b'G', 0, 1, 2, 255]),
    ));
    let got = roundtrip(&sent);
    let (Body::Result(s), Body::Result(g)) = (&sent.body, &got.body) else {
        panic!()
    };
    assert_eq!(g.report_id, s.report_id);
    assert_eq!(g.code, s.code);
    assert_eq!(g.status, s.status);
    assert_eq!(g.effective_at, s.effective_at);
    assert_eq!(g.issued_at, s.issued_at);
    assert_eq!(g.order, s.order);
    assert_eq!(g.observations, s.observations);
    assert_eq!(g.attachments.len(), 1);
    assert_eq!(
        inline_bytes(&g.attachments[0]),
        inline_bytes(&s.attachments[0])
    );
    assert_eq!(g.attachments[0].media_type, "image/png");
    let performer = |r: &lhcie_model::DiagnosticReport| {
        let p = r.performer.clone().unwrap().practitioner.unwrap();
        (p.name.unwrap().family, p.identifiers[0].value.clone())
    };
    assert_eq!(performer(g), performer(s));
    assert_same_patient(
        sent.patient.as_ref().unwrap(),
        got.patient.as_ref().unwrap(),
    );
}

#[test]
fn acknowledgements_render_as_ack_with_msa_and_err() {
    let ctx = rctx();
    let refers_to = MessageId::parse("0b6a5f0e-1c8f-4d1e-9a59-1f0b7f0b2a01").unwrap();
    let positive = Acknowledgement::itk(
        refers_to.clone(),
        AckLevel::Infrastructure,
        AckOutcome::Positive,
        itk_response::SUCCESS,
        None,
    );
    let m =
        parse_message(&render_acknowledgement(&positive, Some("ORIG0001"), &ctx).unwrap()).unwrap();
    assert_eq!(m.get("MSH-9.1"), Some("ACK"));
    assert_eq!(m.get("MSH-7"), Some("20261120150000+0000"));
    assert_eq!(m.get("MSA-1"), Some("AA"));
    assert_eq!(m.get("MSA-2"), Some("ORIG0001"));
    assert!(m.segment("ERR").is_none());
    // Without the original's control id, the one this renderer gave it.
    let m = parse_message(&render_acknowledgement(&positive, None, &ctx).unwrap()).unwrap();
    assert_eq!(m.get("MSA-2"), Some(control_id_for(&refers_to).as_str()));

    let text = "Duplicate | already ^ received & filed ~ \\ again";
    for (level, msa1) in [(AckLevel::Infrastructure, "AR"), (AckLevel::Business, "AE")] {
        let negative = Acknowledgement::itk(
            refers_to.clone(),
            level,
            AckOutcome::Negative,
            itk_response::DUPLICATE_MESSAGE,
            Some(text.into()),
        );
        let m =
            parse_message(&render_acknowledgement(&negative, Some("X|1"), &ctx).unwrap()).unwrap();
        assert_eq!(m.get("MSA-1"), Some(msa1));
        assert_eq!(m.get("MSA-2"), Some("X|1"));
        assert_eq!(m.get("MSA-3"), Some(text));
        assert_eq!(m.get("ERR-1.4.1"), Some("20007"));
        assert_eq!(m.get("ERR-1.4.2"), Some(text));
        assert_eq!(m.get("ERR-1.4.3"), Some("ITK3"));
    }
    // A negative acknowledgement without a code still says why.
    let bare = Acknowledgement {
        refers_to: refers_to.clone(),
        level: AckLevel::Infrastructure,
        outcome: AckOutcome::Negative,
        code: None,
        text: None,
    };
    let m = parse_message(&render_acknowledgement(&bare, None, &ctx).unwrap()).unwrap();
    assert_eq!(m.get("ERR-1.4.1"), Some("207"));
    // The hub's "not permitted" is final: AE with the local code, not AR.
    let not_permitted = Acknowledgement {
        code: Some(lhcie_model::Coding {
            system: lhcie_model::HUB_RESPONSE_CODE_SYSTEM.into(),
            code: lhcie_model::hub_response::NOT_PERMITTED.into(),
            display: None,
        }),
        text: Some("recipient RAL: not permitted by information governance policy".into()),
        ..bare.clone()
    };
    let m = parse_message(&render_acknowledgement(&not_permitted, None, &ctx).unwrap()).unwrap();
    assert_eq!(m.get("MSA-1"), Some("AE"));
    assert_eq!(m.get("ERR-1.4.1"), Some("NOTPERMITTED"));
    assert_eq!(m.get("ERR-1.4.3"), Some("99LHCIE"));
    // A positive business acknowledgement's code is carried.
    let known = Acknowledgement::itk(
        refers_to,
        AckLevel::Business,
        AckOutcome::Positive,
        itk_response::PATIENT_KNOWN,
        None,
    );
    let m = parse_message(&render_acknowledgement(&known, None, &ctx).unwrap()).unwrap();
    assert_eq!(m.get("MSA-1"), Some("AA"));
    assert_eq!(m.get("ERR-1.4.1"), Some("30001"));
}

#[test]
fn acknowledgement_envelopes_render_through_render_envelope() {
    let e = examples::acknowledgement();
    let bytes = render_envelope(&e, &rctx()).unwrap();
    let m = parse_message(&bytes).unwrap();
    assert_eq!(m.get("MSH-4"), Some("RAL"));
    assert_eq!(m.get("MSH-7"), Some("20261120143005+0000"));
    assert_eq!(
        m.get("MSH-10"),
        Some(control_id_for(&e.message_id).as_str())
    );
    assert_eq!(m.get("MSA-1"), Some("AA"));
    let Body::Acknowledgement(a) = &e.body else {
        unreachable!()
    };
    assert_eq!(m.get("MSA-2"), Some(control_id_for(&a.refers_to).as_str()));
    assert_eq!(m.get("MSH-15"), None);
}
