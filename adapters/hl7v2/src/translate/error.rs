//! Translation errors: where (an HL7 position), what (an HL7 table 0357
//! code) and what the sender is told (AE or AR). Never the content: no
//! names, numbers or values, positions and codes only.
//!
//! One code per kind of problem: a missing segment is 100, a missing
//! field 101, a value of the wrong shape 102, a code not in its table (or
//! the configured mapping) 103, an unsupported message type 200, our own
//! failure 207. A refusal by information-sharing policy has no table 0357
//! code; it is [`ErrorCode::NotPermittedByPolicy`], a local code (see
//! its docs and `docs/hl7v2-adapter.md`).

use std::fmt;

/// HL7 table 0357 (message error condition codes) as far as translation
/// uses them, and the one local code for a policy refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100: a required segment is missing or out of order (table 0357
    /// "segment sequence error").
    SegmentSequenceError,
    /// 101: a required field is missing.
    RequiredFieldMissing,
    /// 102: a value does not match its data type (dates, check digits,
    /// codes of the wrong shape, bad base64).
    DataTypeError,
    /// 103: a coded value is not in its table.
    TableValueNotFound,
    /// 200: MSH-9 message type not supported.
    UnsupportedMessageType,
    /// 201: MSH-9 trigger event not supported.
    UnsupportedEventCode,
    /// 202: MSH-11 processing id not supported.
    UnsupportedProcessingId,
    /// 203: MSH-12 version not supported.
    UnsupportedVersionId,
    /// 207: something went wrong on our side.
    ApplicationInternalError,
    /// `NOTPERMITTED` (local table `99LHCIE`): a recipient was not
    /// permitted by information-sharing policy. Table 0357 has no code for
    /// it (207 says our own failure, which invites a resend); this one is
    /// sent with `AE`, final: the same message must not be sent again.
    NotPermittedByPolicy,
}

impl ErrorCode {
    /// The table 0357 number; `None` for the local
    /// [`Self::NotPermittedByPolicy`].
    pub fn number(self) -> Option<u16> {
        Some(match self {
            Self::SegmentSequenceError => 100,
            Self::RequiredFieldMissing => 101,
            Self::DataTypeError => 102,
            Self::TableValueNotFound => 103,
            Self::UnsupportedMessageType => 200,
            Self::UnsupportedEventCode => 201,
            Self::UnsupportedProcessingId => 202,
            Self::UnsupportedVersionId => 203,
            Self::ApplicationInternalError => 207,
            Self::NotPermittedByPolicy => return None,
        })
    }

    /// The code as written in ERR (CWE.1): the table 0357 number, or
    /// `NOTPERMITTED`.
    pub fn identifier(self) -> String {
        match self.number() {
            Some(n) => n.to_string(),
            None => "NOTPERMITTED".into(),
        }
    }

    /// The coding system (CWE.3): `HL70357`, or the local `99LHCIE`.
    pub fn system(self) -> &'static str {
        match self {
            Self::NotPermittedByPolicy => "99LHCIE",
            _ => "HL70357",
        }
    }

    /// The table 0357 text.
    pub fn text(self) -> &'static str {
        match self {
            Self::SegmentSequenceError => "Segment sequence error",
            Self::RequiredFieldMissing => "Required field missing",
            Self::DataTypeError => "Data type error",
            Self::TableValueNotFound => "Table value not found",
            Self::UnsupportedMessageType => "Unsupported message type",
            Self::UnsupportedEventCode => "Unsupported event code",
            Self::UnsupportedProcessingId => "Unsupported processing id",
            Self::UnsupportedVersionId => "Unsupported version id",
            Self::ApplicationInternalError => "Application internal error",
            Self::NotPermittedByPolicy => {
                "Not permitted by information-sharing policy; do not resend"
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.identifier(), self.text())
    }
}

/// What the sender is told: original-mode MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// AE: the content is wrong; the sender must correct it.
    ContentError,
    /// AR: refused for reasons unrelated to the content (message type,
    /// version, processing id, our own failure).
    Refused,
}

impl Disposition {
    /// `AE` or `AR`.
    pub fn ack_code(self) -> &'static str {
        match self {
            Self::ContentError => "AE",
            Self::Refused => "AR",
        }
    }
}

/// An HL7 position: segment id and occurrence, then optionally field,
/// repetition and component (all 1-based), as in ERR-2 (ERL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorLocation {
    /// Segment id, e.g. `PID`.
    pub segment: String,
    /// Which segment with that id (1 = first).
    pub sequence: usize,
    /// Field number, if the problem is within a field.
    pub field: Option<usize>,
    /// Field repetition, if known.
    pub repetition: Option<usize>,
    /// Component number, if known.
    pub component: Option<usize>,
}

impl ErrorLocation {
    /// A whole segment.
    pub fn segment(segment: &str, sequence: usize) -> Self {
        Self {
            segment: segment.to_owned(),
            sequence,
            field: None,
            repetition: None,
            component: None,
        }
    }

    /// A field of a segment.
    pub fn field(segment: &str, sequence: usize, field: usize) -> Self {
        Self {
            field: Some(field),
            ..Self::segment(segment, sequence)
        }
    }

    /// Sets the repetition.
    pub fn rep(mut self, repetition: usize) -> Self {
        self.repetition = Some(repetition);
        self
    }

    /// Sets the component.
    pub fn comp(mut self, component: usize) -> Self {
        self.component = Some(component);
        self
    }
}

impl fmt::Display for ErrorLocation {
    /// `PID(1)-3[2].1` style.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.segment, self.sequence)?;
        if let Some(field) = self.field {
            write!(f, "-{field}")?;
            if let Some(rep) = self.repetition {
                write!(f, "[{rep}]")?;
            }
            if let Some(comp) = self.component {
                write!(f, ".{comp}")?;
            }
        }
        Ok(())
    }
}

/// What went wrong. Each kind has one table 0357 code and one disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TranslateErrorKind {
    /// MSH-9.1 is not ADT, ORU, MDM or REF.
    #[error("message type not supported")]
    UnsupportedMessageType,
    /// MSH-9.2 is not a supported trigger event for its message type.
    #[error("trigger event not supported")]
    UnsupportedEvent,
    /// MSH-12 is not a supported HL7 v2 version.
    #[error("HL7 version not supported")]
    UnsupportedVersion,
    /// MSH-11 is not P, T or D.
    #[error("processing id not supported")]
    UnsupportedProcessingId,
    /// A header field needed to process the message at all is missing.
    #[error("required header field missing")]
    MissingHeaderField,
    /// A header field has a value of the wrong shape.
    #[error("header field malformed")]
    InvalidHeaderField,
    /// A required segment is missing.
    #[error("required segment missing")]
    MissingSegment,
    /// A required field is missing.
    #[error("required field missing")]
    MissingField,
    /// The NHS number fails its format or modulus 11 check.
    #[error("NHS number invalid")]
    InvalidNhsNumber,
    /// Two different NHS numbers are given for the patient.
    #[error("conflicting NHS numbers")]
    ConflictingNhsNumbers,
    /// A date or date/time is malformed.
    #[error("date/time malformed")]
    InvalidDateTime,
    /// An organisation code is not an ODS code.
    #[error("ODS code malformed")]
    InvalidOdsCode,
    /// Embedded data (OBX-5 ED) cannot be decoded.
    #[error("embedded data cannot be decoded")]
    InvalidEncodedData,
    /// Any other value of the wrong shape.
    #[error("value malformed")]
    InvalidValue,
    /// A coded value is not in its table (or in the configured mapping).
    #[error("code not recognised")]
    UnknownCode,
    /// Neither rules, MSH-6 nor configured defaults name a recipient.
    #[error(
        "no recipient: no routing rule matched, MSH-6 is not an ODS code and no default is configured"
    )]
    NoRecipient,
    /// The canonical envelope built fails the model's validation.
    #[error("translated envelope fails validation")]
    InvalidEnvelope,
}

impl TranslateErrorKind {
    /// The HL7 table 0357 code.
    pub fn code(self) -> ErrorCode {
        use TranslateErrorKind as K;
        match self {
            K::UnsupportedMessageType => ErrorCode::UnsupportedMessageType,
            K::UnsupportedEvent => ErrorCode::UnsupportedEventCode,
            K::UnsupportedVersion => ErrorCode::UnsupportedVersionId,
            K::UnsupportedProcessingId => ErrorCode::UnsupportedProcessingId,
            K::MissingHeaderField | K::MissingField | K::NoRecipient => {
                ErrorCode::RequiredFieldMissing
            }
            K::MissingSegment => ErrorCode::SegmentSequenceError,
            K::InvalidHeaderField
            | K::InvalidNhsNumber
            | K::ConflictingNhsNumbers
            | K::InvalidDateTime
            | K::InvalidOdsCode
            | K::InvalidEncodedData
            | K::InvalidValue => ErrorCode::DataTypeError,
            K::UnknownCode => ErrorCode::TableValueNotFound,
            K::InvalidEnvelope => ErrorCode::ApplicationInternalError,
        }
    }

    /// AE or AR.
    pub fn disposition(self) -> Disposition {
        use TranslateErrorKind as K;
        match self {
            K::UnsupportedMessageType
            | K::UnsupportedEvent
            | K::UnsupportedVersion
            | K::UnsupportedProcessingId
            | K::MissingHeaderField
            | K::InvalidHeaderField
            | K::InvalidEnvelope => Disposition::Refused,
            _ => Disposition::ContentError,
        }
    }
}

/// Why a message could not be translated, and where. Its `Display` shows
/// the kind, the code and the position, never a value from the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} ({code}){at}", code = kind.code(), at = DisplayAt(location))]
pub struct TranslateError {
    /// What went wrong.
    pub kind: TranslateErrorKind,
    /// Where, if it is a position in the message.
    pub location: Option<ErrorLocation>,
    /// Words for the sender (the ACK's ERR-8), where the code alone does
    /// not say what to do: e.g. which TXA-2.1 document type is not mapped.
    /// They may repeat a code the sender sent (checked by
    /// [`Self::with_user_message`]), never patient data; not in `Display`,
    /// so never logged.
    pub user_message: Option<String>,
}

struct DisplayAt<'a>(&'a Option<ErrorLocation>);

impl fmt::Display for DisplayAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, " at {l}"),
            None => Ok(()),
        }
    }
}

impl TranslateError {
    /// An error at a position.
    pub fn at(kind: TranslateErrorKind, location: ErrorLocation) -> Self {
        Self {
            kind,
            location: Some(location),
            user_message: None,
        }
    }

    /// An error without a position.
    pub fn new(kind: TranslateErrorKind) -> Self {
        Self {
            kind,
            location: None,
            user_message: None,
        }
    }

    /// Sets the words for the sender. `code` (a coded value the sender
    /// sent) is put in place of `{code}` only if it is a plain code (1 to
    /// 20 letters, digits, `-`, `_`), else `{code}` becomes "the value".
    pub fn with_user_message(mut self, template: &str, code: &str) -> Self {
        let plain = (1..=20).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let code = if plain { code } else { "the value" };
        self.user_message = Some(template.replace("{code}", code));
        self
    }

    /// The HL7 table 0357 code.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }

    /// AE or AR.
    pub fn disposition(&self) -> Disposition {
        self.kind.disposition()
    }
}
