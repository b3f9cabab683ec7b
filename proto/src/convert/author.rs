//! `Author`.

use lhcie_model::{Author, ValidationError};

use super::{nested, optional_ods};
use crate::canonical as pb;

impl TryFrom<pb::Author> for Author {
    type Error = ValidationError;
    fn try_from(wire: pb::Author) -> Result<Self, Self::Error> {
        Ok(Self {
            practitioner: nested(wire.practitioner, "practitioner")?,
            organisation: optional_ods(wire.organisation_ods, "organisation_ods")?,
        })
    }
}

impl From<Author> for pb::Author {
    fn from(author: Author) -> Self {
        Self {
            practitioner: author.practitioner.map(Into::into),
            organisation_ods: author.organisation.map(String::from).unwrap_or_default(),
        }
    }
}
