//! Small builders over the message tree and the HL7 data types the bodies
//! share: TS/DTM, HD, CX, XPN, XCN, CE, PL.
//!
//! Values are set unescaped; [`crate::Message::render`] escapes them, so a
//! value holding `| ^ & ~ \` or CR/LF cannot break the structure. Trailing
//! empty components and subcomponents are not written.
//!
//! | canonical | HL7 type | written as |
//! |---|---|---|
//! | time | TS | `YYYYMMDDHHMMSS[.SSSS]+0000` (UTC, 100 µs precision) |
//! | date | DT | `YYYYMMDD` |
//! | identifier system | HD | URI or OID: `&<system>&URI` / `&<oid>&ISO`; else `<system>` (namespace) |
//! | identifier | CX | `value^^^<HD>^<type>` |
//! | name | XPN | `family^given1^other given (space-joined)^suffix^prefix^^L` |
//! | practitioner | XCN | `id^family^given1^others^suffix^prefix^^^<authority>^^^^<type>`, one repetition per identifier |
//! | coding | CE | `code^display^<system name>` (SCT, LN, I10, OPCS4, else the system as given) |

use lhcie_model::{Coding, HumanName, Identifier, Location, Practitioner, SNOMED_CT_SYSTEM};
use time::{Date, OffsetDateTime, UtcOffset};

use crate::{Component, Field, Repetition, Segment};

/// A segment under construction; fields are numbered as HL7 numbers them
/// (for MSH, fields 1 and 2 are placeholders that [`crate::Message::new`]
/// fills with the delimiters).
pub(crate) struct SegmentBuilder {
    id: &'static str,
    fields: Vec<Field>,
}

impl SegmentBuilder {
    pub(crate) fn new(id: &'static str) -> Self {
        Self {
            id,
            fields: Vec::new(),
        }
    }

    /// Sets field `n` (1-based), padding with empty fields.
    pub(crate) fn set(&mut self, n: usize, field: Field) -> &mut Self {
        if self.fields.len() < n {
            self.fields.resize(n, Field::from_value(""));
        }
        self.fields[n - 1] = field;
        self
    }

    /// Sets field `n` if `field` is `Some`.
    pub(crate) fn set_opt(&mut self, n: usize, field: Option<Field>) -> &mut Self {
        if let Some(f) = field {
            self.set(n, f);
        }
        self
    }

    pub(crate) fn build(&mut self) -> Segment {
        let fields = std::mem::take(&mut self.fields);
        // Ids here are constants of three upper-case letters.
        Segment::new(self.id, fields)
            .unwrap_or_else(|_| unreachable!("constant segment id {}", self.id))
    }
}

/// A field of one value.
pub(crate) fn value(v: impl Into<String>) -> Field {
    Field::from_value(v)
}

/// A component of subcomponents, trailing empty ones dropped.
pub(crate) fn subs(values: &[&str]) -> Component {
    let mut v: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
    while v.len() > 1 && v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    Component::new(v)
}

/// A repetition of components, trailing empty ones dropped.
pub(crate) fn rep(mut components: Vec<Component>) -> Repetition {
    while components.len() > 1
        && components
            .last()
            .is_some_and(|c| c.subcomponents().iter().all(String::is_empty))
    {
        components.pop();
    }
    Repetition::new(components)
}

/// A repetition of simple components.
pub(crate) fn rep_of(values: &[&str]) -> Repetition {
    rep(values.iter().map(|v| Component::from_value(*v)).collect())
}

/// A field of one repetition of simple components.
pub(crate) fn comps(values: &[&str]) -> Field {
    Field::new(vec![rep_of(values)])
}

/// A field of repetitions (an empty list gives an empty field).
pub(crate) fn reps(repetitions: Vec<Repetition>) -> Field {
    Field::new(repetitions)
}

/// A repeating text field: one repetition per line (CR LF, LF or CR end a
/// line), the way TX/FT values show line breaks.
pub(crate) fn lines_field(text: &str) -> Field {
    reps(
        lines(text)
            .into_iter()
            .map(Repetition::from_value)
            .collect(),
    )
}

/// The lines of a text (CR LF, LF and CR all end a line).
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// HL7 TS in UTC: `YYYYMMDDHHMMSS[.SSSS]+0000`.
pub(crate) fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let frac = t.nanosecond() / 100_000;
    let mut s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:04}"));
    }
    s.push_str("+0000");
    s
}

/// HL7 DT: `YYYYMMDD`.
pub(crate) fn dt(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// An HD (hierarchic designator) for an identifier system.
pub(crate) fn hd(system: &str) -> Component {
    if system.contains(':') || system.contains('/') {
        subs(&["", system, "URI"])
    } else if !system.is_empty() && system.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        subs(&["", system, "ISO"])
    } else {
        Component::from_value(system)
    }
}

/// A CX identifier: `value^^^<HD>^<type>`.
pub(crate) fn cx(id: &Identifier) -> Repetition {
    rep(vec![
        Component::from_value(id.value.as_str()),
        Component::from_value(""),
        Component::from_value(""),
        hd(&id.system),
        Component::from_value(id.type_code.as_deref().unwrap_or("")),
    ])
}

/// Given names: the first, and the others joined by spaces (XPN has two
/// places for given names).
fn given(name: &HumanName) -> (String, String) {
    let first = name.given.first().cloned().unwrap_or_default();
    let rest = name.given.iter().skip(1).cloned().collect::<Vec<_>>();
    (first, rest.join(" "))
}

/// An XPN name (`L`, legal/usual, as the name type).
pub(crate) fn xpn(name: &HumanName) -> Repetition {
    let (first, rest) = given(name);
    rep_of(&[
        name.family.as_deref().unwrap_or(""),
        &first,
        &rest,
        name.suffix.as_deref().unwrap_or(""),
        name.prefix.as_deref().unwrap_or(""),
        "",
        "L",
    ])
}

/// XCN repetitions for a practitioner: one per identifier (each with the
/// name), or one with the name alone. The role has no place in XCN and is
/// not written.
pub(crate) fn xcn(p: &Practitioner) -> Vec<Repetition> {
    let name = p.name.clone().unwrap_or_default();
    let (first, rest) = given(&name);
    let one = |id: Option<&Identifier>| {
        let mut c: Vec<Component> = [
            id.map(|i| i.value.as_str()).unwrap_or(""),
            name.family.as_deref().unwrap_or(""),
            &first,
            &rest,
            name.suffix.as_deref().unwrap_or(""),
            name.prefix.as_deref().unwrap_or(""),
            "",
            "",
        ]
        .iter()
        .map(|v| Component::from_value(*v))
        .collect();
        // XCN-9 assigning authority: the system as the namespace, which is
        // where readers (and our translator) look.
        c.push(Component::from_value(
            id.map(|i| i.system.as_str()).unwrap_or(""),
        ));
        for _ in 10..13 {
            c.push(Component::from_value(""));
        }
        c.push(Component::from_value(
            id.and_then(|i| i.type_code.as_deref()).unwrap_or(""),
        ));
        rep(c)
    };
    if p.identifiers.is_empty() {
        vec![one(None)]
    } else {
        p.identifiers.iter().map(|i| one(Some(i))).collect()
    }
}

/// The HL7 v2 coding system name for a code system URI (the inverse of
/// the translator's reading); unknown systems are written as given.
pub(crate) fn coding_system_name(system: &str) -> String {
    const LOCAL_PREFIX: &str = "urn:lhcie:hl7v2:coding-system:";
    match system {
        SNOMED_CT_SYSTEM => "SCT".into(),
        "http://loinc.org" => "LN".into(),
        "http://hl7.org/fhir/sid/icd-10" => "I10".into(),
        "http://fhir.nhs.net/CodeSystem/opcs-4" => "OPCS4".into(),
        "urn:lhcie:hl7v2:local-code" => String::new(),
        s => s.strip_prefix(LOCAL_PREFIX).unwrap_or(s).to_owned(),
    }
}

/// A CE coding: `code^display^system name`.
pub(crate) fn ce(c: &Coding) -> Repetition {
    let system = coding_system_name(&c.system);
    rep_of(&[&c.code, c.display.as_deref().unwrap_or(""), &system])
}

/// A PL location: point of care ^ room ^ bed ^ facility (the ODS code if
/// known, else the site) ^^^ building (the site, when the facility is the
/// ODS code and they differ) ^^ description.
pub(crate) fn pl(l: &Location) -> Repetition {
    let org = l.organisation.as_ref().map(|o| o.as_str().to_owned());
    let facility = org.clone().or_else(|| l.site.clone()).unwrap_or_default();
    let building = match (&org, &l.site) {
        (Some(o), Some(s)) if o != s => s.as_str(),
        _ => "",
    };
    rep_of(&[
        l.point_of_care.as_deref().unwrap_or(""),
        l.room.as_deref().unwrap_or(""),
        l.bed.as_deref().unwrap_or(""),
        &facility,
        "",
        "",
        building,
        "",
        l.description.as_deref().unwrap_or(""),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_optional_fraction() {
        let t = time::macros::datetime!(2026-07-01 12:30:05.1234567 +01:00);
        assert_eq!(ts(t), "20260701113005.1234+0000");
        let t = time::macros::datetime!(2026-01-01 00:00 UTC);
        assert_eq!(ts(t), "20260101000000+0000");
        assert_eq!(dt(time::macros::date!(1961 - 07 - 14)), "19610714");
    }

    #[test]
    fn trailing_empties_are_dropped() {
        let r = rep_of(&["a", "", "b", "", ""]);
        assert_eq!(r.components().len(), 3);
        assert_eq!(subs(&["", "x", ""]).subcomponents().len(), 2);
    }

    #[test]
    fn hd_kinds() {
        assert_eq!(hd("RYJ").subcomponents(), ["RYJ"]);
        assert_eq!(
            hd("https://x.nhs.uk/Id/mrn").subcomponents(),
            ["", "https://x.nhs.uk/Id/mrn", "URI"]
        );
        assert_eq!(hd("1.2.3").subcomponents(), ["", "1.2.3", "ISO"]);
    }
}
