//! Property tests: escaping round-trips, and rendering then parsing any
//! message gives the same message back.

use lhcie_hl7v2::escape::{escape, unescape};
use lhcie_hl7v2::{Component, Delimiters, Field, Message, Repetition, Segment, parse_message};
use proptest::prelude::*;

fn delimiter_sets() -> impl Strategy<Value = Delimiters> {
    prop_oneof![
        Just(Delimiters::default()),
        Just(Delimiters::new('|', '^', '~', '\\', '&', Some('#')).expect("valid")),
        Just(Delimiters::new('*', '~', '|', '\\', '&', None).expect("valid")),
        Just(Delimiters::new('$', '%', '~', '!', '@', None).expect("valid")),
    ]
}

/// Text rich in delimiters, escape look-alikes, line breaks and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[|^~\\\\&#*$%!@a-cHNXZ0-9. \r\né€\"]{0,24}",
        1 => prop::collection::vec(
            prop_oneof![
                Just("\\H\\".to_owned()),
                Just("\\.br\\".to_owned()),
                Just("\\X0D0A\\".to_owned()),
                Just("\\F\\".to_owned()),
                Just("\\E\\".to_owned()),
                Just("!.br!".to_owned()),
                "[a-z|^&\\\\]{0,3}",
            ],
            0..6
        )
        .prop_map(|v| v.concat()),
        1 => any::<String>(),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    let comp = prop::collection::vec(text(), 1..3).prop_map(Component::new);
    let rep = prop::collection::vec(comp, 1..4).prop_map(Repetition::new);
    prop::collection::vec(rep, 1..3).prop_map(Field::new)
}

fn segment_id() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9]{2}".prop_filter("not a framing segment", |id| {
        !matches!(id.as_str(), "MSH" | "FHS" | "BHS" | "BTS" | "FTS")
    })
}

fn message() -> impl Strategy<Value = Message> {
    let msh18 = prop_oneof![
        Just(None),
        Just(Some("UNICODE UTF-8")),
        Just(Some("8859/1")),
        Just(Some("ASCII")),
    ];
    let segment = (segment_id(), prop::collection::vec(field(), 0..5));
    (
        delimiter_sets(),
        prop::collection::vec(field(), 0..12),
        msh18,
        prop::collection::vec(segment, 0..5),
    )
        .prop_map(|(d, msh_fields, msh18, segments)| {
            let mut fields = vec![Field::from_value(""), Field::from_value("")];
            fields.extend(msh_fields);
            if let Some(cs) = msh18 {
                fields.resize(18, Field::from_value(""));
                fields[17] = Field::from_value(cs);
            }
            let mut all = vec![Segment::new("MSH", fields).expect("MSH")];
            for (id, fields) in segments {
                all.push(Segment::new(&id, fields).expect("id"));
            }
            Message::new(d, all).expect("message")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn unescape_inverts_escape(d in delimiter_sets(), s in text()) {
        let escaped = escape(&s, &d);
        prop_assert!(!escaped.contains(d.field()));
        prop_assert!(!escaped.contains(d.component()));
        prop_assert!(!escaped.contains(d.repetition()));
        prop_assert!(!escaped.contains(d.subcomponent()));
        prop_assert!(!escaped.contains('\r') && !escaped.contains('\n'));
        prop_assert_eq!(unescape(&escaped, &d), s);
    }

    #[test]
    fn unescape_never_panics(d in delimiter_sets(), s in any::<String>()) {
        let _ = unescape(&s, &d);
    }

    #[test]
    fn parse_inverts_render(m in message()) {
        let bytes = m.render();
        let parsed = parse_message(&bytes);
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        prop_assert!(parsed.as_ref().ok() == Some(&m), "parse(render(m)) != m");
        // Rendering is stable.
        prop_assert_eq!(parsed.map(|p| p.render()).ok(), Some(bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(prefix in prop_oneof![Just(b"MSH|^~\\&|".to_vec()), Just(Vec::new())],
                                   bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut input = prefix;
        input.extend(bytes);
        if let Ok(m) = parse_message(&input) {
            prop_assert_eq!(parse_message(&m.render()), Ok(m));
        }
        let _ = lhcie_hl7v2::parse_batch(&input);
    }
}
