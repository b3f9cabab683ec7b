//! Original-mode acknowledgements: built for AA, AE and AR, parsed back
//! with our parser, ERR as specified.

use lhcie_hl7v2::ack::{AckError, parse_error_code};
use lhcie_hl7v2::{
    AckCode, ErrorCode, ErrorLocation, Message, TranslateContext, build_ack, build_ack_for_result,
    build_ack_for_unparseable, parse_message, translate,
};
use lhcie_model::ExchangeId;

const NOW: time::OffsetDateTime = time::macros::datetime!(2026-07-01 09:30:15 +01:00);

fn ctx() -> TranslateContext {
    TranslateContext::new(ExchangeId::parse("nwl-test").unwrap(), NOW)
}

fn adt(pid3: &str, version: &str) -> Message {
    let text = format!(
        "MSH|^~\\&|PAS^1.2.3^ISO|RYJ|HUB|F83006|20260101120000||ADT^A01^ADT_A01|MSG0001|T|{version}\r\
         EVN||20260101115500\r\
         PID|1||{pid3}||DOE^JANE||19800101|F\r\
         PV1|1|I\r"
    );
    parse_message(text.as_bytes()).unwrap()
}

/// Renders and parses back, as a receiver would.
fn round_trip(ack: &Message) -> Message {
    let bytes = ack.render();
    let again = parse_message(&bytes).expect("ACK parses back");
    assert_eq!(&again, ack);
    again
}

#[test]
fn aa_swaps_sender_and_receiver_and_echoes_the_control_id() {
    let original = adt("9434765919^^^NHS^NH", "2.4");
    let t = translate(&original, &ctx()).unwrap();
    let ack = round_trip(&build_ack_for_result(&original, Ok(&t), "ACK0001", NOW));
    assert_eq!(ack.get("MSH-3"), Some("HUB"));
    assert_eq!(ack.get("MSH-4"), Some("F83006"));
    assert_eq!(ack.get("MSH-5"), Some("PAS"));
    assert_eq!(ack.get("MSH-5.2"), Some("1.2.3"), "HD components kept");
    assert_eq!(ack.get("MSH-6"), Some("RYJ"));
    assert_eq!(ack.get("MSH-7"), Some("20260701083015+0000"));
    assert_eq!(ack.get("MSH-9"), Some("ACK"));
    assert_eq!(ack.get("MSH-9.2"), Some("A01"));
    assert_eq!(ack.get("MSH-9.3"), Some("ACK"));
    assert_eq!(ack.get("MSH-10"), Some("ACK0001"));
    assert_eq!(ack.get("MSH-11"), Some("T"));
    assert_eq!(ack.get("MSH-12"), Some("2.4"));
    assert_eq!(ack.get("MSA-1"), Some("AA"));
    assert_eq!(ack.get("MSA-2"), Some("MSG0001"));
    assert!(ack.segment("ERR").is_none());
    let ids: Vec<&str> = ack.all_segments().iter().map(|s| s.id()).collect();
    assert_eq!(ids, ["MSH", "MSA"]);
}

#[test]
fn ae_for_an_invalid_nhs_number_points_at_pid3() {
    let original = adt("A1^^^RRV^MR~9434765918^^^NHS^NH", "2.5");
    let e = translate(&original, &ctx()).unwrap_err();
    let ack = round_trip(&build_ack_for_result(&original, Err(&e), "ACK0002", NOW));
    assert_eq!(ack.get("MSA-1"), Some("AE"));
    assert_eq!(ack.get("MSA-2"), Some("MSG0001"));
    assert_eq!(ack.get("MSA-3"), Some("Data type error"));
    // ERR-2 (ERL): segment ^ sequence ^ field ^ repetition ^ component.
    assert_eq!(ack.get("ERR-2.1"), Some("PID"));
    assert_eq!(ack.get("ERR-2.2"), Some("1"));
    assert_eq!(ack.get("ERR-2.3"), Some("3"));
    assert_eq!(ack.get("ERR-2.4"), Some("2"));
    assert_eq!(ack.get("ERR-2.5"), Some("1"));
    // ERR-3: the table 0357 code.
    assert_eq!(ack.get("ERR-3.1"), Some("102"));
    assert_eq!(ack.get("ERR-3.2"), Some("Data type error"));
    assert_eq!(ack.get("ERR-3.3"), Some("HL70357"));
    assert_eq!(ack.get("ERR-4"), Some("E"));
    // ERR-1 (ELD) for receivers before v2.5.
    assert_eq!(ack.get("ERR-1.1"), Some("PID"));
    assert_eq!(ack.get("ERR-1.3"), Some("3"));
    assert_eq!(ack.get("ERR-1.4.1"), Some("102"));
    // No patient data anywhere in the ACK.
    let text = String::from_utf8(ack.render()).unwrap();
    for secret in ["943476591", "DOE", "JANE", "A1^", "19800101"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn ar_for_an_unsupported_type_and_version() {
    let siu =
        parse_message(b"MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||SIU^S12|SCH1|P|2.4\rSCH|1\r")
            .unwrap();
    let e = translate(&siu, &ctx()).unwrap_err();
    let ack = round_trip(&build_ack_for_result(&siu, Err(&e), "ACK0003", NOW));
    assert_eq!(ack.get("MSA-1"), Some("AR"));
    assert_eq!(ack.get("MSA-2"), Some("SCH1"));
    assert_eq!(ack.get("MSH-9.2"), Some("S12"));
    assert_eq!(ack.get("ERR-3.1"), Some("200"));
    assert_eq!(ack.get("ERR-2"), Some("MSH"));
    assert_eq!(ack.get("ERR-2.3"), Some("9"));
    assert_eq!(ack.get("ERR-2.5"), Some("1"));
    assert_eq!(ack.get("ERR-4"), Some("E"));

    let v = adt("9434765919^^^NHS^NH", "3.0");
    let e = translate(&v, &ctx()).unwrap_err();
    let ack = round_trip(&build_ack_for_result(&v, Err(&e), "ACK0004", NOW));
    assert_eq!(ack.get("MSA-1"), Some("AR"));
    assert_eq!(ack.get("ERR-3.1"), Some("203"));
    assert_eq!(ack.get("ERR-2.3"), Some("12"));
    assert_eq!(ack.get("MSH-12"), Some("3.0"), "version echoed as received");
}

#[test]
fn missing_segment_errors_locate_the_segment_only() {
    let original = parse_message(
        b"MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||ADT^A01|MSG9|P|2.5\rEVN||20260101\r",
    )
    .unwrap();
    let e = translate(&original, &ctx()).unwrap_err();
    let ack = round_trip(&build_ack_for_result(&original, Err(&e), "A9", NOW));
    assert_eq!(ack.get("MSA-1"), Some("AE"));
    assert_eq!(ack.get("ERR-2.1"), Some("PID"));
    assert_eq!(ack.get("ERR-2.2"), Some("1"));
    assert_eq!(ack.get("ERR-2.3"), None, "no field position");
    // A missing segment is 100, not 101 (required field missing).
    assert_eq!(ack.get("ERR-3.1"), Some("100"));
}

#[test]
fn several_errors_and_explicit_codes() {
    let original = adt("9434765919^^^NHS^NH", "2.5");
    let errors = [
        AckError {
            code: ErrorCode::ApplicationInternalError,
            location: None,
        },
        AckError {
            code: ErrorCode::TableValueNotFound,
            location: Some(ErrorLocation::field("PID", 1, 8).comp(1)),
        },
    ];
    let ack = round_trip(&build_ack(&original, AckCode::Reject, &errors, "A10", NOW));
    assert_eq!(ack.get("MSA-1"), Some("AR"));
    assert_eq!(ack.segments("ERR").count(), 2);
    assert_eq!(ack.get("ERR(1)-3.1"), Some("207"));
    assert_eq!(ack.get("ERR(1)-2"), Some(""));
    assert_eq!(ack.get("ERR(2)-3.1"), Some("103"));
    assert_eq!(ack.get("ERR(2)-2.3"), Some("8"));
    // AA never carries ERR, even if errors are passed.
    let aa = build_ack(&original, AckCode::Accept, &errors, "A11", NOW);
    assert!(aa.segment("ERR").is_none());
}

#[test]
fn delimiters_and_charset_of_the_original_are_kept() {
    let text = "MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101120000||ADT^A01|M1|P|2.4||||||8859/1\rPID|1\r";
    let original = parse_message(text.as_bytes()).unwrap();
    let ack = round_trip(&build_ack(&original, AckCode::Accept, &[], "A12", NOW));
    assert_eq!(ack.get("MSH-18"), Some("8859/1"));
    let odd = "MSH$%~\\&$PAS$RYJ$HUB$F83006$20260101$$ADT%A01$M2$P$2.4\rPID$1\r";
    let original = parse_message(odd.as_bytes()).unwrap();
    let ack = build_ack(&original, AckCode::Accept, &[], "A13", NOW);
    assert!(ack.render().starts_with(b"MSH$%~\\&$HUB$F83006$PAS$RYJ$"));
    let ack = round_trip(&ack);
    assert_eq!(ack.get("MSH-9.2"), Some("A01"));
}

#[test]
fn minimal_ack_for_unparseable_input() {
    // A readable MSH, a broken segment after it.
    let input = b"MSH|^~\\&|PAS|RYJ|HUB|F83006|20260101||ADT^A01|CTRL1|P|2.4\rP!D|1||9434765919\r";
    let error = parse_message(input).unwrap_err();
    let ack = round_trip(&build_ack_for_unparseable(input, Some(&error), "A20", NOW));
    assert_eq!(ack.get("MSH-3"), Some("HUB"));
    assert_eq!(ack.get("MSH-4"), Some("F83006"));
    assert_eq!(ack.get("MSH-5"), Some("PAS"));
    assert_eq!(ack.get("MSH-6"), Some("RYJ"));
    assert_eq!(ack.get("MSH-9.2"), Some("A01"));
    assert_eq!(ack.get("MSH-10"), Some("A20"));
    assert_eq!(ack.get("MSH-12"), Some("2.4"));
    assert_eq!(ack.get("MSA-1"), Some("AR"));
    assert_eq!(ack.get("MSA-2"), Some("CTRL1"));
    assert_eq!(ack.get("ERR-3.1"), Some("102"));
    assert_eq!(ack.get("ERR-4"), Some("E"));
    assert!(!String::from_utf8_lossy(&ack.render()).contains("9434765919"));

    // Nothing readable at all: defaults.
    for input in [
        &b""[..],
        b"garbage",
        b"MSH",
        b"\x0bMSH\x01\x02",
        b"MSH|^~\\&",
    ] {
        let error = parse_message(input).err();
        let ack = round_trip(&build_ack_for_unparseable(
            input,
            error.as_ref(),
            "A21",
            NOW,
        ));
        assert_eq!(ack.get("MSA-1"), Some("AR"));
        assert_eq!(ack.get("MSH-9"), Some("ACK"));
        assert_eq!(ack.get("MSH-11"), Some("P"));
        assert_eq!(ack.get("MSH-12"), Some("2.5"));
        assert!(ack.get("ERR-3.1").is_some());
    }
    assert_eq!(
        parse_error_code(&parse_message(b"PID|1\r").unwrap_err()),
        ErrorCode::SegmentSequenceError
    );
}

#[test]
fn every_corpus_failure_gets_a_parseable_ack() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut n = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            match parse_message(&bytes) {
                Ok(m) => {
                    let outcome = translate(&m, &ctx());
                    round_trip(&build_ack_for_result(&m, outcome.as_ref(), "X1", NOW));
                }
                Err(e) => {
                    round_trip(&build_ack_for_unparseable(&bytes, Some(&e), "X1", NOW));
                }
            }
            n += 1;
        }
    }
    assert!(n > 80);
}
