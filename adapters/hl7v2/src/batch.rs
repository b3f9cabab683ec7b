//! Batches and files: the FHS/BHS … BTS/FTS envelopes around messages.
//!
//! Accepted shape (segment ids):
//!
//! ```text
//! [FHS] { [BHS] { MSH … } [BTS] } [FTS]
//! ```
//!
//! - FHS may only be the first segment, FTS only the last, and only with FHS.
//! - BHS opens a batch that BTS closes; a BHS while a batch is open (nested,
//!   or inside a message), or a BTS with no BHS open, is an error. A batch
//!   left open at the end is accepted (senders often omit BTS).
//! - Messages outside any BHS form a batch without header, so a plain
//!   message, or several messages one after the other, are accepted too.
//! - Any other segment before the first MSH of a batch is an error
//!   ([`Error::MissingMsh`]).
//!
//! Each message is parsed as [`crate::parse_message`] would, with its own
//! delimiters and character set. Envelope segments are read with their own
//! delimiters (FHS/BHS) or those of the header they close (BTS/FTS), and the
//! detecting character set rule (UTF-8 if valid, else ISO-8859-1). Trailer
//! counts (BTS-1, FTS-1) are kept as data, not checked.

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::{Error, SegmentId};
use crate::message::{Message, Segment};
use crate::parse::{Line, parse_header, parse_message_lines, parse_segment, split_lines};

/// A file or batch of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The FHS segment, if the input is a file.
    pub file_header: Option<Segment>,
    /// The FTS segment, if present.
    pub file_trailer: Option<Segment>,
    /// The batches, in order (one without header for bare messages).
    pub batches: Vec<BatchGroup>,
}

/// One batch: its BHS/BTS (if any) and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchGroup {
    /// The BHS segment, if any.
    pub header: Option<Segment>,
    /// The BTS segment, if any.
    pub trailer: Option<Segment>,
    /// The messages, in order.
    pub messages: Vec<Message>,
}

impl Batch {
    /// All messages of all batches, in order.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.batches.iter().flat_map(|b| b.messages.iter())
    }

    /// How many messages there are in all.
    pub fn message_count(&self) -> usize {
        self.batches.iter().map(|b| b.messages.len()).sum()
    }
}

/// A batch being collected: raw message lines until the end.
#[derive(Default)]
struct OpenGroup<'a> {
    header: Option<(Delimiters, Segment)>,
    trailer: Option<Segment>,
    messages: Vec<Vec<Line<'a>>>,
    closed: bool,
}

/// Parses a file, a batch, or bare messages.
pub fn parse_batch(input: &[u8]) -> Result<Batch, Error> {
    let lines = split_lines(input);
    let first = lines.first().ok_or(Error::Empty)?;
    let first_id = first.id();
    if !matches!(
        first_id.as_ref().map(SegmentId::as_str),
        Some("FHS" | "BHS" | "MSH")
    ) {
        return Err(Error::NotBatchStart {
            segment: first.number,
            id: first_id,
        });
    }
    let mut file_header: Option<(Delimiters, Segment)> = None;
    let mut file_trailer = None;
    let mut groups: Vec<OpenGroup<'_>> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let id = line.id().ok_or(Error::InvalidSegmentId {
            segment: line.number,
        })?;
        let unexpected = Error::UnexpectedSegment {
            segment: line.number,
            id,
        };
        if file_trailer.is_some() {
            return Err(unexpected);
        }
        let open = groups.last_mut().filter(|g| !g.closed);
        match id.as_str() {
            "FHS" if i == 0 => file_header = Some(parse_header(line, Charset::Detect)?),
            "FHS" => return Err(unexpected),
            "FTS" => {
                let Some((d, _)) = &file_header else {
                    return Err(unexpected);
                };
                file_trailer = Some(parse_segment(line, d, Charset::Detect)?);
            }
            "BHS" => {
                if open.is_some() {
                    return Err(unexpected);
                }
                groups.push(OpenGroup {
                    header: Some(parse_header(line, Charset::Detect)?),
                    ..OpenGroup::default()
                });
            }
            "BTS" => {
                let Some(group) = open.filter(|g| g.header.is_some()) else {
                    return Err(unexpected);
                };
                let d = group
                    .header
                    .as_ref()
                    .or(file_header.as_ref())
                    .map(|(d, _)| *d)
                    .unwrap_or_default();
                group.trailer = Some(parse_segment(line, &d, Charset::Detect)?);
                group.closed = true;
            }
            "MSH" => {
                let group = match open {
                    Some(g) => g,
                    None => {
                        groups.push(OpenGroup::default());
                        groups.last_mut().expect("just pushed")
                    }
                };
                group.messages.push(vec![*line]);
            }
            _ => match open.and_then(|g| g.messages.last_mut()) {
                Some(message) => message.push(*line),
                None => {
                    return Err(Error::MissingMsh {
                        segment: line.number,
                        id,
                    });
                }
            },
        }
    }
    let batches = groups
        .into_iter()
        .map(|g| {
            Ok(BatchGroup {
                header: g.header.map(|(_, s)| s),
                trailer: g.trailer,
                messages: g
                    .messages
                    .iter()
                    .map(|m| parse_message_lines(m))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Batch {
        file_header: file_header.map(|(_, s)| s),
        file_trailer,
        batches,
    })
}
