//! Errors of parsing, with where (segment number and id, field number) and
//! what, never the content: HL7 v2 text is patient data.
//!
//! Segment numbers are 1-based positions of the segment in the input (blank
//! lines not counted). A segment id is only ever shown once it has been
//! checked to be a well-formed id (three upper-case letters or digits), so no
//! free text leaks through it.

use std::fmt;

/// A checked segment identifier as shown in errors: three upper-case ASCII
/// letters or digits (never free text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentId([u8; 3]);

impl SegmentId {
    /// Checks that `bytes` begins with a well-formed segment id and returns it.
    pub fn from_prefix(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [a, b, c, ..] if [a, b, c].iter().all(|x| is_id_byte(**x)) => Some(Self([*a, *b, *c])),
            _ => None,
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters and digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// True for the bytes a segment id may contain.
pub(crate) fn is_id_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Shows an optional segment id, or `?` when the id was not well formed.
struct ShowId(Option<SegmentId>);

impl fmt::Display for ShowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("?"),
        }
    }
}

/// What is wrong with the encoding characters (MSH-1 / MSH-2, or FHS/BHS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DelimiterProblem {
    /// The header segment ends before its field separator.
    #[error("no field separator")]
    MissingFieldSeparator,
    /// Fewer than four encoding characters.
    #[error("fewer than four encoding characters")]
    TooFew,
    /// More than five encoding characters.
    #[error("more than five encoding characters")]
    TooMany,
    /// A delimiter is used twice.
    #[error("a delimiter character is used twice")]
    NotDistinct,
    /// A delimiter is a letter, digit, space, control character or non-ASCII.
    #[error("a delimiter is not an ASCII punctuation character")]
    NotPunctuation,
}

/// An error of parsing HL7 v2 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input holds no segment at all.
    #[error("empty input: no segment")]
    Empty,
    /// A message does not begin with an MSH segment.
    #[error("segment {segment} ({}): a message must begin with MSH", ShowId(*.id))]
    NotMsh {
        /// Segment number in the input.
        segment: usize,
        /// The id found instead, if well formed.
        id: Option<SegmentId>,
    },
    /// A batch does not begin with FHS, BHS or MSH.
    #[error("segment {segment} ({}): a batch must begin with FHS, BHS or MSH", ShowId(*.id))]
    NotBatchStart {
        /// Segment number in the input.
        segment: usize,
        /// The id found instead, if well formed.
        id: Option<SegmentId>,
    },
    /// The encoding characters of a header segment are unusable.
    #[error("segment {segment} ({id}) field {field}: bad delimiters: {problem}")]
    BadDelimiters {
        /// Segment number in the input.
        segment: usize,
        /// MSH, FHS or BHS.
        id: SegmentId,
        /// 1 (field separator) or 2 (encoding characters).
        field: usize,
        /// What is wrong.
        problem: DelimiterProblem,
    },
    /// A segment id is not three upper-case letters or digits followed by the
    /// field separator or the end of the segment.
    #[error("segment {segment}: invalid segment id")]
    InvalidSegmentId {
        /// Segment number in the input (0 from [`crate::Segment::new`]).
        segment: usize,
    },
    /// The bytes are not valid in the declared character set (MSH-18
    /// `UNICODE UTF-8`).
    #[error("segment {segment} ({}) field {field}: not valid UTF-8 as MSH-18 declares", ShowId(*.id))]
    Undecodable {
        /// Segment number in the input.
        segment: usize,
        /// Segment id, if well formed.
        id: Option<SegmentId>,
        /// Field number (HL7 numbering; 0 means within the segment id).
        field: usize,
    },
    /// A segment that cannot appear here: a second MSH inside a message,
    /// batch or file segments out of place, anything after FTS.
    #[error("segment {segment} ({id}): unexpected here")]
    UnexpectedSegment {
        /// Segment number in the input.
        segment: usize,
        /// The segment's id.
        id: SegmentId,
    },
    /// Inside a batch, a segment comes before any MSH of its message.
    #[error("segment {segment} ({id}): message content without an MSH")]
    MissingMsh {
        /// Segment number in the input.
        segment: usize,
        /// The segment's id.
        id: SegmentId,
    },
}

/// The kind of an [`Error`], without its position: a stable short name for
/// expectations tables and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`Error::Empty`]
    Empty,
    /// [`Error::NotMsh`]
    NotMsh,
    /// [`Error::NotBatchStart`]
    NotBatchStart,
    /// [`Error::BadDelimiters`]
    BadDelimiters,
    /// [`Error::InvalidSegmentId`]
    InvalidSegmentId,
    /// [`Error::Undecodable`]
    Undecodable,
    /// [`Error::UnexpectedSegment`]
    UnexpectedSegment,
    /// [`Error::MissingMsh`]
    MissingMsh,
}

impl ErrorKind {
    /// Stable kebab-case name, e.g. `bad-delimiters`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotMsh => "not-msh",
            Self::NotBatchStart => "not-batch-start",
            Self::BadDelimiters => "bad-delimiters",
            Self::InvalidSegmentId => "invalid-segment-id",
            Self::Undecodable => "undecodable",
            Self::UnexpectedSegment => "unexpected-segment",
            Self::MissingMsh => "missing-msh",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::Empty,
            Self::NotMsh { .. } => ErrorKind::NotMsh,
            Self::NotBatchStart { .. } => ErrorKind::NotBatchStart,
            Self::BadDelimiters { .. } => ErrorKind::BadDelimiters,
            Self::InvalidSegmentId { .. } => ErrorKind::InvalidSegmentId,
            Self::Undecodable { .. } => ErrorKind::Undecodable,
            Self::UnexpectedSegment { .. } => ErrorKind::UnexpectedSegment,
            Self::MissingMsh { .. } => ErrorKind::MissingMsh,
        }
    }
}
