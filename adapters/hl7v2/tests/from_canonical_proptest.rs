//! Arbitrary text (delimiters, escape characters, formatting-escape look-
//! alikes, quotes, non-ASCII, CR and LF) in section titles and texts and in
//! the patient's name renders to a message that parses and gives the text
//! back: exactly at the message level (line breaks become repetitions, so
//! CR LF and CR read back as LF), and through the translator as it reads
//! text (values trimmed, blank lines and the HL7 null `""` dropped).

#[path = "from_canonical_support.rs"]
mod support;

use lhcie_hl7v2::{parse_message, render_envelope, translate};
use lhcie_model::{Body, DocumentSection, HumanName, examples};
use proptest::prelude::*;
use support::{rctx, tctx};

fn text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        4 => prop::sample::select(vec![
            "|", "^", "&", "~", "\\", "\r", "\n", "\r\n", "\"\"", "\"", " ", "\\H\\", "\\.br\\",
            "\\X0D\\", "\\F\\", "é", "家", "😀", "\u{a0}", "\t", "a", "Z", "0",
        ])
        .prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        2 => "[a-zA-Z0-9 ]{1,8}",
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

fn normalise_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// A value as the translator reads it: trimmed, absent if blank or `""`.
fn present(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && t != "\"\"").then_some(t)
}

/// A section text as the translator reads it: one line per repetition,
/// blank (and `""`) lines dropped, a trailing `^` run trimmed.
fn translated_text(s: &str) -> String {
    normalise_newlines(s)
        .split('\n')
        .filter(|l| present(l).is_some())
        .map(|l| l.trim_end_matches('^'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_renders_parses_and_round_trips(
        title in text(),
        body in text(),
        second in text(),
        family in text(),
        given in prop::collection::vec(text(), 0..3),
    ) {
        let mut e = examples::discharge_summary();
        e.patient.as_mut().unwrap().name = Some(HumanName {
            family: Some(family.clone()),
            given: given.clone(),
            prefix: None,
            suffix: None,
        });
        let Body::Document(d) = &mut e.body else { unreachable!() };
        d.sections = vec![
            DocumentSection { code: None, title: title.clone(), text: body.clone(), media_type: "text/plain".into() },
            DocumentSection { code: None, title: "Second".into(), text: second.clone(), media_type: "text/plain".into() },
        ];
        let bytes = render_envelope(&e, &rctx()).unwrap();
        // No value can end a segment early: exactly one CR per segment.
        let m = parse_message(&bytes).unwrap();
        prop_assert_eq!(bytes.iter().filter(|b| **b == b'\r').count(), m.all_segments().len());
        prop_assert!(!bytes.contains(&b'\n'));

        // The message holds the text exactly.
        let obx = m.segments("OBX").next().unwrap();
        let lines: Vec<&str> = obx.field(5).unwrap().repetitions().iter().map(|r| {
            prop_assert_eq!(r.components().len(), 1);
            prop_assert_eq!(r.components()[0].subcomponents().len(), 1);
            Ok(r.value())
        }).collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(lines.join("\n"), normalise_newlines(&body));
        prop_assert_eq!(obx.value(3, 1, 2, 1), Some(title.as_str()));
        prop_assert_eq!(m.get("PID-5.1"), Some(family.as_str()));

        // And the translator reads it back as it reads any text.
        let got = translate(&m, &tctx()).unwrap().envelope;
        let Body::Document(g) = &got.body else { unreachable!() };
        prop_assert_eq!(g.sections.len(), 2);
        prop_assert_eq!(&g.sections[0].text, &translated_text(&body));
        prop_assert_eq!(&g.sections[1].text, &translated_text(&second));
        prop_assert_eq!(g.sections[0].title.as_str(), present(&title).unwrap_or("SECTION"));
        let name = got.patient.unwrap().name;
        let expected_given: Vec<String> = [
            given.first().cloned().unwrap_or_default(),
            given.iter().skip(1).cloned().collect::<Vec<_>>().join(" "),
        ]
        .iter()
        .filter_map(|g| present(g).map(str::to_owned))
        .collect();
        prop_assert_eq!(name.as_ref().and_then(|n| n.family.as_deref()), present(&family));
        prop_assert_eq!(name.map(|n| n.given).unwrap_or_default(), expected_given);
    }
}

/// Every event kind the care-event renderer knows.
const KINDS: [lhcie_model::CareEventKind; 9] = {
    use lhcie_model::CareEventKind as K;
    [
        K::Admission,
        K::Discharge,
        K::Transfer,
        K::Attendance,
        K::Registration,
        K::PreAdmission,
        K::Death,
        K::DemographicsUpdate,
        K::Merge,
    ]
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Issue 16 item 5: what the adapter renders for an HL7 trust passes the
    /// same required-content table it checks on receipt
    /// (`lhcie_hl7v2::required`), for every example envelope and every
    /// care-event kind, with or without an encounter, whatever the name.
    #[test]
    fn every_rendered_message_has_its_required_content(
        which in 0usize..64,
        kind in 0usize..KINDS.len(),
        with_encounter in any::<bool>(),
        family in text(),
    ) {
        let all: Vec<_> = examples::all()
            .into_iter()
            .filter(|e| !matches!(e.body, Body::Acknowledgement(_)))
            .collect();
        let mut e = all[which % all.len()].clone();
        if let Some(n) = e.patient.as_mut().and_then(|p| p.name.as_mut()) {
            n.family = Some(family);
        }
        if let Body::CareEvent(ev) = &mut e.body {
            ev.kind = KINDS[kind];
            if !with_encounter {
                ev.encounter = None;
            }
        }
        // Envelopes the renderer refuses (e.g. a merge without its prior
        // identifier) produce no message, so nothing to check.
        let Ok(bytes) = render_envelope(&e, &rctx()) else { return Ok(()) };
        let m = parse_message(&bytes).unwrap();
        if let Err(err) = lhcie_hl7v2::required::check(&m) {
            prop_assert!(false, "{:?} rendered without required content: {err}\n{}", m.get("MSH-9"), String::from_utf8_lossy(&bytes));
        }
    }
}
