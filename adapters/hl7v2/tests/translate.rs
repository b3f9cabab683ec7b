//! Translation to the canonical model: patient identity, errors with their
//! codes and positions, attachments, routing and message ids.

use lhcie_hl7v2::translate::{RouteRule, RouteTarget};
use lhcie_hl7v2::{
    Disposition, ErrorCode, Message, TranslateContext, TranslateError, TranslateErrorKind,
    parse_message, translate, translate_received,
};
use lhcie_model::{
    AttachmentContent, Body, CareEventKind, Category, DocumentStatus, ExchangeId, Gender,
    NhsNumber, ObservationValue, OdsCode, PatientClass, RecipientIntent, ReferralPriority,
    ResultStatus, RoutingRule,
};

fn ctx() -> TranslateContext {
    TranslateContext::new(
        ExchangeId::parse("nwl-test").unwrap(),
        time::macros::datetime!(2026-01-01 12:00 UTC),
    )
}

fn ods(s: &str) -> OdsCode {
    OdsCode::parse(s).unwrap()
}

fn msg(text: &str) -> Message {
    parse_message(text.as_bytes()).expect("test message parses")
}

/// An ADT^A01 from RYJ to F83006 with the given PID-3, patient class and
/// PD1.
fn adt(pid3: &str, class: &str, pd1: &str) -> String {
    format!(
        "MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.4\r\
         EVN||20260101115500\r\
         PID|1||{pid3}||DOE^JANE^ANN^^MRS||19800101|F|||1 ROAD^^TOWN^^W2 1NY^GBR^H\r\
         {pd1}\
         PV1|1|{class}|ED^^^RYJ||||||||||||||||V123^^^RYJ_VISIT\r"
    )
}

fn ok(text: &str) -> lhcie_model::Envelope {
    translate(&msg(text), &ctx()).expect("translates").envelope
}

fn err(text: &str) -> TranslateError {
    translate(&msg(text), &ctx()).expect_err("must not translate")
}

const NHS: &str = "9434765919";

#[test]
fn nhs_number_forms_in_pid3() {
    for pid3 in [
        "9434765919^^^NHS^NH",
        "9434765919^^^NHS",
        "9434765919^^^^NH",
        "9434765919^^^nhs",
        "9434765919^^^NHS&2.16.840.1.113883.2.1.4.1&ISO^NH",
        "9434765919^^^&2.16.840.1.113883.2.1.4.1&ISO",
        "943 476 5919^^^NHS^NH",
        "A123^^^RRV^MR~9434765919^^^NHS^NH",
    ] {
        let e = ok(&adt(pid3, "I", ""));
        let p = e.patient.as_ref().unwrap();
        assert_eq!(p.nhs_number, Some(NhsNumber::parse(NHS).unwrap()), "{pid3}");
        assert!(
            p.local_identifiers.iter().all(|i| i.value != NHS),
            "{pid3}: NHS number kept as a local identifier"
        );
    }
}

#[test]
fn local_identifiers_keep_their_authority() {
    let e = ok(&adt("A123^^^RRV^MR~9434765919^^^NHS^NH~B9^^^^PI", "I", ""));
    let p = e.patient.unwrap();
    assert_eq!(p.local_identifiers.len(), 2);
    assert_eq!(p.local_identifiers[0].system, "RRV");
    assert_eq!(p.local_identifiers[0].value, "A123");
    assert_eq!(p.local_identifiers[0].type_code.as_deref(), Some("MR"));
    // No authority: the sending facility names it.
    assert_eq!(p.local_identifiers[1].system, "RYJ");
    assert_eq!(p.local_identifiers[1].type_code.as_deref(), Some("PI"));
}

#[test]
fn no_nhs_number_is_not_an_error() {
    let e = ok(&adt("A123^^^RRV^MR", "I", ""));
    assert_eq!(e.patient.unwrap().nhs_number, None);
}

#[test]
fn demographics_and_registered_gp() {
    let e = ok(&adt(
        "9434765919^^^NHS^NH",
        "I",
        "PD1|||THE SURGERY^^F83006\r",
    ));
    let p = e.patient.unwrap();
    let name = p.name.unwrap();
    assert_eq!(name.family.as_deref(), Some("DOE"));
    assert_eq!(name.given, vec!["JANE", "ANN"]);
    assert_eq!(name.prefix.as_deref(), Some("MRS"));
    assert_eq!(p.birth_date, Some(time::macros::date!(1980 - 01 - 01)));
    assert_eq!(p.gender, Some(Gender::Female));
    assert_eq!(p.postcode.as_deref(), Some("W2 1NY"));
    assert_eq!(p.registered_gp_practice, Some(ods("F83006")));
    // XON-10 (v2.5) wins over XON-3.
    let e = ok(&adt(
        "9434765919^^^NHS^NH",
        "I",
        "PD1|||THE SURGERY^^X99^^^^^^^Y00542\r",
    ));
    assert_eq!(
        e.patient.unwrap().registered_gp_practice,
        Some(ods("Y00542"))
    );
}

fn assert_error(e: &TranslateError, code: u16, disposition: Disposition, location: Option<&str>) {
    assert_eq!(e.code().number(), Some(code), "{e}");
    assert_eq!(e.disposition(), disposition, "{e}");
    assert_eq!(
        e.location.as_ref().map(|l| l.to_string()).as_deref(),
        location,
        "{e}"
    );
}

#[test]
fn invalid_nhs_check_digit_is_a_content_error_at_pid3() {
    let e = err(&adt("A123^^^RRV^MR~9434765918^^^NHS^NH", "I", ""));
    assert_eq!(e.kind, TranslateErrorKind::InvalidNhsNumber);
    assert_error(&e, 102, Disposition::ContentError, Some("PID(1)-3[2].1"));
    let shown = e.to_string();
    assert!(!shown.contains("943476591"), "{shown}");
    assert!(!shown.contains("DOE"), "{shown}");
}

#[test]
fn conflicting_nhs_numbers_are_refused() {
    let e = err(&adt("9434765919^^^NHS^NH~4010232137^^^NHS^NH", "I", ""));
    assert_eq!(e.kind, TranslateErrorKind::ConflictingNhsNumbers);
    assert_error(&e, 102, Disposition::ContentError, Some("PID(1)-3[2].1"));
}

#[test]
fn missing_pid_is_100_a_missing_segment() {
    let text = "MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||ADT^A01|MSG0001|P|2.4\rEVN||20260101115500\rPV1|1|I\r";
    let e = err(text);
    assert_eq!(e.kind, TranslateErrorKind::MissingSegment);
    // 100 (segment), not 101 (field): table 0357.
    assert_error(&e, 100, Disposition::ContentError, Some("PID(1)"));
}

#[test]
fn unsupported_type_event_version_and_header_problems_are_refused() {
    let siu = "MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||SIU^S12|MSG0001|P|2.4\rSCH|1\r";
    assert_error(&err(siu), 200, Disposition::Refused, Some("MSH(1)-9.1"));
    let a24 = adt("9434765919^^^NHS^NH", "I", "").replace("ADT^A01^ADT_A01", "ADT^A24^ADT_A24");
    assert_error(&err(&a24), 201, Disposition::Refused, Some("MSH(1)-9.2"));
    for version in ["2.9", "3.0", "2.4.9"] {
        let v = adt("9434765919^^^NHS^NH", "I", "").replace("|P|2.4\r", &format!("|P|{version}\r"));
        let e = err(&v);
        assert_eq!(e.code(), ErrorCode::UnsupportedVersionId);
        assert_error(&e, 203, Disposition::Refused, Some("MSH(1)-12.1"));
    }
    let no_version = adt("9434765919^^^NHS^NH", "I", "").replace("|P|2.4\r", "|P|\r");
    assert_error(
        &err(&no_version),
        101,
        Disposition::Refused,
        Some("MSH(1)-12.1"),
    );
    let no_control = adt("9434765919^^^NHS^NH", "I", "").replace("|MSG0001|", "||");
    assert_error(
        &err(&no_control),
        101,
        Disposition::Refused,
        Some("MSH(1)-10.1"),
    );
    let bad_processing = adt("9434765919^^^NHS^NH", "I", "").replace("|P|2.4", "|Q|2.4");
    assert_error(
        &err(&bad_processing),
        202,
        Disposition::Refused,
        Some("MSH(1)-11.1"),
    );
}

#[test]
fn bad_dates_and_codes_are_located() {
    let dob = adt("9434765919^^^NHS^NH", "I", "").replace("19800101", "19801301");
    assert_error(
        &err(&dob),
        102,
        Disposition::ContentError,
        Some("PID(1)-7.1"),
    );
    let sex = adt("9434765919^^^NHS^NH", "I", "").replace("19800101|F|", "19800101|Q|");
    assert_error(
        &err(&sex),
        103,
        Disposition::ContentError,
        Some("PID(1)-8.1"),
    );
    let gp = adt("9434765919^^^NHS^NH", "I", "PD1|||THE SURGERY^^f83006\r");
    assert_error(
        &err(&gp),
        102,
        Disposition::ContentError,
        Some("PD1(1)-3[1].3"),
    );
}

#[test]
fn adt_events_map_to_care_event_kinds() {
    for (event, class, kind) in [
        ("A01", "I", CareEventKind::Admission),
        ("A02", "I", CareEventKind::Transfer),
        ("A03", "I", CareEventKind::Discharge),
        ("A04", "E", CareEventKind::Attendance),
        ("A04", "I", CareEventKind::Registration),
        ("A05", "P", CareEventKind::PreAdmission),
        ("A08", "I", CareEventKind::DemographicsUpdate),
        ("A28", "N", CareEventKind::Registration),
        ("A31", "N", CareEventKind::DemographicsUpdate),
    ] {
        let text = adt("9434765919^^^NHS^NH", class, "")
            .replace("ADT^A01^ADT_A01", &format!("ADT^{event}"));
        let e = ok(&text);
        assert_eq!(e.category, Category::CareEvent);
        let Body::CareEvent(ce) = e.body else {
            panic!("{event}: not a care event")
        };
        assert_eq!(ce.kind, kind, "{event}");
    }
}

#[test]
fn a40_merge_names_the_merged_identity() {
    let text = adt("9434765919^^^NHS^NH", "N", "").replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39")
        + "MRG|OLD1^^^RYJ^MR~4010232137^^^NHS^NH\r";
    let e = ok(&text);
    let Body::CareEvent(ce) = e.body else {
        panic!()
    };
    assert_eq!(ce.kind, CareEventKind::Merge);
    let from = ce.merged_from.unwrap();
    assert_eq!(
        from.nhs_number,
        Some(NhsNumber::parse("4010232137").unwrap())
    );
    assert_eq!(from.local_identifiers[0].value, "OLD1");
    // Without MRG: 100 (segment missing) at MRG.
    let no_mrg = adt("9434765919^^^NHS^NH", "N", "").replace("ADT^A01^ADT_A01", "ADT^A40");
    assert_error(
        &err(&no_mrg),
        100,
        Disposition::ContentError,
        Some("MRG(1)"),
    );
}

#[test]
fn care_event_details() {
    let e = ok(&adt("9434765919^^^NHS^NH", "E", ""));
    assert_eq!(e.sender.ods_code, ods("RYJ"));
    assert_eq!(e.sender.sending_system.as_deref(), Some("PAS"));
    assert_eq!(e.sender_reference.as_deref(), Some("MSG0001"));
    // MSH-7 20260101120000 is GMT in January.
    assert_eq!(e.created_at, time::macros::datetime!(2026-01-01 12:00 UTC));
    let Body::CareEvent(ce) = e.body else {
        panic!()
    };
    assert_eq!(ce.patient_class, Some(PatientClass::Emergency));
    assert_eq!(
        ce.recorded_at,
        Some(time::macros::datetime!(2026-01-01 11:55 UTC))
    );
    let loc = ce.location.unwrap();
    assert_eq!(loc.point_of_care.as_deref(), Some("ED"));
    assert_eq!(loc.organisation, Some(ods("RYJ")));
    let enc = ce.encounter.unwrap();
    assert_eq!(
        (enc.system.as_str(), enc.value.as_str()),
        ("RYJ_VISIT", "V123")
    );
}

#[test]
fn the_original_message_travels_unchanged() {
    let text = adt("9434765919^^^NHS^NH", "I", "").replace('\r', "\r\n");
    let m = msg(&text);
    let t = translate_received(text.as_bytes(), &m, &ctx()).unwrap();
    let original = t.envelope.original.unwrap();
    assert_eq!(original.media_type, "x-application/hl7-v2+er7");
    assert_eq!(&original.content[..], text.as_bytes());
}

#[test]
fn routing_rule_sends_emergency_events_to_the_registered_gp() {
    let mut c = ctx();
    c.rules = vec![RouteRule {
        categories: vec![Category::CareEvent],
        event_kinds: vec![],
        patient_classes: vec![PatientClass::Emergency],
        target: RouteTarget::RegisteredGpPractice,
        intent: RecipientIntent::ForInformation,
    }];
    let text = adt("9434765919^^^NHS^NH", "E", "PD1|||THE SURGERY^^Y00542\r");
    let e = translate(&msg(&text), &c).unwrap().envelope;
    assert_eq!(
        e.addressing.recipients.len(),
        1,
        "MSH-6 not used when a rule matched"
    );
    assert_eq!(e.addressing.recipients[0].ods_code, ods("Y00542"));
    assert_eq!(
        e.addressing.recipients[0].intent,
        RecipientIntent::ForInformation
    );
    assert_eq!(e.addressing.rule, None);
    // No PD1: the hub's registered-GP rule is asked for.
    let text = adt("9434765919^^^NHS^NH", "E", "");
    let e = translate(&msg(&text), &c).unwrap().envelope;
    assert!(e.addressing.recipients.is_empty());
    assert_eq!(e.addressing.rule, Some(RoutingRule::RegisteredGp));
    // Not an emergency: the rule does not apply, MSH-6 is the recipient.
    let text = adt("9434765919^^^NHS^NH", "I", "PD1|||THE SURGERY^^Y00542\r");
    let e = translate(&msg(&text), &c).unwrap().envelope;
    assert_eq!(e.addressing.recipients[0].ods_code, ods("F83006"));
}

#[test]
fn recipients_fall_back_to_defaults_and_fail_without() {
    let text = adt("9434765919^^^NHS^NH", "I", "").replace("|HUB|F83006|", "|HUB|not an ods|");
    assert_error(
        &err(&text),
        101,
        Disposition::ContentError,
        Some("MSH(1)-6.1"),
    );
    let mut c = ctx();
    c.default_recipients = vec![ods("RAL"), ods("RRV")];
    let e = translate(&msg(&text), &c).unwrap().envelope;
    let got: Vec<&str> = e
        .addressing
        .recipients
        .iter()
        .map(|r| r.ods_code.as_str())
        .collect();
    assert_eq!(got, ["RAL", "RRV"]);
}

#[test]
fn sender_ods_falls_back_to_the_context() {
    let text = adt("9434765919^^^NHS^NH", "I", "").replace("|PAS|RYJ|", "|PAS|Main Hospital|");
    assert_error(&err(&text), 101, Disposition::Refused, Some("MSH(1)-4.1"));
    let mut c = ctx();
    c.sender_ods = Some(ods("RAL"));
    let e = translate(&msg(&text), &c).unwrap().envelope;
    assert_eq!(e.sender.ods_code, ods("RAL"));
}

#[test]
fn message_id_is_stable_for_the_same_control_id() {
    let a = ok(&adt("9434765919^^^NHS^NH", "I", ""));
    // Resent later, with a new timestamp and changed content: same id.
    let resent =
        adt("9434765919^^^NHS^NH", "E", "").replace("|20260101120000|", "|20260101130000|");
    let b = ok(&resent);
    assert_eq!(a.message_id, b.message_id);
    // Another control id, or another sending facility: another id.
    let other = ok(&adt("9434765919^^^NHS^NH", "I", "").replace("MSG0001", "MSG0002"));
    assert_ne!(a.message_id, other.message_id);
    let facility = ok(&adt("9434765919^^^NHS^NH", "I", "").replace("|PAS|RYJ|", "|PAS|RAL|"));
    assert_ne!(a.message_id, facility.message_id);
    // Another exchange: another id.
    let mut c = ctx();
    c.exchange_id = ExchangeId::parse("ncl-other").unwrap();
    let x = translate(&msg(&adt("9434765919^^^NHS^NH", "I", "")), &c).unwrap();
    assert_ne!(a.message_id, x.envelope.message_id);
    assert_eq!(a.message_id.as_str().len(), 36);
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

fn oru(obx: &str) -> String {
    format!(
        "MSH|^~\\&|LAB|RYJ|HUB|F83006|20260101120000||ORU^R01^ORU_R01|LAB0001|P|2.5.1\r\
         PID|1||9434765919^^^NHS^NH||DOE^JANE||19800101|F\r\
         OBR|1|PL1^RYJ_OE|FL1^RYJ_LAB|1554-5^GLUCOSE^LN|||20260101090000|||||||||||||||20260101110000|||F\r\
         {obx}"
    )
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn oru_with_values_and_embedded_pdf() {
    let obx = format!(
        "OBX|1|NM|1554-5^GLUCOSE^LN||5.4|mmol/L|3.5-7.8|N|||F\r\
         NTE|1||fasting\r\
         OBX|2|ST|COMMENT^Comment||see report||||||P\r\
         OBX|3|ED|PDF^Report PDF||^AP^PDF^Base64^{}||||||F\r",
        b64(PDF)
    );
    let e = ok(&oru(&obx));
    assert_eq!(e.category, Category::Result);
    let Body::Result(r) = e.body else { panic!() };
    assert_eq!(r.report_id, "FL1");
    assert_eq!(r.code.system, "http://loinc.org");
    assert_eq!(r.status, ResultStatus::Final);
    assert_eq!(r.order.as_ref().unwrap().value, "PL1");
    assert_eq!(r.observations.len(), 2);
    assert_eq!(
        r.observations[0].value,
        Some(ObservationValue::Quantity {
            value: "5.4".into(),
            unit: Some("mmol/L".into())
        })
    );
    assert_eq!(
        r.observations[0].reference_range.as_deref(),
        Some("3.5-7.8")
    );
    assert_eq!(r.observations[0].notes, vec!["fasting"]);
    assert_eq!(r.observations[1].status, ResultStatus::Preliminary);
    assert_eq!(r.attachments.len(), 1);
    let a = &r.attachments[0];
    assert_eq!(a.media_type, "application/pdf");
    assert_eq!(a.size, PDF.len() as u64);
    assert_eq!(a.title.as_deref(), Some("Report PDF"));
    match &a.content {
        AttachmentContent::Inline(bytes) => assert_eq!(&bytes[..], PDF),
        AttachmentContent::Url(_) => panic!("inline expected"),
    }
}

#[test]
fn ed_with_bad_base64_is_102_at_obx5() {
    let obx = "OBX|1|NM|1554-5^GLUCOSE^LN||5.4|mmol/L\rOBX|2|ED|PDF^Report||^AP^PDF^Base64^JVBERi0x!!notbase64||||||F\r";
    let e = err(&oru(obx));
    assert_eq!(e.kind, TranslateErrorKind::InvalidEncodedData);
    assert_error(&e, 102, Disposition::ContentError, Some("OBX(2)-5[1].5"));
}

#[test]
fn oru_without_status_or_obr() {
    let text = oru("OBX|1|NM|X^Y||1\r").replace("|||F\rOBX", "|||\rOBX");
    assert_error(
        &err(&text),
        101,
        Disposition::ContentError,
        Some("OBR(1)-25.1"),
    );
    let no_obr = "MSH|^~\\&|LAB|RYJ|HUB|F83006|20260101120000||ORU^R01|LAB0001|P|2.5.1\rPID|1||9434765919^^^NHS^NH||DOE^JANE\r";
    assert_error(&err(no_obr), 100, Disposition::ContentError, Some("OBR(1)"));
}

#[test]
fn mdm_t02_becomes_a_discharge_summary() {
    let text = format!(
        "MSH|^~\\&|EPR|RYJ|HUB|F83006|20260101120000||MDM^T02^MDM_T02|DOC0001|P|2.4\r\
         EVN|T02|20260101120000\r\
         PID|1||9434765919^^^NHS^NH||DOE^JANE||19800101|F\r\
         PV1|1|I|||||||||||||||||V9^^^RYJ_VISIT\r\
         TXA|1|DS^Discharge summary|TX|20260101100000|C123^WHO^DOCTOR|||||||DOC-77|||||AU\r\
         OBX|1|TX|DIAG^Diagnoses||Line one||||||F\r\
         OBX|2|TX|DIAG^Diagnoses||Line two||||||F\r\
         OBX|3|TX|MEDS^Medications||Aspirin||||||F\r\
         OBX|4|ED|PDF^Rendered||^AP^PDF^Base64^{}||||||F\r",
        b64(PDF)
    );
    let e = ok(&text);
    assert_eq!(e.category, Category::DischargeSummary);
    let Body::Document(d) = e.body else { panic!() };
    assert_eq!(d.document_id, "DOC-77");
    assert_eq!(d.version, 1);
    assert_eq!(d.status, DocumentStatus::Final);
    assert_eq!(d.document_type.code, "373942005");
    assert_eq!(d.title, "Discharge summary");
    assert_eq!(d.sections.len(), 2);
    assert_eq!(d.sections[0].title, "Diagnoses");
    assert_eq!(d.sections[0].text, "Line one\nLine two");
    assert_eq!(d.sections[1].text, "Aspirin");
    assert_eq!(d.attachments.len(), 1);
    assert_eq!(d.encounter.unwrap().value, "V9");
    // An unmapped TXA-2 is 103 at TXA-2.
    let unknown = text.replace("TXA|1|DS^", "TXA|1|ZZ^");
    assert_error(
        &err(&unknown),
        103,
        Disposition::ContentError,
        Some("TXA(1)-2.1"),
    );
}

#[test]
fn ref_i12_becomes_a_referral() {
    let text = "MSH|^~\\&|GP|F83006|HUB|RAL|20260101120000||REF^I12^REF_I12|REF0001|P|2.5\r\
        RF1|A|U|CARD^Cardiology^L|||R-555|20260101100000|||CHEST^Chest pain^L\r\
        PRD|RP^Referring Provider|WHO^DOCTOR^^^DR|^^^^^^O||||G1234567^GMC\r\
        PRD|RT^Referred to Provider|CARDS^TEAM||CARDIO CLINIC\r\
        PID|1||9434765919^^^NHS^NH||DOE^JANE||19800101|F\r\
        NTE|||Chest pain on exertion|^REASON_FOR_CONSULTATION\r";
    let e = ok(text);
    assert_eq!(e.category, Category::Referral);
    assert_eq!(e.addressing.recipients[0].ods_code, ods("RAL"));
    let Body::Referral(r) = e.body else { panic!() };
    assert_eq!(r.referral_id, "R-555");
    assert_eq!(r.priority, ReferralPriority::Urgent);
    assert_eq!(r.service_requested.unwrap().code, "CARD");
    assert_eq!(r.reason.unwrap().code, "CHEST");
    assert_eq!(r.recipient_service.as_deref(), Some("CARDIO CLINIC"));
    let requester = r.requester.unwrap().practitioner.unwrap();
    assert_eq!(requester.identifiers[0].value, "G1234567");
    assert_eq!(
        r.summary.as_deref(),
        Some("REASON_FOR_CONSULTATION: Chest pain on exertion")
    );
    let no_id = text.replace("|||R-555|", "||||");
    assert_error(
        &err(&no_id),
        101,
        Disposition::ContentError,
        Some("RF1(1)-6.1"),
    );
}
