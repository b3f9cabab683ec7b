//! Typed access to a parsed JSON resource that knows where it is: every
//! [`Node`] carries the FHIRPath of its element, so a wrong type or a
//! missing element is reported with a precise `expression`.
//!
//! Absent and `null` are the same (FHIR JSON never uses `null`, and some
//! senders write it for "absent"). A wrong JSON type is 400 `structure`; a
//! missing required element is 422 `required`.

use serde_json::Value;

use crate::outcome::Rejection;

/// A JSON value and its FHIRPath.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, path: &str) -> Self {
        Self {
            value,
            path: path.to_owned(),
        }
    }

    /// The path of a child element.
    pub fn at(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// A child element, if present and not null.
    pub fn get(&self, name: &str) -> Option<Node<'a>> {
        match self.value.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Node {
                value,
                path: self.at(name),
            }),
        }
    }

    /// A child string.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::String(s) if s.trim().is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s.as_str())),
                _ => Err(Rejection::structure(&n.path, "must be a JSON string")),
            },
        }
    }

    /// A required child string.
    pub fn req_str(&self, name: &str) -> Result<&'a str, Rejection> {
        self.str(name)?
            .ok_or_else(|| Rejection::required(&self.at(name), "is required"))
    }

    /// A child boolean.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(n) => n
                .value
                .as_bool()
                .map(Some)
                .ok_or_else(|| Rejection::structure(&n.path, "must be true or false")),
        }
    }

    /// A child object.
    pub fn obj(&self, name: &str) -> Result<Option<Node<'a>>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(n) if n.value.is_object() => Ok(Some(n)),
            Some(n) => Err(Rejection::structure(&n.path, "must be a JSON object")),
        }
    }

    /// A required child object.
    pub fn req_obj(&self, name: &str) -> Result<Node<'a>, Rejection> {
        self.obj(name)?
            .ok_or_else(|| Rejection::required(&self.at(name), "is required"))
    }

    /// The items of a child array (empty if absent). Every item must be an
    /// object.
    pub fn arr(&self, name: &str) -> Result<Vec<Node<'a>>, Rejection> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(n) => {
                let items = n
                    .value
                    .as_array()
                    .ok_or_else(|| Rejection::structure(&n.path, "must be a JSON array"))?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| {
                        let path = format!("{}[{i}]", n.path);
                        if value.is_object() {
                            Ok(Node { value, path })
                        } else {
                            Err(Rejection::structure(&path, "must be a JSON object"))
                        }
                    })
                    .collect()
            }
        }
    }

    /// The string items of a child array (empty if absent).
    pub fn str_arr(&self, name: &str) -> Result<Vec<&'a str>, Rejection> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(n) => {
                let items = n
                    .value
                    .as_array()
                    .ok_or_else(|| Rejection::structure(&n.path, "must be a JSON array"))?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str().ok_or_else(|| {
                            Rejection::structure(&format!("{}[{i}]", n.path), "must be a string")
                        })
                    })
                    .collect()
            }
        }
    }

    /// The first item of a child array.
    pub fn first(&self, name: &str) -> Result<Option<Node<'a>>, Rejection> {
        Ok(self.arr(name)?.into_iter().next())
    }

    /// The `resourceType` of a resource node.
    pub fn resource_type(&self) -> Option<&'a str> {
        self.value.get("resourceType").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::IssueType;
    use serde_json::json;

    #[test]
    fn paths_and_errors() {
        let v = json!({"a": [{"b": "x"}, {"b": 1}], "n": null, "s": " "});
        let root = Node::root(&v, "R");
        let items = root.arr("a").unwrap();
        assert_eq!(items[1].path, "R.a[1]");
        let err = items[1].str("b").unwrap_err();
        assert_eq!(err.issue().expression.as_deref(), Some("R.a[1].b"));
        assert_eq!(err.issue().code, IssueType::Structure);
        assert!(root.get("n").is_none());
        assert_eq!(root.str("s").unwrap(), None);
        let err = root.req_str("missing").unwrap_err();
        assert_eq!((err.status, err.issue().code), (422, IssueType::Required));
        assert!(Node::root(&json!({"a": [1]}), "R").arr("a").is_err());
    }
}
