//! The character set of a message, from MSH-18, and decoding/encoding of its
//! bytes.
//!
//! The rule (first repetition, first component of MSH-18, trimmed, compared
//! case-insensitively):
//!
//! - `UNICODE UTF-8`: the bytes must be UTF-8; invalid bytes are an error.
//! - `8859/1` or `ASCII`: ISO-8859-1, every byte is its character (ASCII is
//!   read as its superset ISO-8859-1, so a stray high byte is not fatal).
//! - anything else, or absent: UTF-8 if the whole message is valid UTF-8,
//!   else ISO-8859-1 (a message is in one encoding; mixing is not guessed). We do not support other declared sets (e.g. `8859/15`,
//!   `ISO IR87`); this fallback reads them as well as we can.
//!
//! Segment and field separators are ASCII, so messages are split into
//! segments on the raw bytes first and each segment decoded on its own.
//! Rendering encodes with the same rule: ISO-8859-1 for `8859/1`/`ASCII`
//! (characters beyond it are written as `\X…\` escapes of their UTF-8
//! bytes, see [`crate::escape`]), UTF-8 otherwise.

use crate::delimiters::Delimiters;
use crate::escape::unescape;

/// How the bytes of a message are read, as MSH-18 declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// `UNICODE UTF-8`: strict UTF-8.
    Utf8,
    /// `8859/1` or `ASCII`: ISO-8859-1.
    Latin1,
    /// Absent or another value: UTF-8 if valid, else ISO-8859-1.
    Detect,
}

impl Charset {
    /// The rule for an MSH-18 value (first component, already unescaped).
    pub fn from_msh18(value: &str) -> Self {
        let v = value.trim();
        if v.eq_ignore_ascii_case("UNICODE UTF-8") {
            Self::Utf8
        } else if v.eq_ignore_ascii_case("8859/1") || v.eq_ignore_ascii_case("ASCII") {
            Self::Latin1
        } else {
            Self::Detect
        }
    }

    /// Reads MSH-18 from the raw bytes of an MSH segment.
    pub(crate) fn from_raw_msh(msh: &[u8], delims: &Delimiters) -> Self {
        let ascii = |c: char| u8::try_from(c).unwrap_or(0);
        let fs = ascii(delims.field());
        // Split parts: [MSH, MSH-2, MSH-3, ...]; MSH-18 is part 17.
        let Some(raw) = msh.split(|b| *b == fs).nth(17) else {
            return Self::Detect;
        };
        let stops = [
            ascii(delims.repetition()),
            ascii(delims.component()),
            ascii(delims.subcomponent()),
        ];
        let first = raw.split(|b| stops.contains(b)).next().unwrap_or_default();
        Self::from_msh18(&unescape(&latin1(first), delims))
    }

    /// Decodes one segment's bytes; on failure (only for [`Charset::Utf8`])
    /// returns the byte offset of the first invalid byte.
    pub(crate) fn decode(self, bytes: &[u8]) -> Result<String, usize> {
        match self {
            Self::Latin1 => Ok(latin1(bytes)),
            Self::Utf8 => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|e| e.valid_up_to()),
            Self::Detect => Ok(match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => latin1(bytes),
            }),
        }
    }

    /// Encodes rendered text. For [`Charset::Latin1`] the text must hold
    /// only characters up to U+00FF (rendering escapes the others).
    pub(crate) fn encode(self, text: String) -> Vec<u8> {
        match self {
            Self::Latin1 => text
                .chars()
                .map(|c| u8::try_from(c).unwrap_or(b'?'))
                .collect(),
            Self::Utf8 | Self::Detect => text.into_bytes(),
        }
    }
}

/// Every byte as its ISO-8859-1 character.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert_eq!(Charset::from_msh18("UNICODE UTF-8"), Charset::Utf8);
        assert_eq!(Charset::from_msh18(" unicode utf-8 "), Charset::Utf8);
        assert_eq!(Charset::from_msh18("8859/1"), Charset::Latin1);
        assert_eq!(Charset::from_msh18("ASCII"), Charset::Latin1);
        assert_eq!(Charset::from_msh18(""), Charset::Detect);
        assert_eq!(Charset::from_msh18("8859/15"), Charset::Detect);
        assert_eq!(Charset::Detect.decode(b"caf\xe9").unwrap(), "café");
        assert_eq!(Charset::Detect.decode("café".as_bytes()).unwrap(), "café");
        assert_eq!(Charset::Utf8.decode(b"ab\xe9"), Err(2));
        assert_eq!(Charset::Latin1.decode("é".as_bytes()).unwrap(), "Ã©");
    }

    #[test]
    fn raw_msh18() {
        let d = Delimiters::default();
        let msh = format!("MSH|^~\\&{}8859/1^x|", "|".repeat(16));
        assert_eq!(Charset::from_raw_msh(msh.as_bytes(), &d), Charset::Latin1);
        let msh = format!("MSH|^~\\&{}UNICODE UTF-8", "|".repeat(17));
        assert_eq!(Charset::from_raw_msh(msh.as_bytes(), &d), Charset::Detect);
        let msh = format!("MSH|^~\\&{}unicode utf-8", "|".repeat(16));
        assert_eq!(Charset::from_raw_msh(msh.as_bytes(), &d), Charset::Utf8);
    }
}
