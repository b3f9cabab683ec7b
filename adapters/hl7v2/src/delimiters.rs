//! The encoding characters of a message: the field separator (MSH-1) and the
//! component, repetition, escape and subcomponent characters (MSH-2), plus the
//! truncation character that HL7 v2.7 adds as a fifth MSH-2 character.
//!
//! We require every delimiter to be ASCII punctuation (so never a letter,
//! digit, space, control character, CR or LF) and all of them distinct. The
//! standard only *recommends* the usual `|^~\&`, so any such set is accepted.
//! Being ASCII, the delimiters can be found in the raw bytes before the
//! character set is known, whatever it is (UTF-8 or ISO-8859-1).
//!
//! The truncation character is kept as data: it is reported and rendered
//! again in MSH-2, but a value ending in it is not interpreted.

use crate::error::DelimiterProblem;

/// The delimiters of one message (or batch/file header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    field: char,
    component: char,
    repetition: char,
    escape: char,
    subcomponent: char,
    truncation: Option<char>,
}

impl Default for Delimiters {
    /// The usual `|^~\&`.
    fn default() -> Self {
        Self {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
            truncation: None,
        }
    }
}

impl Delimiters {
    /// Builds and validates a set of delimiters.
    pub fn new(
        field: char,
        component: char,
        repetition: char,
        escape: char,
        subcomponent: char,
        truncation: Option<char>,
    ) -> Result<Self, DelimiterProblem> {
        let all = [
            Some(field),
            Some(component),
            Some(repetition),
            Some(escape),
            Some(subcomponent),
            truncation,
        ];
        let chars: Vec<char> = all.into_iter().flatten().collect();
        if chars.iter().any(|c| !c.is_ascii_punctuation()) {
            return Err(DelimiterProblem::NotPunctuation);
        }
        for (i, c) in chars.iter().enumerate() {
            if chars[i + 1..].contains(c) {
                return Err(DelimiterProblem::NotDistinct);
            }
        }
        Ok(Self {
            field,
            component,
            repetition,
            escape,
            subcomponent,
            truncation,
        })
    }

    /// Reads the delimiters from the start of a header segment (MSH, FHS or
    /// BHS): byte 3 is the field separator, then the encoding characters run
    /// up to the next field separator or the end of the segment.
    ///
    /// Returns the delimiters and the field (1 or 2) a problem lies in.
    pub fn from_header(segment: &[u8]) -> Result<Self, (usize, DelimiterProblem)> {
        let Some(&fs) = segment.get(3) else {
            return Err((1, DelimiterProblem::MissingFieldSeparator));
        };
        if !fs.is_ascii_punctuation() {
            return Err((1, DelimiterProblem::NotPunctuation));
        }
        let rest = &segment[4..];
        let enc = rest.split(|b| *b == fs).next().unwrap_or_default();
        if enc.len() < 4 {
            return Err((2, DelimiterProblem::TooFew));
        }
        if enc.len() > 5 {
            return Err((2, DelimiterProblem::TooMany));
        }
        if enc.iter().any(|b| !b.is_ascii_punctuation()) {
            return Err((2, DelimiterProblem::NotPunctuation));
        }
        let c = |i: usize| char::from(enc[i]);
        Self::new(
            char::from(fs),
            c(0),
            c(1),
            c(2),
            c(3),
            enc.get(4).map(|b| char::from(*b)),
        )
        .map_err(|p| (2, p))
    }

    /// The field separator (MSH-1).
    pub fn field(&self) -> char {
        self.field
    }

    /// The component separator.
    pub fn component(&self) -> char {
        self.component
    }

    /// The repetition separator.
    pub fn repetition(&self) -> char {
        self.repetition
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// The subcomponent separator.
    pub fn subcomponent(&self) -> char {
        self.subcomponent
    }

    /// The truncation character (v2.7+), if MSH-2 has a fifth character.
    pub fn truncation(&self) -> Option<char> {
        self.truncation
    }

    /// MSH-2 as written: component, repetition, escape, subcomponent and the
    /// truncation character if any.
    pub fn encoding_characters(&self) -> String {
        let mut s = String::with_capacity(5);
        s.push(self.component);
        s.push(self.repetition);
        s.push(self.escape);
        s.push(self.subcomponent);
        if let Some(t) = self.truncation {
            s.push(t);
        }
        s
    }

    /// True if `c` is one of the delimiters (truncation character included).
    pub fn is_delimiter(&self, c: char) -> bool {
        c == self.field
            || c == self.component
            || c == self.repetition
            || c == self.escape
            || c == self.subcomponent
            || Some(c) == self.truncation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_standard_and_v27() {
        let d = Delimiters::from_header(b"MSH|^~\\&|A").unwrap();
        assert_eq!(d, Delimiters::default());
        let d = Delimiters::from_header(b"MSH|^~\\&#|A").unwrap();
        assert_eq!(d.truncation(), Some('#'));
        assert_eq!(d.encoding_characters(), "^~\\&#");
        let d = Delimiters::from_header(b"MSH*~|\\&").unwrap();
        assert_eq!((d.field(), d.component(), d.repetition()), ('*', '~', '|'));
    }

    #[test]
    fn rejects_bad_sets() {
        let e = |s: &[u8]| Delimiters::from_header(s).unwrap_err();
        assert_eq!(e(b"MSH"), (1, DelimiterProblem::MissingFieldSeparator));
        assert_eq!(e(b"MSHA^~\\&"), (1, DelimiterProblem::NotPunctuation));
        assert_eq!(e(b"MSH|^~\\|"), (2, DelimiterProblem::TooFew));
        assert_eq!(e(b"MSH|^~\\&#!|"), (2, DelimiterProblem::TooMany));
        assert_eq!(e(b"MSH|^&&^|"), (2, DelimiterProblem::NotDistinct));
        assert_eq!(e(b"MSH|^~|&|"), (2, DelimiterProblem::TooFew));
        assert_eq!(e(b"MSH|^~\\a|"), (2, DelimiterProblem::NotPunctuation));
        assert_eq!(e(b"MSH|^~\\\r"), (2, DelimiterProblem::NotPunctuation));
    }
}
