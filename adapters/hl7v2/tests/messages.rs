//! Parsing, accessors and rendering of single messages and batches.

use lhcie_hl7v2::{
    Charset, DelimiterProblem, Error, ErrorKind, Message, parse_batch, parse_message,
};

const ADT: &str = "MSH|^~\\&|SENDAPP|SENDFAC|RECAPP|RECFAC|20240101120000||ADT^A01^ADT_A01|MSG00001|P|2.5.1||||||UNICODE UTF-8\r\
EVN|A01|20240101120000\r\
PID|1||9434765919^^^NHS^NH~A123^^^RRV^MR&1.2.3&ISO||DOE^JOHN||19800101|M\r\
ZU1|1|local^thing\r";

fn parse(s: &str) -> Message {
    parse_message(s.as_bytes()).expect("parses")
}

#[test]
fn msh_numbering() {
    let m = parse(ADT);
    assert_eq!(m.get("MSH-1"), Some("|"));
    assert_eq!(m.get("MSH-2"), Some("^~\\&"));
    assert_eq!(m.get("MSH-3"), Some("SENDAPP"));
    assert_eq!(m.get("MSH-9.1"), Some("ADT"));
    assert_eq!(m.get("MSH-9.2"), Some("A01"));
    assert_eq!(m.get("MSH-9.3"), Some("ADT_A01"));
    assert_eq!(m.get("MSH-10"), Some("MSG00001"));
    assert_eq!(m.get("MSH-12"), Some("2.5.1"));
    assert_eq!(m.get("MSH-18"), Some("UNICODE UTF-8"));
    assert_eq!(m.charset(), Charset::Utf8);
    let msh = m.msh();
    assert_eq!(msh.field(10).map(|f| f.value()), Some("MSG00001"));
    assert_eq!(msh.value(9, 1, 2, 1), Some("A01"));
    assert_eq!(msh.fields().len(), 18);
}

#[test]
fn accessors_by_position() {
    let m = parse(ADT);
    assert_eq!(m.segments("PID").count(), 1);
    assert_eq!(m.get("PID-3"), Some("9434765919"));
    assert_eq!(m.get("PID-3[1].4"), Some("NHS"));
    assert_eq!(m.get("PID-3[2].1"), Some("A123"));
    assert_eq!(m.get("PID-3[2].5.2"), Some("1.2.3"));
    assert_eq!(m.value("PID", 3, 2, 5, 3), Some("ISO"));
    assert_eq!(m.get("PID-5.2"), Some("JOHN"));
    let pid3 = m.segment("PID").and_then(|s| s.field(3)).expect("PID-3");
    assert_eq!(pid3.repetitions().len(), 2);
    assert_eq!(
        pid3.repetition(2)
            .and_then(|r| r.component(4))
            .map(|c| c.value()),
        Some("RRV")
    );
    // Absent positions, zero and malformed paths.
    assert_eq!(m.get("PID-3[3]"), None);
    assert_eq!(m.get("PID-99"), None);
    assert_eq!(m.get("PID-0"), None);
    assert_eq!(m.get("PID-3[0]"), None);
    assert_eq!(m.get("PV1-1"), None);
    assert_eq!(m.get("nonsense"), None);
    assert_eq!(m.get("PID-2"), Some(""));
}

#[test]
fn z_segment_retained() {
    let m = parse(ADT);
    let ids: Vec<&str> = m.all_segments().iter().map(|s| s.id()).collect();
    assert_eq!(ids, ["MSH", "EVN", "PID", "ZU1"]);
    assert_eq!(m.get("ZU1-2.2"), Some("thing"));
    let rendered = String::from_utf8(m.render()).expect("utf-8");
    assert!(rendered.contains("\rZU1|1|local^thing\r"));
    assert_eq!(rendered, ADT);
}

#[test]
fn non_default_delimiters() {
    // '*' fields, '~' components, '|' repetitions (HAPI's "MSH^~|\&" style).
    let m = parse("MSH*~|\\&*APP*FAC\rPID*1**a~b|c~d\\S\\e");
    let d = m.delimiters();
    assert_eq!((d.field(), d.component(), d.repetition()), ('*', '~', '|'));
    assert_eq!(m.get("MSH-1"), Some("*"));
    assert_eq!(m.get("MSH-2"), Some("~|\\&"));
    assert_eq!(m.get("MSH-4"), Some("FAC"));
    assert_eq!(m.get("PID-3[1].2"), Some("b"));
    assert_eq!(m.get("PID-3[2].2"), Some("d~e"));
    assert_eq!(parse_message(&m.render()), Ok(m));

    let m = parse("MSH$%~\\&$APP$FAC\rPID$1$$x%y");
    assert_eq!(m.get("PID-3.2"), Some("y"));
    assert_eq!(m.get("MSH-3"), Some("APP"));
}

#[test]
fn v27_truncation_character_kept() {
    let m = parse("MSH|^~\\&#|APP\rOBX|1|ST|c||abc#|x\\P\\");
    assert_eq!(m.delimiters().truncation(), Some('#'));
    assert_eq!(m.get("MSH-2"), Some("^~\\&#"));
    assert_eq!(m.get("OBX-5"), Some("abc#"));
    assert_eq!(m.get("OBX-6"), Some("x#"));
    assert_eq!(parse_message(&m.render()), Ok(m));
}

#[test]
fn lf_and_crlf_separators() {
    let cr = parse(ADT);
    let lf = parse(&ADT.replace('\r', "\n"));
    let crlf = parse(&ADT.replace('\r', "\r\n"));
    let trailing = parse(&format!("{}\n\r\n\n", ADT.replace('\r', "\r\n")));
    let no_trailing = parse(ADT.trim_end_matches('\r'));
    assert_eq!(lf, cr);
    assert_eq!(crlf, cr);
    assert_eq!(trailing, cr);
    assert_eq!(no_trailing, cr);
    assert_eq!(cr.all_segments().len(), 4);
}

#[test]
fn hex_escape_and_formatting() {
    let m = parse("MSH|^~\\&|A\rOBX|1|TX|c||line1\\X0D0A\\line2\\.br\\\\H\\x\\N\\|\\F\\\\E\\");
    assert_eq!(m.get("OBX-5"), Some("line1\r\nline2\\.br\\\\H\\x\\N\\"));
    assert_eq!(m.get("OBX-6"), Some("|\\"));
    let rendered = String::from_utf8(m.render()).expect("utf-8");
    assert!(rendered.contains("line1\\X0D\\\\X0A\\line2\\.br\\\\H\\x\\N\\|\\F\\\\E\\\r"));
    assert_eq!(parse_message(&m.render()), Ok(m));
}

/// Regression: `\X…\` with a sign among its "hex digits" was decoded
/// (`u8::from_str_radix` accepts a leading `+`) instead of being kept
/// literally as a malformed escape.
#[test]
fn hex_escape_with_sign_kept_literally() {
    let m = parse_message(b"MSH|^~\\&|A\rOBX|1|TX|c||\\X+F\\|a\\X0A+B\\b\r").expect("parses");
    assert_eq!(m.get("OBX-5"), Some("\\X+F\\"));
    assert_eq!(m.get("OBX-6"), Some("a\\X0A+B\\b"));
    assert_eq!(parse_message(&m.render()), Ok(m));
}

fn latin1_msg(msh18: &str, name: &[u8]) -> Vec<u8> {
    let mut v = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.4||||||{msh18}\rPID|1||1||")
        .into_bytes();
    v.extend_from_slice(name);
    v.extend_from_slice(b"^REN\xc9E\r");
    v
}

#[test]
fn latin1_without_and_with_msh18() {
    // No MSH-18: not valid UTF-8, so read as ISO-8859-1.
    let m = parse_message(&latin1_msg("", b"CAF\xe9")).expect("parses");
    assert_eq!(m.charset(), Charset::Detect);
    assert_eq!(m.get("PID-5"), Some("CAFé"));
    assert_eq!(m.get("PID-5.2"), Some("RENÉE"));
    // Declared 8859/1.
    let bytes = latin1_msg("8859/1", b"CAF\xe9");
    let m = parse_message(&bytes).expect("parses");
    assert_eq!(m.charset(), Charset::Latin1);
    assert_eq!(m.get("PID-5"), Some("CAFé"));
    // Rendering keeps ISO-8859-1, byte for byte.
    assert_eq!(m.render(), bytes);
    // Declared 8859/1 wins even when the bytes happen to be UTF-8.
    let m = parse_message(&latin1_msg("8859/1", "CAFé".as_bytes())).expect("parses");
    assert_eq!(m.get("PID-5"), Some("CAFÃ©"));
    // Without MSH-18, one Latin-1 byte anywhere makes the whole message
    // ISO-8859-1; a message entirely valid UTF-8 is read as UTF-8.
    let m = parse_message(&latin1_msg("", "CAFé".as_bytes())).expect("parses");
    assert_eq!(m.get("PID-5"), Some("CAFÃ©"));
    let utf8 = "MSH|^~\\&|A\rPID|1||1||CAFé^RENÉE\r";
    let m = parse_message(utf8.as_bytes()).expect("parses");
    assert_eq!(m.get("PID-5"), Some("CAFé"));
    assert_eq!(m.get("PID-5.2"), Some("RENÉE"));
    // Declared UTF-8 but Latin-1 bytes: an error saying where, not what.
    let e = parse_message(&latin1_msg("UNICODE UTF-8", b"CAF\xe9")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Undecodable {
                segment: 2,
                field: 5,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("segment 2 (PID) field 5"), "{text}");
    assert!(!text.contains("CAF") && !text.contains("REN"), "{text}");
}

#[test]
fn latin1_render_escapes_characters_beyond_it() {
    let m = parse_message(&latin1_msg("8859/1", b"X")).expect("parses");
    let mut segs = m.all_segments().to_vec();
    segs[1] = lhcie_hl7v2::Segment::new("PID", vec![lhcie_hl7v2::Field::from_value("€ and é")])
        .expect("segment");
    let m = Message::new(*m.delimiters(), segs).expect("message");
    let bytes = m.render();
    assert!(bytes.windows(10).any(|w| w == b"\\XE282AC\\ "));
    assert!(bytes.contains(&0xe9));
    assert_eq!(parse_message(&bytes), Ok(m));
}

#[test]
fn errors_say_where() {
    assert_eq!(parse_message(b""), Err(Error::Empty));
    assert_eq!(parse_message(b"\r\n\n"), Err(Error::Empty));
    let e = parse_message(b"PID|1||secret").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotMsh);
    assert!(!e.to_string().contains("secret"));
    let e = parse_message(b"MSH|^~\\&|A\rpid|secret").unwrap_err();
    assert_eq!(e, Error::InvalidSegmentId { segment: 2 });
    let e = parse_message(b"MSH|^~\\&|A\rPIDX|secret").unwrap_err();
    assert_eq!(e, Error::InvalidSegmentId { segment: 2 });
    let e = parse_message(b"MSH|^~\\&|A\rP\xc3\xa9D|secret").unwrap_err();
    assert_eq!(e, Error::InvalidSegmentId { segment: 2 });
    let e = parse_message(b"MSH|^&&^|A").unwrap_err();
    assert!(matches!(
        e,
        Error::BadDelimiters {
            segment: 1,
            field: 2,
            problem: DelimiterProblem::NotDistinct,
            ..
        }
    ));
    let e = parse_message(b"MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedSegment);
    assert_eq!(e.to_string(), "segment 3 (MSH): unexpected here");
}

#[test]
fn empty_segments_and_fields_kept() {
    let m = parse("MSH|^~\\&\rPD1\rEVN|\rPID|1||||\r");
    assert_eq!(m.msh().fields().len(), 2);
    assert_eq!(m.segment("PD1").map(|s| s.fields().len()), Some(0));
    assert_eq!(m.segment("EVN").map(|s| s.fields().len()), Some(1));
    assert_eq!(m.segment("PID").map(|s| s.fields().len()), Some(5));
    assert_eq!(
        String::from_utf8(m.render()).expect("utf-8"),
        "MSH|^~\\&\rPD1\rEVN|\rPID|1||||\r"
    );
}

#[test]
fn debug_is_redacted() {
    let m = parse(ADT);
    let dbg = format!("{m:?}");
    assert!(dbg.contains("PID"));
    assert!(!dbg.contains("DOE") && !dbg.contains("9434765919"), "{dbg}");
}

const BATCH: &str = "FHS|^~\\&|APP|FAC|||20240101\r\
BHS|^~\\&|APP|FAC|||20240101\r\
MSH|^~\\&|APP|FAC|||20240101||ADT^A04|1|P|2.4\r\
PID|1||111\r\
MSH|^~\\&|APP|FAC|||20240101||ADT^A08|2|P|2.4\r\
PID|1||222\r\
BTS|2\r\
FTS|1\r";

#[test]
fn batch_with_two_messages() {
    let b = parse_batch(BATCH.as_bytes()).expect("parses");
    assert_eq!(b.message_count(), 2);
    assert_eq!(b.batches.len(), 1);
    let fhs = b.file_header.as_ref().expect("FHS");
    assert_eq!(fhs.value(3, 1, 1, 1), Some("APP"));
    assert_eq!(fhs.value(2, 1, 1, 1), Some("^~\\&"));
    assert_eq!(
        b.file_trailer.as_ref().and_then(|s| s.value(1, 1, 1, 1)),
        Some("1")
    );
    let group = &b.batches[0];
    assert_eq!(group.header.as_ref().map(|s| s.id()), Some("BHS"));
    assert_eq!(
        group.trailer.as_ref().and_then(|s| s.value(1, 1, 1, 1)),
        Some("2")
    );
    let ids: Vec<_> = b
        .messages()
        .map(|m| m.get("MSH-9.2").unwrap_or(""))
        .collect();
    assert_eq!(ids, ["A04", "A08"]);
    assert_eq!(
        b.messages().nth(1).and_then(|m| m.get("PID-3")),
        Some("222")
    );
}

#[test]
fn batch_accepts_bare_messages_and_rejects_bad_shapes() {
    let b = parse_batch(ADT.as_bytes()).expect("one message");
    assert_eq!(b.message_count(), 1);
    assert_eq!(b.messages().next(), Some(&parse(ADT)));
    let two = format!("{ADT}{ADT}");
    assert_eq!(
        parse_batch(two.as_bytes()).map(|b| b.message_count()),
        Ok(2)
    );
    assert_eq!(
        parse_message(two.as_bytes()).map_err(|e| e.kind()),
        Err(ErrorKind::UnexpectedSegment)
    );
    let kind = |s: &str| parse_batch(s.as_bytes()).map(|_| ()).map_err(|e| e.kind());
    assert_eq!(kind("BHS|^~\\&\rEVN|1\rBTS|0"), Err(ErrorKind::MissingMsh));
    assert_eq!(
        kind("BHS|^~\\&\rMSH|^~\\&\rBHS|^~\\&"),
        Err(ErrorKind::UnexpectedSegment)
    );
    assert_eq!(
        kind("MSH|^~\\&\rFHS|^~\\&"),
        Err(ErrorKind::UnexpectedSegment)
    );
    assert_eq!(kind("MSH|^~\\&\rBTS|1"), Err(ErrorKind::UnexpectedSegment));
    assert_eq!(
        kind("FHS|^~\\&\rFTS|0\rMSH|^~\\&"),
        Err(ErrorKind::UnexpectedSegment)
    );
    assert_eq!(kind("PID|1"), Err(ErrorKind::NotBatchStart));
    assert_eq!(kind(""), Err(ErrorKind::Empty));
    // A batch left open (no BTS) is accepted.
    assert_eq!(kind("BHS|^~\\&\rMSH|^~\\&"), Ok(()));
}
