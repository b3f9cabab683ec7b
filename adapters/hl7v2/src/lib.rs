//! HL7 v2 messages: parsing and rendering behind our own types.
//!
//! Pure, no I/O. Bytes in ([`parse_message`], [`parse_batch`]), an owned tree
//! of unescaped values out ([`Message`], see [`message`] for the
//! representation), bytes back ([`Message::render`]) such that
//! `parse(render(m)) == m`.
//!
//! - [`delimiters`]: MSH-1/MSH-2 encoding characters.
//! - [`escape`]: escape sequences in values.
//! - [`charset`]: MSH-18 and how bytes are decoded.
//! - [`message`]: the model and its accessors by HL7 position.
//! - [`path`]: `PID-3[2].1` style paths.
//! - [`batch`]: FHS/BHS … BTS/FTS envelopes.
//! - [`error`]: errors that say where and what, never the content.
//! - [`document_types`]: TXA-2 document types ⇄ canonical category and
//!   SNOMED CT type, one table both directions use.
//! - [`translate`](mod@translate): HL7 v2 to the canonical model (ADT, ORU, MDM, REF).
//! - [`ack`]: original-mode acknowledgements (ACK with MSA and ERR).
//! - [`from_canonical`]: the canonical model to HL7 v2 (MDM, ADT, REF, ORU,
//!   ACK), the inverse of [`mod@translate`].

pub mod ack;
pub mod batch;
pub mod charset;
pub mod delimiters;
pub mod document_types;
pub mod error;
pub mod escape;
pub mod from_canonical;
pub mod message;
mod parse;
pub mod path;
pub mod required;
pub mod translate;

pub use ack::{AckCode, AckError, build_ack, build_ack_for_result, build_ack_for_unparseable};
pub use batch::{Batch, BatchGroup, parse_batch};
pub use charset::Charset;
pub use delimiters::Delimiters;
pub use error::{DelimiterProblem, Error, ErrorKind, SegmentId};
pub use from_canonical::{
    ControlIdSource, RenderContext, RenderError, render_acknowledgement, render_envelope,
};
pub use message::{Component, Field, Message, Repetition, Segment};
pub use path::{Path, PathError};
pub use translate::{
    Disposition, ErrorCode, ErrorLocation, TranslateContext, TranslateError, TranslateErrorKind,
    Translated, nhs_numbers_in_pid, translate, translate_received,
};

/// Parses exactly one message (starting with MSH). Segments may be
/// separated by CR, LF or CRLF; empty lines are ignored. A second MSH, or
/// any batch/file segment, is an error: use [`parse_batch`] for those.
pub fn parse_message(input: &[u8]) -> Result<Message, Error> {
    parse::parse_message(input)
}
