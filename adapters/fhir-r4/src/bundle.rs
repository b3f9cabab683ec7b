//! A message `Bundle`'s entries and the resolution of references between
//! them.
//!
//! A reference resolves, in this order, to the entry whose `fullUrl` is
//! exactly the reference (`urn:uuid:...` or an absolute URL), or, for a
//! relative reference `Type/id` (a `/_history/n` suffix ignored), to the
//! one entry whose resource has that type and id, or whose `fullUrl` ends
//! in `/Type/id`. Two entries with the same `fullUrl` are refused (400
//! `duplicate`, FHIR invariant bdl-7); a relative reference matching two
//! entries is refused too. Contained resources (`#id`) are not supported;
//! a reference that resolves to nothing is 422 `not-found`.

use crate::node::Node;
use crate::outcome::{IssueType, Rejection};

/// One entry: its `fullUrl`, its resource, the resource's type and id.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub full_url: Option<&'a str>,
    pub resource: Node<'a>,
    pub resource_type: &'a str,
    pub id: Option<&'a str>,
}

/// The entries of a Bundle.
#[derive(Debug, Clone)]
pub(crate) struct Entries<'a> {
    pub entries: Vec<Entry<'a>>,
}

impl<'a> Entries<'a> {
    /// Reads `Bundle.entry`: every entry must hold a resource with a type.
    pub fn read(bundle: &Node<'a>, max_entries: usize) -> Result<Self, Rejection> {
        let items = bundle.arr("entry")?;
        if items.len() > max_entries {
            return Err(Rejection::new(
                422,
                IssueType::TooCostly,
                Some(bundle.at("entry")),
                format!("more than {max_entries} entries"),
            ));
        }
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(items.len());
        for item in items {
            let full_url = item.str("fullUrl")?;
            let resource = item.req_obj("resource")?;
            let resource_type = resource.req_str("resourceType").map_err(|_| {
                Rejection::structure(&resource.at("resourceType"), "every resource needs a type")
            })?;
            if let Some(url) = full_url
                && entries.iter().any(|e| e.full_url == Some(url))
            {
                return Err(Rejection::new(
                    400,
                    IssueType::Duplicate,
                    Some(item.at("fullUrl")),
                    "two entries have the same fullUrl",
                ));
            }
            let id = resource.str("id")?;
            entries.push(Entry {
                full_url,
                resource,
                resource_type,
                id,
            });
        }
        Ok(Self { entries })
    }

    /// Resolves a reference string; `path` is where it was found.
    pub fn resolve_str(&self, reference: &str, path: &str) -> Result<&Entry<'a>, Rejection> {
        let not_found =
            |why: &str| Rejection::new(422, IssueType::NotFound, Some(path.into()), why);
        if reference.starts_with('#') {
            return Err(not_found("contained resources are not supported"));
        }
        if let Some(e) = self.entries.iter().find(|e| e.full_url == Some(reference)) {
            return Ok(e);
        }
        if reference.contains("://") || reference.starts_with("urn:") {
            return Err(not_found("no entry has this fullUrl"));
        }
        let relative = match reference.find("/_history/") {
            Some(i) => &reference[..i],
            None => reference,
        };
        let mut parts = relative.split('/');
        let (Some(rtype), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(not_found("not a resolvable reference (Type/id or fullUrl)"));
        };
        let suffix = format!("/{rtype}/{id}");
        let mut found = self.entries.iter().filter(|e| {
            (e.resource_type == rtype && e.id == Some(id))
                || e.full_url.is_some_and(|u| u.ends_with(&suffix))
        });
        match (found.next(), found.next()) {
            (Some(e), None) => Ok(e),
            (None, _) => Err(not_found("no entry matches this reference")),
            (Some(_), Some(_)) => Err(Rejection::new(
                400,
                IssueType::Duplicate,
                Some(path.into()),
                "the reference matches more than one entry",
            )),
        }
    }

    /// Resolves a `Reference` node that has a `reference`; `None` when it
    /// has only an identifier or a display. The target must be one of
    /// `types`.
    pub fn resolve(
        &self,
        reference: &Node<'_>,
        types: &[&str],
    ) -> Result<Option<&Entry<'a>>, Rejection> {
        let Some(text) = reference.str("reference")? else {
            return Ok(None);
        };
        let path = reference.at("reference");
        let entry = self.resolve_str(text, &path)?;
        if !types.contains(&entry.resource_type) {
            return Err(Rejection::new(
                422,
                IssueType::Invalid,
                Some(path),
                format!("must refer to a {}", types.join(" or ")),
            ));
        }
        Ok(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn bundle() -> Value {
        json!({"entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {"fullUrl": "https://x.example/fhir/Organization/o1", "resource": {"resourceType": "Organization"}},
            {"resource": {"resourceType": "Practitioner", "id": "d1"}},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient", "id": "p2"}},
        ]})
    }

    #[test]
    fn resolution_table() {
        let v = bundle();
        let entries = Entries::read(&Node::root(&v, "Bundle"), 100).unwrap();
        let ok = |r: &str| {
            entries
                .resolve_str(r, "x")
                .map(|e| e.resource.path.clone())
                .map_err(|e| e.issue().code)
        };
        assert_eq!(ok("urn:uuid:1"), Ok("Bundle.entry[0].resource".into()));
        assert_eq!(ok("Patient/p1"), Ok("Bundle.entry[0].resource".into()));
        assert_eq!(
            ok("Patient/p2/_history/3"),
            Ok("Bundle.entry[3].resource".into())
        );
        assert_eq!(ok("Organization/o1"), Ok("Bundle.entry[1].resource".into()));
        assert_eq!(ok("Practitioner/d1"), Ok("Bundle.entry[2].resource".into()));
        assert_eq!(ok("urn:uuid:3"), Err(IssueType::NotFound));
        assert_eq!(ok("Patient/p3"), Err(IssueType::NotFound));
        assert_eq!(ok("#contained"), Err(IssueType::NotFound));
        assert_eq!(ok("Patient"), Err(IssueType::NotFound));
        assert_eq!(ok("a/b/c"), Err(IssueType::NotFound));
        assert_eq!(ok(""), Err(IssueType::NotFound));
        let r = json!({"reference": "urn:uuid:1"});
        let e = entries
            .resolve(&Node::root(&r, "R"), &["Organization"])
            .unwrap_err();
        assert_eq!(e.issue().code, IssueType::Invalid);
        let r = json!({"identifier": {"value": "x"}});
        assert!(
            entries
                .resolve(&Node::root(&r, "R"), &["Patient"])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let v = json!({"entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}},
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}},
        ]});
        let e = Entries::read(&Node::root(&v, "Bundle"), 10).unwrap_err();
        assert_eq!(e.issue().code, IssueType::Duplicate);
        assert_eq!(
            e.issue().expression.as_deref(),
            Some("Bundle.entry[1].fullUrl")
        );
        let v = json!({"entry": [
            {"fullUrl": "https://a/Patient/1", "resource": {"resourceType": "Patient"}},
            {"fullUrl": "https://b/Patient/1", "resource": {"resourceType": "Patient"}},
        ]});
        let entries = Entries::read(&Node::root(&v, "Bundle"), 10).unwrap();
        assert_eq!(
            entries
                .resolve_str("Patient/1", "x")
                .unwrap_err()
                .issue()
                .code,
            IssueType::Duplicate
        );
        assert!(Entries::read(&Node::root(&v, "Bundle"), 1).is_err());
    }

    proptest! {
        /// Any reference text resolves to an entry that matches it, or is
        /// refused; never a panic.
        #[test]
        fn resolution_never_panics(reference in "\\PC{0,40}", ids in proptest::collection::vec("[a-z0-9/:#_]{0,8}", 0..6)) {
            let entries: Vec<Value> = ids.iter().enumerate().map(|(i, id)| json!({
                "fullUrl": format!("urn:uuid:{i}{id}"),
                "resource": {"resourceType": if i % 2 == 0 {"Patient"} else {"Organization"}, "id": id},
            })).collect();
            let v = json!({"entry": entries});
            if let Ok(entries) = Entries::read(&Node::root(&v, "Bundle"), 100)
                && let Ok(e) = entries.resolve_str(&reference, "x")
            {
                let by_url = e.full_url == Some(reference.as_str());
                let by_id = reference.starts_with(&format!("{}/", e.resource_type));
                prop_assert!(by_url || by_id);
            }
        }
    }
}
