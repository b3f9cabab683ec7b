//! Hostile and awkward inputs: depth, size, arbitrary bytes and JSON,
//! resends, sender checks, and what diagnostics may show.

mod support;

use lhcie_fhir_r4::{IssueType, ReadLimits, read_document_reference, read_message_bundle};
use lhcie_model::OdsCode;
use proptest::prelude::*;
use serde_json::Value;

fn discharge() -> Vec<u8> {
    std::fs::read(support::fixtures().join("handwritten/discharge_summary_message.json"))
        .expect("fixture")
}

#[test]
fn hundred_thousand_nested_arrays_are_refused_without_recursion() {
    let ctx = support::context();
    let mut deep = b"{\"resourceType\":\"Bundle\",\"entry\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.push(b'}');
    for r in [
        read_message_bundle(&deep, &ReadLimits::default(), &ctx),
        read_document_reference(&deep, &ReadLimits::default(), &ctx),
    ] {
        let e = r.expect_err("too deep");
        assert_eq!((e.status, e.issue().code), (400, IssueType::TooCostly));
    }
}

#[test]
fn oversized_bodies_get_413_and_itk_20015() {
    let limits = ReadLimits {
        max_bytes: 10_000,
        ..ReadLimits::default()
    };
    let e = read_message_bundle(&discharge(), &limits, &support::context()).expect_err("big");
    assert_eq!((e.status, e.itk_code), (413, Some("20015")));
    let oo = e.operation_outcome();
    assert_eq!(oo["issue"][0]["code"], "too-long");
    assert_eq!(
        oo["issue"][0]["details"]["coding"][0]["system"],
        "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1"
    );
}

#[test]
fn a_resend_is_a_duplicate_and_another_exchange_is_not() {
    let ctx = support::context();
    let a = read_message_bundle(&discharge(), &ReadLimits::default(), &ctx).expect("reads");
    // Same message, re-serialised differently: same id.
    let v: Value = serde_json::from_slice(&discharge()).expect("json");
    let compact = serde_json::to_vec(&v).expect("json");
    let b = read_message_bundle(&compact, &ReadLimits::default(), &ctx).expect("reads");
    assert_eq!(a.envelope.message_id, b.envelope.message_id);
    let mut other = ctx.clone();
    other.exchange_id = lhcie_model::ExchangeId::parse("ncl-other").expect("id");
    let c = read_message_bundle(&discharge(), &ReadLimits::default(), &other).expect("reads");
    assert_ne!(a.envelope.message_id, c.envelope.message_id);
    // A different MessageHeader id: a different message.
    let mut v2 = v.clone();
    v2["entry"][0]["resource"]["id"] = "9a1c2e3f-0000-4000-8000-999999999999".into();
    let d = read_message_bundle(
        &serde_json::to_vec(&v2).expect("json"),
        &ReadLimits::default(),
        &ctx,
    )
    .expect("reads");
    assert_ne!(a.envelope.message_id, d.envelope.message_id);
}

#[test]
fn senders_outside_the_served_list_get_403() {
    let mut ctx = support::context();
    ctx.served_organisations = vec![OdsCode::parse("RAL").expect("ods")];
    let e = read_message_bundle(&discharge(), &ReadLimits::default(), &ctx).expect_err("403");
    assert_eq!((e.status, e.issue().code), (403, IssueType::Security));
    ctx.served_organisations
        .push(OdsCode::parse("RYJ").expect("ods"));
    assert!(read_message_bundle(&discharge(), &ReadLimits::default(), &ctx).is_ok());
}

#[test]
fn no_recipient_anywhere_is_422_required() {
    let mut ctx = support::context();
    ctx.default_recipients.clear();
    let mut v: Value = serde_json::from_slice(&discharge()).expect("json");
    v["entry"][0]["resource"]["destination"] =
        serde_json::json!([{"endpoint": "https://x.example"}]);
    let e = read_message_bundle(
        &serde_json::to_vec(&v).expect("json"),
        &ReadLimits::default(),
        &ctx,
    )
    .expect_err("no recipient");
    assert_eq!(e.issue().code, IssueType::Required);
    assert_eq!(
        e.issue().expression.as_deref(),
        Some("Bundle.entry[0].resource.destination")
    );
}

#[test]
fn unmapped_document_types_are_refused_and_mapped_ones_accepted() {
    let bytes =
        std::fs::read(support::fixtures().join("corpus/bars/bars_documentreference_post.json"))
            .expect("fixture");
    let mut ctx = support::context();
    let e = read_document_reference(&bytes, &ReadLimits::default(), &ctx).expect_err("unmapped");
    assert_eq!(
        e.issue().expression.as_deref(),
        Some("DocumentReference.type")
    );
    ctx.document_types.push(lhcie_fhir_r4::DocumentTypeMapping {
        document_type: lhcie_model::Coding::snomed("749001000000101", "Appointment"),
        category: lhcie_model::Category::CancerDocument,
    });
    let inbound = read_document_reference(&bytes, &ReadLimits::default(), &ctx).expect("mapped");
    assert_eq!(
        inbound.envelope.category,
        lhcie_model::Category::CancerDocument
    );
    assert_eq!(inbound.envelope.sender.ods_code.as_str(), "RGT");
}

#[test]
fn diagnostics_never_show_patient_values() {
    let ctx = support::context();
    let dir = support::fixtures().join("handwritten");
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("reads");
        let Err(e) = read_message_bundle(&bytes, &ReadLimits::default(), &ctx) else {
            continue;
        };
        let shown = format!("{e} {e:?} {}", e.operation_outcome());
        for secret in [
            "943476",
            "FICTIONAL",
            "ROBIN",
            "W2 1AA",
            "1958",
            "MRN4471920",
        ] {
            assert!(
                !shown.contains(secret),
                "{}: {secret} in {shown}",
                path.display()
            );
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z:/#_.-]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("Bundle"),
            Just("message"),
            Just("MessageHeader"),
            Just("Patient"),
            Just("urn:uuid:1"),
            Just("Patient/1"),
            Just("https://fhir.nhs.uk/Id/nhs-number"),
            Just("9434761077"),
            Just("reference"),
            Just("Composition"),
            Just("A04"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("resourceType".to_owned()),
                    Just("type".to_owned()),
                    Just("entry".to_owned()),
                    Just("resource".to_owned()),
                    Just("fullUrl".to_owned()),
                    Just("focus".to_owned()),
                    Just("reference".to_owned()),
                    Just("identifier".to_owned()),
                    Just("system".to_owned()),
                    Just("value".to_owned()),
                    Just("subject".to_owned()),
                    Just("eventCoding".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let ctx = support::context();
        let _ = read_message_bundle(&bytes, &ReadLimits::default(), &ctx);
        let _ = read_document_reference(&bytes, &ReadLimits::default(), &ctx);
        let _ = lhcie_fhir_r4::read_response(200, &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let ctx = support::context();
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        for r in [
            read_message_bundle(&bytes, &ReadLimits::default(), &ctx),
            read_document_reference(&bytes, &ReadLimits::default(), &ctx),
        ] {
            if let Err(e) = r {
                prop_assert!([400, 403, 413, 422].contains(&e.status));
            }
        }
    }

    /// Mutating one element of a valid message gives an envelope or a
    /// rejection, never a panic.
    #[test]
    fn mutated_messages_never_panic(entry in 0usize..8, key in "[a-zA-Z]{1,12}", replacement in arb_json()) {
        let ctx = support::context();
        let mut v: Value = serde_json::from_slice(&discharge()).unwrap_or_default();
        if let Some(resource) = v["entry"][entry]["resource"].as_object_mut() {
            let k = resource.keys().nth(key.len() % resource.len().max(1)).cloned().unwrap_or(key);
            resource.insert(k, replacement);
        }
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let _ = read_message_bundle(&bytes, &ReadLimits::default(), &ctx);
    }
}
