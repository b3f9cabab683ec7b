//! Parsing bytes into [`Message`]s: splitting into segments, reading the
//! delimiters and character set from MSH, decoding, splitting and
//! unescaping.
//!
//! Segments are separated by CR, LF or CRLF (all accepted, mixed too). Empty
//! lines anywhere are ignored (trailing ones are common; blank lines in the
//! middle come from LF/CRLF confusion), and are not counted in segment
//! numbers.

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::{Error, SegmentId};
use crate::escape::unescape;
use crate::message::{Component, FRAMING, Field, Message, Repetition, Segment};

/// One segment's raw bytes and its 1-based number in the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) number: usize,
    pub(crate) bytes: &'a [u8],
}

impl Line<'_> {
    /// The segment id, if the first three bytes are a well-formed id.
    pub(crate) fn id(&self) -> Option<SegmentId> {
        SegmentId::from_prefix(self.bytes)
    }
}

/// Splits the input into non-empty segments.
pub(crate) fn split_lines(input: &[u8]) -> Vec<Line<'_>> {
    input
        .split(|b| *b == b'\r' || *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, bytes)| Line {
            number: i + 1,
            bytes,
        })
        .collect()
}

/// Parses exactly one message.
pub(crate) fn parse_message(input: &[u8]) -> Result<Message, Error> {
    parse_message_lines(&split_lines(input))
}

/// Parses the segments of one message; the first must be MSH, and no other
/// may be MSH, FHS, BHS, BTS or FTS.
pub(crate) fn parse_message_lines(lines: &[Line<'_>]) -> Result<Message, Error> {
    let first = lines.first().ok_or(Error::Empty)?;
    let id = first.id();
    if id.map(|i| i.as_str() == "MSH") != Some(true) {
        return Err(Error::NotMsh {
            segment: first.number,
            id,
        });
    }
    let (delimiters, _) = parse_header(first, Charset::Latin1)?;
    let charset = match Charset::from_raw_msh(first.bytes, &delimiters) {
        // Detect once for the whole message: a message is in one encoding.
        Charset::Detect if lines.iter().all(|l| std::str::from_utf8(l.bytes).is_ok()) => {
            Charset::Utf8
        }
        Charset::Detect => Charset::Latin1,
        declared => declared,
    };
    let (_, msh) = parse_header(first, charset)?;
    let mut segments = Vec::with_capacity(lines.len());
    segments.push(msh);
    for line in &lines[1..] {
        if let Some(id) = line.id()
            && FRAMING.contains(&id.as_str())
        {
            return Err(Error::UnexpectedSegment {
                segment: line.number,
                id,
            });
        }
        segments.push(parse_segment(line, &delimiters, charset)?);
    }
    Ok(Message::from_parsed(delimiters, segments))
}

/// Decodes a segment's bytes, locating an undecodable byte by field.
fn decode(line: &Line<'_>, fs: char, charset: Charset, header: bool) -> Result<String, Error> {
    charset.decode(line.bytes).map_err(|offset| {
        let fs = u8::try_from(fs).unwrap_or(b'|');
        let before = line.bytes[..offset].iter().filter(|b| **b == fs).count();
        Error::Undecodable {
            segment: line.number,
            id: line.id(),
            field: if header && before > 0 {
                before + 1
            } else {
                before
            },
        }
    })
}

/// Parses a header segment (MSH, FHS, BHS): its own delimiters and its
/// fields, with fields 1 and 2 the delimiters.
pub(crate) fn parse_header(
    line: &Line<'_>,
    charset: Charset,
) -> Result<(Delimiters, Segment), Error> {
    let id = line.id().ok_or(Error::InvalidSegmentId {
        segment: line.number,
    })?;
    let d =
        Delimiters::from_header(line.bytes).map_err(|(field, problem)| Error::BadDelimiters {
            segment: line.number,
            id,
            field,
            problem,
        })?;
    let text = decode(line, d.field(), charset, true)?;
    let enc = d.encoding_characters();
    // "MSH" + field separator + encoding characters (all ASCII).
    let after = &text[4 + enc.len()..];
    let mut fields = vec![
        Field::from_value(d.field().to_string()),
        Field::from_value(enc),
    ];
    if let Some(rest) = after.strip_prefix(d.field()) {
        fields.extend(rest.split(d.field()).map(|f| parse_field(f, &d)));
    }
    Ok((d, Segment::from_parts(id, fields)))
}

/// Parses an ordinary (non-header) segment with known delimiters.
pub(crate) fn parse_segment(
    line: &Line<'_>,
    d: &Delimiters,
    charset: Charset,
) -> Result<Segment, Error> {
    let invalid = Error::InvalidSegmentId {
        segment: line.number,
    };
    let id = line.id().ok_or(invalid.clone())?;
    let fs = u8::try_from(d.field()).unwrap_or(b'|');
    if line.bytes.len() > 3 && line.bytes[3] != fs {
        return Err(invalid);
    }
    let text = decode(line, d.field(), charset, false)?;
    // Bytes 0..4 are the id and the field separator, all ASCII.
    let fields = if text.len() > 3 {
        text[4..]
            .split(d.field())
            .map(|f| parse_field(f, d))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Segment::from_parts(id, fields))
}

/// Splits and unescapes one field's text.
fn parse_field(text: &str, d: &Delimiters) -> Field {
    Field::new(
        text.split(d.repetition())
            .map(|rep| {
                Repetition::new(
                    rep.split(d.component())
                        .map(|comp| {
                            Component::new(
                                comp.split(d.subcomponent())
                                    .map(|sub| unescape(sub, d))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}
