//! HL7 v2 escape sequences in values.
//!
//! [`unescape`] turns the text of one subcomponent, as found between the
//! delimiters, into its value:
//!
//! - `\F\ \S\ \T\ \R\ \E\` become the field, component, subcomponent,
//!   repetition and escape characters; `\P\` the truncation character when
//!   MSH-2 declares one (v2.7+).
//! - `\Xhh…\` becomes the bytes `hh…`: as UTF-8 when they are valid UTF-8
//!   (so `\X0D0A\` is CR LF, and multi-byte characters survive), otherwise
//!   each byte as its ISO-8859-1 character.
//! - Formatting escapes are **kept verbatim**, escape characters included:
//!   `\H\`, `\N\`, `\.br\`, `\.sp2\`, `\.in+4\`, `\Zxx\`, `\Cxxyy\`,
//!   `\Mxxyyzz\`. They are instructions to a display, not characters, and
//!   the adapters that render text are the ones to interpret them; keeping
//!   them lets a message pass through unchanged.
//! - Anything else (unknown or malformed sequences, an escape character with
//!   no closing one, odd-length hex) is kept literally. Nothing here panics.
//!
//! [`escape`] is the inverse: delimiters become their escapes, an escape
//! character becomes `\E\` unless it starts a formatting escape (which is
//! passed through), and CR and LF become `\X0D\` and `\X0A\` so that they
//! can never split a segment. Hence `unescape(escape(s)) == s` for every `s`;
//! the one thing a value cannot hold is the literal text of a formatting
//! escape meaning itself.

use crate::delimiters::Delimiters;
use std::fmt::Write as _;

/// Decodes the escape sequences of one subcomponent's text.
pub fn unescape(text: &str, delims: &Delimiters) -> String {
    let e = delims.escape();
    if !text.contains(e) {
        return text.to_owned();
    }
    let el = e.len_utf8();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(e) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + el..];
        let Some(end) = after.find(e) else {
            // Unterminated: keep literally.
            out.push_str(&rest[pos..]);
            return out;
        };
        let content = &after[..end];
        if !decode_into(&mut out, content, delims) {
            out.push_str(&rest[pos..pos + el + end + el]);
        }
        rest = &after[end + el..];
    }
    out.push_str(rest);
    out
}

/// Escapes a value for writing between delimiters, as UTF-8 text.
pub fn escape(value: &str, delims: &Delimiters) -> String {
    let mut out = String::with_capacity(value.len());
    escape_into(&mut out, value, delims, false);
    out
}

/// Appends the escaped form of `value` to `out`. With `latin1`, characters
/// beyond ISO-8859-1 are written as `\X…\` of their UTF-8 bytes, so that the
/// text can be encoded as ISO-8859-1 and still decode to the same value.
pub(crate) fn escape_into(out: &mut String, value: &str, delims: &Delimiters, latin1: bool) {
    let e = delims.escape();
    let push_esc = |out: &mut String, code: &str| {
        out.push(e);
        out.push_str(code);
        out.push(e);
    };
    let mut skip_to = 0;
    for (i, c) in value.char_indices() {
        if i < skip_to {
            continue;
        }
        if c == e {
            if let Some(len) = formatting_len(&value[i..], delims) {
                out.push_str(&value[i..i + len]);
                skip_to = i + len;
            } else {
                push_esc(out, "E");
            }
        } else if c == delims.field() {
            push_esc(out, "F");
        } else if c == delims.component() {
            push_esc(out, "S");
        } else if c == delims.subcomponent() {
            push_esc(out, "T");
        } else if c == delims.repetition() {
            push_esc(out, "R");
        } else if c == '\r' {
            push_esc(out, "X0D");
        } else if c == '\n' {
            push_esc(out, "X0A");
        } else if latin1 && u32::from(c) > 0xFF {
            let mut buf = [0u8; 4];
            let mut hex = String::from("X");
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(hex, "{b:02X}");
            }
            push_esc(out, &hex);
        } else {
            out.push(c);
        }
    }
}

/// Decodes a data escape (`F S T R E P X…`) into `out`; false if `content`
/// is not one (formatting, unknown or malformed), to be kept verbatim.
fn decode_into(out: &mut String, content: &str, delims: &Delimiters) -> bool {
    let c = match content {
        "F" => delims.field(),
        "S" => delims.component(),
        "T" => delims.subcomponent(),
        "R" => delims.repetition(),
        "E" => delims.escape(),
        "P" => match delims.truncation() {
            Some(t) => t,
            None => return false,
        },
        _ => {
            let Some(hex) = content.strip_prefix('X') else {
                return false;
            };
            let Some(bytes) = decode_hex(hex) else {
                return false;
            };
            match String::from_utf8(bytes) {
                Ok(s) => out.push_str(&s),
                Err(e) => out.extend(e.into_bytes().into_iter().map(char::from)),
            }
            return true;
        }
    };
    out.push(c);
    true
}

/// Hex digits to bytes: non-empty, even length, hex digits only.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would also take a sign (`\X+F\`).
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// If `text` starts with a formatting escape (escape character, content,
/// escape character), its length in bytes.
fn formatting_len(text: &str, delims: &Delimiters) -> Option<usize> {
    let e = delims.escape();
    let el = e.len_utf8();
    let after = text.strip_prefix(e)?;
    let end = after.find(e)?;
    let content = &after[..end];
    is_formatting(content, delims).then_some(el + end + el)
}

/// True if `content` (between escape characters) is a formatting escape.
fn is_formatting(content: &str, delims: &Delimiters) -> bool {
    let simple = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '-';
    if content
        .chars()
        .any(|c| !simple(c) || delims.is_delimiter(c))
    {
        return false;
    }
    let hex_of = |s: &str, lens: &[usize]| {
        lens.contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    match content.as_bytes().first() {
        Some(b'H' | b'N') => content.len() == 1,
        Some(b'.') => content.len() > 1,
        Some(b'Z') => content.len() > 1,
        Some(b'C') => hex_of(&content[1..], &[4]),
        Some(b'M') => hex_of(&content[1..], &[4, 6]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Delimiters {
        Delimiters::default()
    }

    #[test]
    fn decodes_delimiter_escapes() {
        assert_eq!(unescape(r"a\F\b\S\c\T\d\R\e\E\f", &d()), "a|b^c&d~e\\f");
        assert_eq!(escape("a|b^c&d~e\\f", &d()), r"a\F\b\S\c\T\d\R\e\E\f");
    }

    #[test]
    fn decodes_hex() {
        assert_eq!(unescape(r"x\X0D0A\y", &d()), "x\r\ny");
        assert_eq!(unescape(r"\X0D\\X0A\", &d()), "\r\n");
        assert_eq!(unescape(r"\XC3A9\", &d()), "é");
        assert_eq!(unescape(r"\XE9\", &d()), "é");
        assert_eq!(escape("a\r\nb", &d()), r"a\X0D\\X0A\b");
    }

    #[test]
    fn keeps_formatting_and_malformed() {
        for s in [r"\H\bold\N\", r"a\.br\b", r"\Zabc\", r"\.in+4\", r"\C2842\"] {
            assert_eq!(unescape(s, &d()), s);
            assert_eq!(escape(s, &d()), s);
        }
        for s in [r"a\F", r"\X0\", r"\XZZ\", r"\Q\", r"\\", r"\", r"\P\"] {
            assert_eq!(unescape(s, &d()), s);
        }
        let t = Delimiters::new('|', '^', '~', '\\', '&', Some('#')).unwrap();
        assert_eq!(unescape(r"a\P\", &t), "a#");
    }

    #[test]
    fn latin1_mode_hex_escapes_wide_chars() {
        let mut s = String::new();
        escape_into(&mut s, "é€", &d(), true);
        assert_eq!(s, r"é\XE282AC\");
        assert_eq!(unescape(&s, &d()), "é€");
    }
}
