//! HTML (FHIR narrative XHTML) to plain text, for TX values.
//!
//! Not a browser: a small, total scanner. Tags are dropped; block elements
//! (`p div br li tr h1…h6 table ul ol pre blockquote section`) end a line;
//! `li` starts with `- `; table cells are separated by ` | `; the content
//! of `script`, `style` and `head` is dropped, as are comments, CDATA
//! markers and processing instructions. Character references (`&amp;`,
//! `&#233;`, `&#xE9;` and the common named ones) are decoded; an unknown
//! or malformed one is kept as written. Runs of white space become one
//! space, lines are trimmed and blank lines collapsed. Anything malformed
//! (an unclosed tag, a stray `<`) is read as well as can be: it never
//! panics and never drops text outside tags.

/// Converts HTML to plain text, lines separated by `\n`.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while !rest.is_empty() {
        if let Some(end_tag) = skip_until {
            match find_ci(rest, end_tag) {
                Some(i) => {
                    rest = &rest[i..];
                    skip_until = None;
                }
                None => break,
            }
            continue;
        }
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest);
            break;
        };
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let (text, tail) = after.split_once("]]>").unwrap_or((after, ""));
            push_raw(&mut out, text);
            rest = tail;
            continue;
        }
        let Some(gt) = tag_end(rest) else {
            // A stray `<` with no tag after it: text.
            push_text(&mut out, "<");
            rest = &rest[1..];
            continue;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches(['/', '!', '?'])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match name.as_str() {
            "script" | "style" | "head" if !closing && !tag.ends_with('/') => {
                skip_until = Some(match name.as_str() {
                    "script" => "</script",
                    "style" => "</style",
                    _ => "</head",
                });
            }
            "br" | "p" | "div" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
            | "ul" | "ol" | "pre" | "blockquote" | "section" | "dl" | "dt" | "dd" => {
                out.push('\n');
            }
            "li" => {
                out.push('\n');
                if !closing {
                    out.push_str("- ");
                }
            }
            "td" | "th" if !closing => out.push_str(" | "),
            _ => {}
        }
    }
    tidy(&out)
}

/// The index of the `>` closing a tag that starts at `s[0] == '<'`, if `s`
/// starts a tag at all (a letter, `/`, `!` or `?` after the `<`).
fn tag_end(s: &str) -> Option<usize> {
    let next = s[1..].chars().next()?;
    if !(next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?')) {
        return None;
    }
    // Quoted attribute values may hold `>`.
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Case-insensitive find of an ASCII needle.
fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    (0..h.len().saturating_sub(n.len()) + 1)
        .filter(|i| haystack.is_char_boundary(*i))
        .find(|&i| h.len() >= i + n.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Appends text between tags: entities decoded, white space collapsed.
fn push_text(out: &mut String, text: &str) {
    push_raw(out, &decode_entities(text));
}

fn push_raw(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else if c == '\u{a0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

/// Decodes character references; unknown ones are kept as written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..]
            .find(';')
            .filter(|semi| *semi <= 10)
            .and_then(|semi| entity(&rest[1..1 + semi]).map(|c| (c, semi + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "pound" => '£',
        "euro" => '€',
        "copy" => '©',
        "reg" => '®',
        "deg" => '°',
        "plusmn" => '±',
        "micro" => 'µ',
        "middot" => '·',
        "times" => '×',
        "divide" => '÷',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "hellip" => '…',
        "bull" => '•',
        "le" => '≤',
        "ge" => '≥',
        _ => return None,
    })
}

/// Trims lines and collapses blank ones.
fn tidy(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_matches(' ')) {
        let line = line.strip_prefix("| ").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrative_to_text() {
        let html = r#"<div xmlns="http://www.w3.org/1999/xhtml"><h2>Diagnoses</h2>
            <p>Ischaemic  stroke &amp; AF&#8212;treated</p><ul><li>Aspirin &lt;75mg&gt;</li>
            <li>Statin</li></ul><table><tr><th>Drug</th><td>Dose</td></tr></table>
            <script>alert("x")</script><!-- hidden --><p title="a>b">caf&eacute; &#xE9;</p></div>"#;
        assert_eq!(
            html_to_text(html),
            "Diagnoses\nIschaemic stroke & AF—treated\n- Aspirin <75mg>\n- Statin\nDrug | Dose\ncaf&eacute; é"
        );
    }

    #[test]
    fn malformed_input_keeps_text() {
        assert_eq!(html_to_text("a < b and c<d"), "a < b and c<d");
        assert_eq!(html_to_text("x<p"), "x<p");
        assert_eq!(html_to_text("<b>bold"), "bold");
        assert_eq!(html_to_text("&#0; &#xZZ; &"), "&#0; &#xZZ; &");
        assert_eq!(html_to_text("<script>never closed"), "");
        assert_eq!(html_to_text("é<br/>ü"), "é\nü");
    }
}
