//! The message model: [`Message`] (delimiters and segments), [`Segment`] (id
//! and fields), [`Field`] (repetitions), [`Repetition`] (components),
//! [`Component`] (subcomponents, which are the values).
//!
//! Representation: an owned tree of unescaped values. Messages are small
//! (kilobytes), the adapters read most fields of every message they
//! translate, and an owned tree has no lifetimes, so a `Message` can be
//! queued, sent between tasks and compared (`parse(render(m)) == m`) freely.
//! A lazily split borrowed view would save allocations but tie every value to
//! the input buffer and make values with escapes awkward (they need owned
//! text anyway).
//!
//! Every level holds at least one child: an empty field is one repetition of
//! one component of one empty subcomponent, exactly what parsing yields, so
//! a tree built with the constructors renders and parses back to itself.
//! Trailing empty fields/components are kept as parsed.
//!
//! Positions are 1-based, as HL7 people write them (`PID-3[2].1`). In MSH
//! (and FHS/BHS), field 1 is the field separator itself and field 2 the
//! encoding characters, both as single verbatim values; MSH-3 is the first
//! field after them.
//!
//! The HL7 null `""` is kept as the two-character value `""`.
//!
//! `Debug` of these types is redacted: it shows ids and shapes, never values
//! (they are patient data).

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::{Error, SegmentId};
use crate::escape::escape_into;
use crate::path::Path;
use std::fmt;

/// A subcomponent list: the values of one component.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Component {
    subcomponents: Vec<String>,
}

/// A repetition of a field: its components.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Repetition {
    components: Vec<Component>,
}

/// A field: its repetitions.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Field {
    repetitions: Vec<Repetition>,
}

/// A segment: a three-character id and its fields.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    id: SegmentId,
    fields: Vec<Field>,
}

/// A message: its delimiters and segments, the first being MSH.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Message {
    delimiters: Delimiters,
    segments: Vec<Segment>,
}

/// 1-based index into a slice.
fn nth<T>(items: &[T], n: usize) -> Option<&T> {
    n.checked_sub(1).and_then(|i| items.get(i))
}

impl Component {
    /// A component of the given subcomponent values (none means one empty).
    pub fn new(subcomponents: Vec<String>) -> Self {
        if subcomponents.is_empty() {
            return Self::from_value("");
        }
        Self { subcomponents }
    }

    /// A component with one value.
    pub fn from_value(value: impl Into<String>) -> Self {
        Self {
            subcomponents: vec![value.into()],
        }
    }

    /// The subcomponent values.
    pub fn subcomponents(&self) -> &[String] {
        &self.subcomponents
    }

    /// Subcomponent `n` (1-based).
    pub fn subcomponent(&self, n: usize) -> Option<&str> {
        nth(&self.subcomponents, n).map(String::as_str)
    }

    /// The first subcomponent's value.
    pub fn value(&self) -> &str {
        &self.subcomponents[0]
    }
}

impl Repetition {
    /// A repetition of the given components (none means one empty).
    pub fn new(components: Vec<Component>) -> Self {
        if components.is_empty() {
            return Self::from_value("");
        }
        Self { components }
    }

    /// A repetition with one simple value.
    pub fn from_value(value: impl Into<String>) -> Self {
        Self {
            components: vec![Component::from_value(value)],
        }
    }

    /// The components.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Component `n` (1-based).
    pub fn component(&self, n: usize) -> Option<&Component> {
        nth(&self.components, n)
    }

    /// The first component's first value.
    pub fn value(&self) -> &str {
        self.components[0].value()
    }
}

impl Field {
    /// A field of the given repetitions (none means one empty).
    pub fn new(repetitions: Vec<Repetition>) -> Self {
        if repetitions.is_empty() {
            return Self::from_value("");
        }
        Self { repetitions }
    }

    /// A field with one simple value.
    pub fn from_value(value: impl Into<String>) -> Self {
        Self {
            repetitions: vec![Repetition::from_value(value)],
        }
    }

    /// The repetitions.
    pub fn repetitions(&self) -> &[Repetition] {
        &self.repetitions
    }

    /// Repetition `n` (1-based).
    pub fn repetition(&self, n: usize) -> Option<&Repetition> {
        nth(&self.repetitions, n)
    }

    /// Component `n` (1-based) of the first repetition.
    pub fn component(&self, n: usize) -> Option<&Component> {
        self.repetitions[0].component(n)
    }

    /// The first repetition's first component's first value.
    pub fn value(&self) -> &str {
        self.repetitions[0].value()
    }

    /// True if the field holds nothing (one empty value).
    pub fn is_empty(&self) -> bool {
        self.repetitions.len() == 1
            && self.repetitions[0].components.len() == 1
            && self.repetitions[0].components[0].subcomponents.len() == 1
            && self.value().is_empty()
    }
}

/// The segment ids that frame messages, batches and files.
pub(crate) const FRAMING: [&str; 5] = ["MSH", "FHS", "BHS", "BTS", "FTS"];

/// True for the ids whose fields 1 and 2 are the delimiters.
pub(crate) fn is_header_id(id: &str) -> bool {
    matches!(id, "MSH" | "FHS" | "BHS")
}

impl Segment {
    /// A segment with id `id` and fields numbered from 1. For MSH, FHS and
    /// BHS, fields 1 and 2 are the delimiters: [`Message::new`] sets them.
    ///
    /// `id` must be three upper-case ASCII letters or digits, else
    /// [`Error::InvalidSegmentId`] with segment number 0 (not from input).
    pub fn new(id: &str, fields: Vec<Field>) -> Result<Self, Error> {
        match SegmentId::from_prefix(id.as_bytes()) {
            Some(sid) if id.len() == 3 => Ok(Self { id: sid, fields }),
            _ => Err(Error::InvalidSegmentId { segment: 0 }),
        }
    }

    pub(crate) fn from_parts(id: SegmentId, fields: Vec<Field>) -> Self {
        Self { id, fields }
    }

    /// The segment id, e.g. `PID`.
    pub fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The fields, field 1 first.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Field `n` in HL7 numbering (1-based; in MSH, field 1 is the field
    /// separator and field 2 the encoding characters).
    pub fn field(&self, n: usize) -> Option<&Field> {
        nth(&self.fields, n)
    }

    /// The value at field / repetition / component / subcomponent (all
    /// 1-based); `None` if any position is absent.
    pub fn value(&self, field: usize, rep: usize, comp: usize, sub: usize) -> Option<&str> {
        self.field(field)?
            .repetition(rep)?
            .component(comp)?
            .subcomponent(sub)
    }

    /// Sets fields 1 and 2 of a header segment from the delimiters.
    fn set_delimiter_fields(&mut self, d: &Delimiters) {
        let f1 = Field::from_value(d.field().to_string());
        let f2 = Field::from_value(d.encoding_characters());
        if self.fields.len() < 2 {
            self.fields.resize(2, Field::from_value(""));
        }
        self.fields[0] = f1;
        self.fields[1] = f2;
    }

    /// Appends the segment's text (without a segment separator).
    pub(crate) fn render_into(&self, out: &mut String, d: &Delimiters, latin1: bool) {
        out.push_str(self.id());
        let skip = if is_header_id(self.id()) {
            out.push(d.field());
            out.push_str(&d.encoding_characters());
            2
        } else {
            0
        };
        for field in self.fields.iter().skip(skip) {
            out.push(d.field());
            for (r, rep) in field.repetitions.iter().enumerate() {
                if r > 0 {
                    out.push(d.repetition());
                }
                for (c, comp) in rep.components.iter().enumerate() {
                    if c > 0 {
                        out.push(d.component());
                    }
                    for (s, sub) in comp.subcomponents.iter().enumerate() {
                        if s > 0 {
                            out.push(d.subcomponent());
                        }
                        escape_into(out, sub, d, latin1);
                    }
                }
            }
        }
    }
}

impl Message {
    /// A message from its delimiters and segments. The first segment must
    /// be MSH (its fields 1 and 2 are set from `delimiters`), and no other
    /// may be MSH, FHS, BHS, BTS or FTS.
    pub fn new(delimiters: Delimiters, mut segments: Vec<Segment>) -> Result<Self, Error> {
        let Some(first) = segments.first_mut() else {
            return Err(Error::Empty);
        };
        if first.id() != "MSH" {
            return Err(Error::NotMsh {
                segment: 1,
                id: Some(first.id),
            });
        }
        first.set_delimiter_fields(&delimiters);
        if let Some((i, s)) = segments
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, s)| FRAMING.contains(&s.id()))
        {
            return Err(Error::UnexpectedSegment {
                segment: i + 1,
                id: s.id,
            });
        }
        Ok(Self {
            delimiters,
            segments,
        })
    }

    /// Parses one message from its bytes (see [`crate::parse_message`]).
    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        crate::parse::parse_message(input)
    }

    pub(crate) fn from_parsed(delimiters: Delimiters, segments: Vec<Segment>) -> Self {
        Self {
            delimiters,
            segments,
        }
    }

    /// The delimiters (MSH-1 and MSH-2).
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// All segments in order, MSH first.
    pub fn all_segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The MSH segment.
    pub fn msh(&self) -> &Segment {
        &self.segments[0]
    }

    /// The segments with id `id`, in order.
    pub fn segments<'a, 'b>(
        &'a self,
        id: &'b str,
    ) -> impl Iterator<Item = &'a Segment> + use<'a, 'b> {
        self.segments.iter().filter(move |s| s.id() == id)
    }

    /// The first segment with id `id`.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments(id).next()
    }

    /// The value at the first segment `id`, field / repetition / component /
    /// subcomponent (all 1-based).
    pub fn value(
        &self,
        id: &str,
        field: usize,
        rep: usize,
        comp: usize,
        sub: usize,
    ) -> Option<&str> {
        self.segment(id)?.value(field, rep, comp, sub)
    }

    /// The value at a path such as `PID-3`, `PID-3[2].1`, `MSH-9.2`,
    /// `OBX(2)-5.1.1`; see [`Path`]. `None` if the path is malformed or the
    /// position absent (use [`Path::parse`] to tell the two apart).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// The value at a parsed [`Path`].
    pub fn get_path(&self, path: &Path) -> Option<&str> {
        self.segments(path.segment())
            .nth(path.occurrence() - 1)?
            .value(
                path.field(),
                path.repetition(),
                path.component(),
                path.subcomponent(),
            )
    }

    /// The character set rule of MSH-18 (see [`crate::charset`]).
    pub fn charset(&self) -> Charset {
        Charset::from_msh18(self.msh().value(18, 1, 1, 1).unwrap_or(""))
    }

    /// The message as bytes: segments separated (and ended) by CR, values
    /// escaped, encoded as MSH-18 says (see [`crate::charset`]).
    pub fn render(&self) -> Vec<u8> {
        let charset = self.charset();
        let latin1 = charset == Charset::Latin1;
        let mut out = String::new();
        for segment in &self.segments {
            segment.render_into(&mut out, &self.delimiters, latin1);
            out.push('\r');
        }
        charset.encode(out)
    }
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Component({} subcomponents)", self.subcomponents.len())
    }
}

impl fmt::Debug for Repetition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.components).finish()
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.repetitions).finish()
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        f.debug_list().entries(&self.fields).finish()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("delimiters", &self.delimiters)
            .field("segments", &self.segments)
            .finish()
    }
}
