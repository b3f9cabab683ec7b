//! Documents: a `Composition` (with sections, and attachments from the
//! DocumentReferences in the message's focus or its sections' entries) or
//! a `DocumentReference` (attachments only) → [`ClinicalDocument`].
//!
//! Nested sections are flattened in document order, their titles joined
//! with ` / `. Section entries other than DocumentReferences (structured
//! Observations, Conditions...) are reported as not carried.

use base64::Engine;
use lhcie_model::{
    Attachment, AttachmentContent, Bytes, Category, ClinicalDocument, Coding, DocumentSection,
    DocumentStatus, DocumentVersionRef, Identifier,
};

use super::{NotCarried, Subject, author, resolve_lenient};
use crate::bundle::{Entries, Entry};
use crate::context::TranslateContext;
use crate::datetime;
use crate::identity;
use crate::node::Node;
use crate::outcome::Rejection;
use crate::systems::*;

/// The document of a message whose focus is a Composition or a
/// DocumentReference.
pub(super) fn in_message<'a>(
    entries: &Entries<'a>,
    header: &Node<'a>,
    focus: &Entry<'a>,
    category: Option<Category>,
    ctx: &TranslateContext,
    not_carried: &mut Vec<NotCarried>,
) -> Result<(Category, ClinicalDocument, Subject<'a>), Rejection> {
    let resource = &focus.resource;
    let subject = Subject::of(resource)?;
    match focus.resource_type {
        "DocumentReference" => {
            let (category, doc) = from_document_reference(entries, resource, category, ctx)?;
            Ok((category, doc, subject))
        }
        "Composition" => {
            let (category, mut doc) = composition(
                entries,
                resource,
                focus.full_url,
                category,
                ctx,
                not_carried,
            )?;
            // Further focus entries that are DocumentReferences: attachments.
            for f in header.arr("focus")?.iter().skip(1) {
                if let Some(e) = entries.resolve(f, &["DocumentReference", "Composition"])?
                    && e.resource_type == "DocumentReference"
                {
                    attachments_into(&e.resource, &mut doc.attachments)?;
                }
            }
            Ok((category, doc, subject))
        }
        _ => Err(Rejection::not_supported(
            &resource.at("resourceType"),
            "a document message's focus is a Composition or a DocumentReference",
        )),
    }
}

fn category_of(
    explicit: Option<Category>,
    document_type: &Coding,
    ctx: &TranslateContext,
    path: &str,
) -> Result<Category, Rejection> {
    explicit
        .or_else(|| ctx.document_category(document_type))
        .ok_or_else(|| {
            Rejection::not_supported(path, "this document type is not mapped to a category")
        })
}

/// `identifier` (with our version extension) → (id, version).
fn id_and_version(identifier: &Node<'_>) -> Result<Option<(String, Option<u32>)>, Rejection> {
    let Some(value) = identifier.str("value")? else {
        return Ok(None);
    };
    let mut version = None;
    for ext in identifier.arr("extension")? {
        if ext.str("url")? == Some(LHCIE_DOCUMENT_VERSION) {
            let v = ext
                .get("valuePositiveInt")
                .and_then(|v| v.value.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    Rejection::value(&ext.at("valuePositiveInt"), "a positive version number")
                })?;
            version = Some(v);
        }
    }
    Ok(Some((value.to_owned(), version)))
}

fn replaces(
    resource: &Node<'_>,
    target_field: &str,
) -> Result<Option<DocumentVersionRef>, Rejection> {
    for r in resource.arr("relatesTo")? {
        if r.str("code")? != Some("replaces") {
            continue;
        }
        let identifier = match target_field {
            "target" => r
                .obj("target")?
                .map(|t| t.obj("identifier"))
                .transpose()?
                .flatten(),
            _ => r.obj("targetIdentifier")?,
        };
        if let Some(identifier) = identifier
            && let Some((document_id, Some(version))) = id_and_version(&identifier)?
        {
            return Ok(Some(DocumentVersionRef {
                document_id,
                version,
            }));
        }
    }
    Ok(None)
}

fn status(code: Option<&str>, path: &str) -> Result<Option<DocumentStatus>, Rejection> {
    Ok(match code {
        None => None,
        Some("preliminary") => Some(DocumentStatus::Preliminary),
        Some("final") => Some(DocumentStatus::Final),
        Some("amended") => Some(DocumentStatus::Amended),
        Some("entered-in-error") => Some(DocumentStatus::EnteredInError),
        Some(_) => return Err(Rejection::value(path, "not a CompositionStatus code")),
    })
}

fn encounter(entries: &Entries<'_>, reference: &Node<'_>) -> Result<Option<Identifier>, Rejection> {
    if let Some(e) = resolve_lenient(entries, reference, &["Encounter"])?
        && let Some(i) = e.resource.first("identifier")?
    {
        return identity::local_identifier(&i);
    }
    match reference.obj("identifier")? {
        Some(i) => identity::local_identifier(&i),
        None => Ok(None),
    }
}

fn composition<'a>(
    entries: &Entries<'a>,
    c: &Node<'a>,
    full_url: Option<&str>,
    category: Option<Category>,
    ctx: &TranslateContext,
    not_carried: &mut Vec<NotCarried>,
) -> Result<(Category, ClinicalDocument), Rejection> {
    let document_type = identity::concept(c, "type")?
        .ok_or_else(|| Rejection::required(&c.at("type"), "is required"))?;
    let category = category_of(category, &document_type, ctx, &c.at("type"))?;
    let (document_id, version) = match c.obj("identifier")? {
        Some(i) => id_and_version(&i)?,
        None => None,
    }
    .or_else(|| c.str("id").ok().flatten().map(|id| (id.to_owned(), None)))
    .or_else(|| full_url.map(|u| (u.to_owned(), None)))
    .ok_or_else(|| Rejection::required(&c.at("identifier"), "the document needs an id"))?;
    let version = match version {
        Some(v) => v,
        None => c
            .obj("meta")?
            .and_then(|m| m.str("versionId").ok().flatten())
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(1),
    };
    let mut doc = ClinicalDocument {
        document_id,
        version,
        replaces: replaces(c, "targetIdentifier")?,
        document_type,
        title: c.req_str("title")?.to_owned(),
        author: match c.first("author")? {
            Some(a) => Some(author(entries, &a)?),
            None => None,
        },
        status: status(Some(c.req_str("status")?), &c.at("status"))?
            .unwrap_or(DocumentStatus::Final),
        authored_at: datetime::date_time(c, "date")?,
        encounter: match c.obj("encounter")? {
            Some(e) => encounter(entries, &e)?,
            None => None,
        },
        sections: Vec::new(),
        attachments: Vec::new(),
    };
    sections(entries, c, "", &mut doc, not_carried)?;
    Ok((category, doc))
}

fn sections(
    entries: &Entries<'_>,
    parent: &Node<'_>,
    prefix: &str,
    doc: &mut ClinicalDocument,
    not_carried: &mut Vec<NotCarried>,
) -> Result<(), Rejection> {
    for s in parent.arr("section")? {
        let code = identity::concept(&s, "code")?;
        let own = s
            .str("title")?
            .map(str::to_owned)
            .or_else(|| code.as_ref().and_then(|c| c.display.clone()))
            .unwrap_or_else(|| "Section".to_owned());
        let title = if prefix.is_empty() {
            own
        } else {
            format!("{prefix} / {own}")
        };
        let text = match s.obj("text")? {
            Some(t) => t.str("div")?.unwrap_or_default().to_owned(),
            None => String::new(),
        };
        if !text.is_empty() || s.get("section").is_none() {
            doc.sections.push(DocumentSection {
                code,
                title: title.clone(),
                text,
                media_type: "text/html".into(),
            });
        }
        for e in s.arr("entry")? {
            let target = match e.str("reference")? {
                Some(r) if !entries.entries.is_empty() => {
                    Some(entries.resolve_str(r, &e.at("reference"))?)
                }
                _ => None,
            };
            match target {
                Some(t) if t.resource_type == "DocumentReference" => {
                    attachments_into(&t.resource, &mut doc.attachments)?;
                }
                _ => not_carried.push(NotCarried {
                    expression: e.path.clone(),
                    reason: "structured section entries are not carried",
                }),
            }
        }
        sections(entries, &s, &title, doc, not_carried)?;
    }
    Ok(())
}

/// A DocumentReference → a document with attachments.
pub(crate) fn from_document_reference(
    entries: &Entries<'_>,
    d: &Node<'_>,
    category: Option<Category>,
    ctx: &TranslateContext,
) -> Result<(Category, ClinicalDocument), Rejection> {
    let document_type = identity::concept(d, "type")?
        .ok_or_else(|| Rejection::required(&d.at("type"), "is required"))?;
    let category = category_of(category, &document_type, ctx, &d.at("type"))?;
    let mut id = match d.obj("masterIdentifier")? {
        Some(i) => id_and_version(&i)?,
        None => None,
    };
    if id.is_none()
        && let Some(i) = d.first("identifier")?
    {
        id = id_and_version(&i)?;
    }
    let (document_id, version) = id
        .or_else(|| d.str("id").ok().flatten().map(|i| (i.to_owned(), None)))
        .ok_or_else(|| {
            Rejection::required(
                &d.at("masterIdentifier"),
                "the document needs an identifier",
            )
        })?;
    let status = match status(d.str("docStatus")?, &d.at("docStatus"))? {
        Some(s) => s,
        None if d.str("status")? == Some("entered-in-error") => DocumentStatus::EnteredInError,
        None => DocumentStatus::Final,
    };
    let mut attachments = Vec::new();
    attachments_into(d, &mut attachments)?;
    let title = d
        .str("description")?
        .map(str::to_owned)
        .or_else(|| attachments.iter().find_map(|a| a.title.clone()))
        .or_else(|| document_type.display.clone())
        .unwrap_or_else(|| "Document".to_owned());
    let encounter = match d.obj("context")? {
        Some(c) => match c.first("encounter")? {
            Some(e) => encounter(entries, &e)?,
            None => None,
        },
        None => None,
    };
    Ok((
        category,
        ClinicalDocument {
            document_id,
            version: version.unwrap_or(1),
            replaces: replaces(d, "target")?,
            document_type,
            title,
            author: match d.first("author")? {
                Some(a) => Some(author(entries, &a)?),
                None => None,
            },
            status,
            authored_at: datetime::date_time(d, "date")?,
            encounter,
            sections: Vec::new(),
            attachments,
        },
    ))
}

/// The attachments of a DocumentReference's `content`.
pub(crate) fn attachments_into(d: &Node<'_>, out: &mut Vec<Attachment>) -> Result<(), Rejection> {
    let content = d.arr("content")?;
    if content.is_empty() {
        return Err(Rejection::required(&d.at("content"), "is required"));
    }
    for c in content {
        let a = c.req_obj("attachment")?;
        out.push(attachment(&a)?);
    }
    Ok(())
}

/// An `Attachment` node.
pub(crate) fn attachment(a: &Node<'_>) -> Result<Attachment, Rejection> {
    let media_type = a.req_str("contentType")?.to_owned();
    let title = a.str("title")?.map(str::to_owned);
    let created_at = datetime::date_time(a, "creation")?;
    let size = match a.get("size") {
        None => None,
        Some(n) => Some(
            n.value
                .as_u64()
                .ok_or_else(|| Rejection::structure(&n.path, "must be an unsigned integer"))?,
        ),
    };
    if let Some(data) = a.str("data")? {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| Rejection::value(&a.at("data"), "not base64"))?;
        if size.is_some_and(|s| s != bytes.len() as u64) {
            return Err(Rejection::value(
                &a.at("size"),
                "does not match the decoded data",
            ));
        }
        let mut out = Attachment::inline(media_type, title, Bytes::from(bytes));
        out.created_at = created_at;
        return Ok(out);
    }
    let url = a
        .str("url")?
        .ok_or_else(|| Rejection::required(&a.at("data"), "an attachment needs data or a url"))?;
    let mut sha256 = [0u8; 32];
    for ext in a.arr("extension")? {
        if ext.str("url")? == Some(LHCIE_ATTACHMENT_SHA256)
            && let Some(hex) = ext.str("valueString")?
        {
            sha256 = parse_hex(hex)
                .ok_or_else(|| Rejection::value(&ext.at("valueString"), "64 hex digits"))?;
        }
    }
    Ok(Attachment {
        media_type,
        title,
        size: size.unwrap_or(0),
        sha256,
        content: AttachmentContent::Url(url.to_owned()),
        created_at,
    })
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of a hash (for rendering).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
