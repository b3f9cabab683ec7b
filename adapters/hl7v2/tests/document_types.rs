//! Every document type of the table (`lhcie_hl7v2::document_types`) both
//! ways: an `MDM^T02` with that TXA-2.1 translates to its category and
//! SNOMED CT type, and the canonical document renders back with the same
//! TXA-2.1. One golden file per type (`fixtures/document-types/<code>.json`,
//! `LHCIE_UPDATE_GOLDEN=1` to regenerate); an unknown code is AE 103 at
//! TXA-2.1 with ERR-8 naming it; a configured code is read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lhcie_hl7v2::document_types::{DocumentTypeMapping, default_document_types, with_configured};
use lhcie_hl7v2::{
    RenderContext, TranslateContext, build_ack_for_result, parse_message, render_envelope,
    translate,
};
use lhcie_model::{Body, Category, Coding, ExchangeId};

const NOW: time::OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

fn ctx(types: Vec<DocumentTypeMapping>) -> TranslateContext {
    let mut ctx = TranslateContext::new(ExchangeId::parse("nwl-test").unwrap(), NOW);
    ctx.document_types = types;
    ctx
}

fn mdm(txa_type: &str) -> String {
    format!(
        "MSH|^~\\&|EPR|RYJ|HUB|F83006|20260101120000||MDM^T02^MDM_T02|DOC0001|P|2.4\r\
         EVN|T02|20260101120000\r\
         PID|1||9434765919^^^NHS^NH||DOE^JANE||19800101|F\r\
         PV1|1|I\r\
         TXA|1|{txa_type}|TX|20260101100000|C123^WHO^DOCTOR|||||||DOC-77|||||AU\r\
         OBX|1|TX|BODY^Letter||Text of the letter||||||F\r"
    )
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/document-types")
}

/// What each type becomes: category, SNOMED CT type, title, and the TXA-2
/// written back.
fn outcomes() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for mapping in default_document_types() {
        let text = mdm(&mapping.txa_type);
        let translated = translate(
            &parse_message(text.as_bytes()).unwrap(),
            &ctx(default_document_types()),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", mapping.txa_type));
        let envelope = translated.envelope;
        let Body::Document(doc) = &envelope.body else {
            panic!("{}: not a document", mapping.txa_type)
        };
        let rendered = render_envelope(&envelope, &RenderContext::new("EPR", "RAL", NOW)).unwrap();
        let back = parse_message(&rendered).unwrap();
        let value = serde_json::json!({
            "txa_2_1": mapping.txa_type,
            "category": envelope.category.as_str(),
            "document_type": {
                "system": doc.document_type.system,
                "code": doc.document_type.code,
                "display": doc.document_type.display,
            },
            "title": doc.title,
            "rendered_txa_2": (1..=6)
                .map(|c| back.value("TXA", 2, 1, c, 1).unwrap_or("").to_owned())
                .collect::<Vec<_>>(),
        });
        let mut json = serde_json::to_string_pretty(&value).unwrap();
        json.push('\n');
        out.insert(format!("{}.json", mapping.txa_type), json);
    }
    out
}

#[test]
fn every_type_matches_its_golden_file_and_keeps_its_code_both_ways() {
    let expected = outcomes();
    if std::env::var_os("LHCIE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        for (name, text) in &expected {
            std::fs::write(dir().join(name), text).unwrap();
        }
        return;
    }
    for (name, text) in &expected {
        let actual = std::fs::read_to_string(dir().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (LHCIE_UPDATE_GOLDEN=1 to write it)"));
        assert_eq!(
            &actual, text,
            "{name} differs (LHCIE_UPDATE_GOLDEN=1, then review)"
        );
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            value["rendered_txa_2"][0], value["txa_2_1"],
            "{name}: code lost"
        );
    }
    for required in [
        "DS", "CN", "OP", "ED", "RL", "MDT", "EOLCP", "RR", "HP", "PR",
    ] {
        assert!(
            expected.contains_key(&format!("{required}.json")),
            "{required}"
        );
    }
}

#[test]
fn an_unknown_type_is_ae_103_at_txa_2_1_naming_the_code() {
    let original = parse_message(mdm("XLET^Local letter").as_bytes()).unwrap();
    let e = translate(&original, &ctx(default_document_types())).unwrap_err();
    assert_eq!(e.code().number(), Some(103));
    let ack = build_ack_for_result(&original, Err(&e), "A1", NOW);
    assert_eq!(ack.value("MSA", 1, 1, 1, 1), Some("AE"));
    assert_eq!(ack.value("ERR", 2, 1, 1, 1), Some("TXA"));
    assert_eq!(ack.value("ERR", 2, 1, 3, 1), Some("2"));
    assert_eq!(ack.value("ERR", 2, 1, 5, 1), Some("1"));
    assert_eq!(ack.value("ERR", 3, 1, 1, 1), Some("103"));
    let words = ack.value("ERR", 8, 1, 1, 1).unwrap();
    assert!(
        words.contains("XLET") && words.contains("TXA-2.1"),
        "{words}"
    );
    // Display (what is logged) does not repeat it.
    assert!(!e.to_string().contains("XLET"));
}

#[test]
fn a_code_that_is_not_plain_is_not_repeated() {
    let original = parse_message(mdm("X\\T\\Y").as_bytes()).unwrap();
    let e = translate(&original, &ctx(default_document_types())).unwrap_err();
    let words = e.user_message.unwrap();
    assert!(
        words.contains("the value") && !words.contains('&'),
        "{words}"
    );
}

#[test]
fn a_configured_type_is_read_and_written_back() {
    let types = with_configured(&[DocumentTypeMapping {
        txa_type: "XLET".into(),
        category: Category::CancerDocument,
        document_type: Coding::snomed("1000000000000", "Local cancer letter"),
    }]);
    let original = parse_message(mdm("XLET").as_bytes()).unwrap();
    let envelope = translate(&original, &ctx(types.clone())).unwrap().envelope;
    assert_eq!(envelope.category, Category::CancerDocument);
    let mut render = RenderContext::new("EPR", "RAL", NOW);
    render.document_types = types;
    let back = parse_message(&render_envelope(&envelope, &render).unwrap()).unwrap();
    assert_eq!(back.value("TXA", 2, 1, 1, 1), Some("XLET"));
}
