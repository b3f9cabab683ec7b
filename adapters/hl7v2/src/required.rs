//! Required content per message structure: the one table of the segments
//! and fields each supported structure must carry, checked on receipt
//! (before translation) and met by everything the renderer produces.
//!
//! Sources: the HL7 v2.4 abstract message structures (chapter 3 ADT,
//! chapter 7 ORU, chapter 9 MDM, chapter 11 REF) and the v2.4 segment
//! definitions (optionality `R`); entries the NHS ITK conventions add
//! beyond the standard are marked [`Source::Itk`]. The check reports the
//! first problem in structure order (the order the segments appear in a
//! conformant message): a missing segment is ERR 100 at the segment, an
//! empty required field ERR 101 at `segment^sequence^field`; both `AE`.
//!
//! The header fields (MSH-9, MSH-10, MSH-11, MSH-12) are listed for
//! completeness but the translator checks them first (a message that cannot
//! be identified is refused, `AR`), so this check never reports them on
//! receipt.

use crate::Message;
use crate::translate::{ErrorLocation, TranslateError, TranslateErrorKind};

/// Why an entry is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `R` in the HL7 v2.4 message structure or segment definition.
    Hl7v24,
    /// Optional in HL7 v2.4, made mandatory by NHS ITK conventions.
    Itk,
}

/// A required field of a required segment.
#[derive(Debug, Clone, Copy)]
pub struct RequiredField {
    /// Field number.
    pub field: usize,
    /// Its name.
    pub name: &'static str,
    /// Why.
    pub source: Source,
}

/// A required segment and its required fields.
#[derive(Debug, Clone, Copy)]
pub struct RequiredSegment {
    /// Segment id.
    pub id: &'static str,
    /// Why.
    pub source: Source,
    /// Its required fields.
    pub fields: &'static [RequiredField],
}

const fn f(field: usize, name: &'static str) -> RequiredField {
    RequiredField {
        field,
        name,
        source: Source::Hl7v24,
    }
}

const fn seg(id: &'static str, fields: &'static [RequiredField]) -> RequiredSegment {
    RequiredSegment {
        id,
        source: Source::Hl7v24,
        fields,
    }
}

const MSH: RequiredSegment = seg(
    "MSH",
    &[
        f(9, "message type"),
        f(10, "message control id"),
        f(11, "processing id"),
        f(12, "version id"),
    ],
);
const EVN: RequiredSegment = seg("EVN", &[f(2, "recorded date/time")]);
const PID: RequiredSegment = seg(
    "PID",
    &[f(3, "patient identifier list"), f(5, "patient name")],
);
const PV1: RequiredSegment = seg("PV1", &[f(2, "patient class")]);
const MRG: RequiredSegment = seg("MRG", &[f(1, "prior patient identifier list")]);
const OBR: RequiredSegment = seg("OBR", &[f(4, "universal service identifier")]);
const TXA: RequiredSegment = seg(
    "TXA",
    &[
        f(1, "set id"),
        f(2, "document type"),
        f(12, "unique document number"),
        f(17, "document completion status"),
    ],
);
const OBX: RequiredSegment = seg(
    "OBX",
    &[
        f(3, "observation identifier"),
        f(11, "observation result status"),
    ],
);
const PRD: RequiredSegment = seg("PRD", &[f(1, "provider role")]);

/// ITK: the patient must be identified in every result (the v2.4
/// `ORU_R01` PATIENT group is optional).
const PID_ITK: RequiredSegment = RequiredSegment {
    source: Source::Itk,
    ..PID
};

/// The table: structure name, the trigger events it serves, and its
/// required segments in message order.
pub const STRUCTURES: &[(&str, &[&str], &[RequiredSegment])] = &[
    (
        "ADT_A01",
        &["A01", "A04", "A08", "A13"],
        &[MSH, EVN, PID, PV1],
    ),
    ("ADT_A02", &["A02"], &[MSH, EVN, PID, PV1]),
    ("ADT_A03", &["A03"], &[MSH, EVN, PID, PV1]),
    // HL7 v2.4 requires PV1 in ADT_A05, but the NHS ITK demographic
    // messages (A28 add person, A31 update person: the uk-itk corpus
    // examples) carry no visit and omit it: not required here, by ITK
    // convention; the hl7apy agreement excludes this case for that reason.
    ("ADT_A05", &["A05", "A28", "A31"], &[MSH, EVN, PID]),
    ("ADT_A09", &["A11"], &[MSH, EVN, PID, PV1]),
    // PATIENT group {PID [PD1] MRG [PV1]}: PV1 optional.
    ("ADT_A39", &["A40"], &[MSH, EVN, PID, MRG]),
    ("ORU_R01", &["R01"], &[MSH, PID_ITK, OBR]),
    ("MDM_T02", &["T02"], &[MSH, EVN, PID, PV1, TXA, OBX]),
    // {PRD [CTD]} precedes PID in REF_I12.
    ("REF_I12", &["I12"], &[MSH, PRD, PID]),
];

/// The required segments for message type `message_type` (MSH-9.1) and
/// event `event` (MSH-9.2), if the structure is in the table.
pub fn required_for(
    message_type: &str,
    event: &str,
) -> Option<(&'static str, &'static [RequiredSegment])> {
    let prefix = match message_type {
        "ADT" => "ADT_",
        "ORU" => "ORU_",
        "MDM" => "MDM_",
        "REF" => "REF_",
        _ => return None,
    };
    STRUCTURES
        .iter()
        .find(|(name, events, _)| name.starts_with(prefix) && events.contains(&event))
        .map(|(name, _, segs)| (*name, *segs))
}

/// Checks `message` against the table: `Ok` if complete (or its structure
/// is not in the table), otherwise the first problem (ERR 100 / 101).
pub fn check(message: &Message) -> Result<(), TranslateError> {
    let msh = message.msh();
    let message_type = msh.value(9, 1, 1, 1).unwrap_or("");
    let event = msh.value(9, 1, 2, 1).unwrap_or("");
    let Some((_, segments)) = required_for(message_type, event) else {
        return Ok(());
    };
    for required in segments {
        let Some(segment) = message.segment(required.id) else {
            return Err(TranslateError::at(
                TranslateErrorKind::MissingSegment,
                ErrorLocation::segment(required.id, 1),
            ));
        };
        for rf in required.fields {
            let empty = segment.field(rf.field).is_none_or(|fl| {
                fl.repetitions().iter().all(|r| {
                    r.components()
                        .iter()
                        .all(|c| c.subcomponents().iter().all(String::is_empty))
                })
            });
            if empty {
                return Err(TranslateError::at(
                    TranslateErrorKind::MissingField,
                    ErrorLocation::field(required.id, 1, rf.field),
                ));
            }
        }
    }
    Ok(())
}
