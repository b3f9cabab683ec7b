//! Original-mode acknowledgements: the `ACK` a receiver returns for each
//! message.
//!
//! ```text
//! MSH|^~\&|<orig MSH-5>|<orig MSH-6>|<orig MSH-3>|<orig MSH-4>|<now>||ACK^<trigger>^ACK|<new id>|<orig MSH-11>|<orig MSH-12>
//! MSA|AA|<orig MSH-10>
//! ```
//!
//! For AE and AR, MSA-3 says the error in words (table 0357 text) and one
//! ERR segment per error follows:
//!
//! - ERR-1 (ELD, kept for receivers before v2.5): segment ^ sequence ^
//!   field ^ code&text&HL70357.
//! - ERR-2 (ERL): segment ^ sequence ^ field ^ field repetition ^
//!   component.
//! - ERR-3 (CWE): code ^ text ^ HL70357 (for a policy refusal the local
//!   `NOTPERMITTED` ^ text ^ `99LHCIE`: table 0357 has no such code).
//! - ERR-4: severity `E`.
//! - ERR-8 (user message), where the error has words for the sender
//!   ([`TranslateError::user_message`]), e.g. which document type is not
//!   mapped.
//!
//! Nothing from the message body is echoed: only header fields (routing),
//! positions and codes.

use time::{OffsetDateTime, UtcOffset};

use crate::translate::{ErrorCode, ErrorLocation, TranslateError, Translated};
use crate::{Component, Delimiters, Field, Message, Repetition, Segment};

/// MSA-1 in original mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// AA: accepted.
    Accept,
    /// AE: error in the content; the sender must correct it.
    Error,
    /// AR: rejected (type, version, processing id, or our failure).
    Reject,
}

impl AckCode {
    /// `AA`, `AE` or `AR`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// One error to report in an ERR segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AckError {
    /// HL7 table 0357 code.
    pub code: ErrorCode,
    /// Where, if known.
    pub location: Option<ErrorLocation>,
}

impl From<&TranslateError> for AckError {
    fn from(e: &TranslateError) -> Self {
        Self {
            code: e.code(),
            location: e.location.clone(),
        }
    }
}

fn value(v: impl Into<String>) -> Field {
    Field::from_value(v)
}

fn components(values: &[&str]) -> Field {
    Field::new(vec![Repetition::new(
        values.iter().map(|v| Component::from_value(*v)).collect(),
    )])
}

fn segment(id: &str, fields: Vec<Field>) -> Segment {
    // Ids here are constants of three upper-case letters.
    Segment::new(id, fields).unwrap_or_else(|_| unreachable!("constant segment id {id}"))
}

/// `YYYYMMDDHHMMSS+0000`, in UTC.
fn timestamp(now: OffsetDateTime) -> String {
    let t = now.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn err_segment(error: &AckError) -> Segment {
    let code = error.code.identifier();
    let text = error.code.text();
    let system = error.code.system();
    let (eld, erl) = match &error.location {
        Some(l) => {
            let seq = l.sequence.to_string();
            let field = l.field.map(|f| f.to_string()).unwrap_or_default();
            let rep = l.repetition.map(|r| r.to_string()).unwrap_or_default();
            let comp = l.component.map(|c| c.to_string()).unwrap_or_default();
            let eld = Field::new(vec![Repetition::new(vec![
                Component::from_value(l.segment.clone()),
                Component::from_value(seq.clone()),
                Component::from_value(field.clone()),
                Component::new(vec![code.clone(), text.to_owned(), system.to_owned()]),
            ])]);
            let mut erl = vec![l.segment.as_str(), seq.as_str()];
            if l.field.is_some() {
                erl.push(&field);
                erl.push(&rep);
                if l.component.is_some() {
                    erl.push(&comp);
                }
            }
            // Trailing empty components are not written.
            while erl.last().is_some_and(|c| c.is_empty()) {
                erl.pop();
            }
            (eld, components(&erl))
        }
        None => (
            Field::new(vec![Repetition::new(vec![
                Component::from_value(""),
                Component::from_value(""),
                Component::from_value(""),
                Component::new(vec![code.clone(), text.to_owned(), system.to_owned()]),
            ])]),
            value(""),
        ),
    };
    segment(
        "ERR",
        vec![eld, erl, components(&[&code, text, system]), value("E")],
    )
}

fn header_field(msh: &Segment, n: usize) -> Field {
    msh.field(n).cloned().unwrap_or_else(|| value(""))
}

/// Builds the ACK for `original`: swapped sending and receiving
/// application and facility, MSH-9 `ACK^<trigger>^ACK`, MSH-10
/// `control_id`, MSH-11, MSH-12 and MSH-18 as received; MSA-2 the original
/// MSH-10; one ERR per error (none for AA).
pub fn build_ack(
    original: &Message,
    code: AckCode,
    errors: &[AckError],
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    let msh = original.msh();
    let trigger = msh.value(9, 1, 2, 1).unwrap_or("");
    let mut fields = vec![
        value(""),
        value(""),
        header_field(msh, 5),
        header_field(msh, 6),
        header_field(msh, 3),
        header_field(msh, 4),
        value(timestamp(now)),
        value(""),
        if trigger.is_empty() {
            value("ACK")
        } else {
            components(&["ACK", trigger, "ACK"])
        },
        value(control_id),
        header_field(msh, 11),
        header_field(msh, 12),
    ];
    if let Some(charset) = msh.field(18).filter(|f| !f.is_empty()) {
        fields.resize(17, value(""));
        fields.push(charset.clone());
    }
    let mut segments = vec![segment("MSH", fields)];
    let mut msa = vec![value(code.as_str()), header_field(msh, 10)];
    if let Some(first) = errors.first()
        && code != AckCode::Accept
    {
        msa.push(value(first.code.text()));
    }
    segments.push(segment("MSA", msa));
    if code != AckCode::Accept {
        segments.extend(errors.iter().map(err_segment));
    }
    Message::new(*original.delimiters(), segments)
        .unwrap_or_else(|_| unreachable!("MSH first, no framing segments"))
}

/// The ACK for a translation outcome: AA, or AE/AR with the error's ERR.
pub fn build_ack_for_result(
    original: &Message,
    outcome: Result<&Translated, &TranslateError>,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    match outcome {
        Ok(_) => build_ack(original, AckCode::Accept, &[], control_id, now),
        Err(e) => {
            let code = match e.disposition() {
                crate::translate::Disposition::ContentError => AckCode::Error,
                crate::translate::Disposition::Refused => AckCode::Reject,
            };
            let ack = build_ack(original, code, &[AckError::from(e)], control_id, now);
            match &e.user_message {
                Some(text) => with_err_user_message(ack, text),
                None => ack,
            }
        }
    }
}

/// Sets ERR-8 (user message) of the first ERR segment.
fn with_err_user_message(ack: Message, text: &str) -> Message {
    let delimiters = *ack.delimiters();
    let mut segments: Vec<Segment> = ack.all_segments().to_vec();
    if let Some(err) = segments.iter_mut().find(|s| s.id() == "ERR") {
        let mut fields: Vec<Field> = err.fields().to_vec();
        fields.resize(7, value(""));
        fields.push(value(text));
        *err = segment("ERR", fields);
    }
    Message::new(delimiters, segments).unwrap_or(ack)
}

/// What can be read of an MSH that did not parse.
struct Salvaged {
    fields: Vec<Vec<String>>,
}

impl Salvaged {
    /// Field `n` (HL7 numbering) as components.
    fn field(&self, n: usize) -> Field {
        match self.fields.get(n.wrapping_sub(1)) {
            Some(comps) if comps.iter().any(|c| !c.is_empty()) => {
                Field::new(vec![Repetition::new(
                    comps
                        .iter()
                        .map(|c| Component::from_value(c.clone()))
                        .collect(),
                )])
            }
            _ => value(""),
        }
    }

    fn component(&self, n: usize, c: usize) -> Option<&str> {
        self.fields
            .get(n.wrapping_sub(1))?
            .get(c.wrapping_sub(1))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Reads the first line of `input` as an MSH as far as it goes: field
/// separator at byte 3, component separator the first encoding character.
/// Values are cleaned of control characters and cut to 100 characters.
fn salvage(input: &[u8]) -> Salvaged {
    let start = input
        .windows(3)
        .position(|w| w == b"MSH")
        .filter(|p| *p < 16);
    let Some(start) = start else {
        return Salvaged { fields: Vec::new() };
    };
    let line = &input[start..];
    let line = &line[..line
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(line.len())];
    let Some(&fs) = line.get(3).filter(|b| b.is_ascii_punctuation()) else {
        return Salvaged { fields: Vec::new() };
    };
    let text = String::from_utf8_lossy(line);
    let parts: Vec<&str> = text.split(char::from(fs)).collect();
    let cs = parts
        .get(1)
        .and_then(|enc| enc.chars().next())
        .filter(|c| c.is_ascii_punctuation() && *c != char::from(fs));
    let clean = |v: &str| -> String {
        v.chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>()
    };
    // fields[0] is MSH-1 (the separator), fields[1] MSH-2, then MSH-3...
    let mut fields = vec![vec![String::new()], vec![String::new()]];
    for part in parts.iter().skip(2).take(20) {
        let comps: Vec<String> = match cs {
            Some(cs) => part.split(cs).take(10).map(clean).collect(),
            None => vec![clean(part)],
        };
        fields.push(comps);
    }
    Salvaged { fields }
}

/// The table 0357 code for a parse failure: structure (100) or encoding
/// (102).
pub fn parse_error_code(error: &crate::Error) -> ErrorCode {
    use crate::ErrorKind as K;
    match error.kind() {
        K::Empty | K::NotMsh | K::NotBatchStart | K::UnexpectedSegment | K::MissingMsh => {
            ErrorCode::SegmentSequenceError
        }
        K::BadDelimiters | K::InvalidSegmentId | K::Undecodable => ErrorCode::DataTypeError,
    }
}

/// A minimal ACK (AR) for input that could not be parsed: the MSH fields
/// that can be read are used (sending and receiving swapped, trigger,
/// MSH-10 in MSA-2, processing id, version), defaults (`P`, `2.5`)
/// otherwise; usual delimiters; one ERR with the code of `error` (100 for
/// structure, 102 for encoding; 100 if none is given) and no location.
pub fn build_ack_for_unparseable(
    input: &[u8],
    error: Option<&crate::Error>,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    let s = salvage(input);
    let trigger = s.component(9, 2).unwrap_or("").to_owned();
    let processing = s.component(11, 1).unwrap_or("P").to_owned();
    let version = s.component(12, 1).unwrap_or("2.5").to_owned();
    let fields = vec![
        value(""),
        value(""),
        s.field(5),
        s.field(6),
        s.field(3),
        s.field(4),
        value(timestamp(now)),
        value(""),
        if trigger.is_empty() {
            value("ACK")
        } else {
            components(&["ACK", &trigger, "ACK"])
        },
        value(control_id),
        value(processing),
        value(version),
    ];
    let code = error
        .map(parse_error_code)
        .unwrap_or(ErrorCode::SegmentSequenceError);
    let segments = vec![
        segment("MSH", fields),
        segment(
            "MSA",
            vec![
                value(AckCode::Reject.as_str()),
                s.field(10),
                value(code.text()),
            ],
        ),
        err_segment(&AckError {
            code,
            location: None,
        }),
    ];
    Message::new(Delimiters::default(), segments)
        .unwrap_or_else(|_| unreachable!("MSH first, no framing segments"))
}
