//! Attachments as OBX segments.
//!
//! | attachment | OBX |
//! |---|---|
//! | inline bytes | OBX-2 `ED`; OBX-3 `ATTACHMENT^<title>^99LHCIE`; OBX-5 `^<type>^<subtype>^Base64^<data>` (HL7 ED: source application ^ type of data ^ data subtype ^ encoding ^ data; type and subtype are the MIME type's halves, e.g. `^application^pdf^Base64^…`); OBX-14 its creation time |
//! | by URL only | OBX-2 `TX`; OBX-3 `ATTACHMENT-REF^<title>^99LHCIE`; OBX-5 lines saying it is not included, with its title, media type, size, SHA-256 and URL, so the receiver can fetch and check it |
//!
//! An attachment held by URL is carried as a TX note rather than refused:
//! the message is still useful and the receiver learns exactly what is
//! missing and where it is. The translator reads that note back as a text
//! section, not as an attachment. MIME parameters stay in the subtype; the
//! translator reads types other than `application`, `image` and `text` back
//! as `application/octet-stream`.

use base64::Engine;
use lhcie_model::{Attachment, AttachmentContent};

use super::build::{SegmentBuilder, comps, lines_field, rep_of, reps, ts, value};

/// The local coding system of the OBX-3 codes we write.
pub(crate) const LOCAL_SYSTEM: &str = "99LHCIE";

/// One OBX for an attachment; `set_id` is OBX-1, `status` OBX-11. The
/// caller may set more fields before building.
pub(crate) fn obx(set_id: usize, a: &Attachment, status: &str) -> SegmentBuilder {
    let title = a.title.as_deref().unwrap_or("");
    let mut b = SegmentBuilder::new("OBX");
    b.set(1, value(set_id.to_string()));
    match &a.content {
        AttachmentContent::Inline(data) => {
            let (main, sub) = a
                .media_type
                .split_once('/')
                .unwrap_or((a.media_type.as_str(), ""));
            let data = base64::engine::general_purpose::STANDARD.encode(data);
            b.set(2, value("ED"))
                .set(3, comps(&["ATTACHMENT", title, LOCAL_SYSTEM]))
                .set(5, reps(vec![rep_of(&["", main, sub, "Base64", &data])]));
        }
        AttachmentContent::Url(url) => {
            let hash: String = a.sha256.iter().map(|b| format!("{b:02x}")).collect();
            let mut text =
                vec!["Attachment not included in this message: it is held elsewhere.".to_owned()];
            if let Some(t) = &a.title {
                text.push(format!("Title: {t}"));
            }
            text.push(format!("Media type: {}", a.media_type));
            text.push(format!("Size: {} bytes", a.size));
            text.push(format!("SHA-256: {hash}"));
            text.push(format!("URL: {url}"));
            b.set(2, value("TX"))
                .set(3, comps(&["ATTACHMENT-REF", title, LOCAL_SYSTEM]))
                .set(5, lines_field(&text.join("\n")));
        }
    }
    b.set(11, value(status));
    b.set_opt(14, a.created_at.map(|t| value(ts(t))));
    b
}
