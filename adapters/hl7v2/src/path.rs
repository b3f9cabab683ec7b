//! Paths to a value as HL7 people write them: `SEG[(occurrence)]-field`
//! `[[repetition]][.component[.subcomponent]]`, all 1-based, e.g. `PID-3`,
//! `PID-3[2].1`, `MSH-9.2`, `OBX(2)-5.1.1`. Omitted positions default to 1.

/// A malformed path (the path is written by programmers, not patient data,
/// but it is still not echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed HL7 path (expected e.g. PID-3[2].1.1)")]
pub struct PathError;

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    segment: String,
    occurrence: usize,
    field: usize,
    repetition: usize,
    component: usize,
    subcomponent: usize,
}

/// Parses a positive decimal number.
fn positive(s: &str) -> Result<usize, PathError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PathError);
    }
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PathError),
    }
}

impl Path {
    /// Parses a path such as `PID-3[2].1`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let (head, tail) = text.split_once('-').ok_or(PathError)?;
        let (segment, occurrence) = match head.split_once('(') {
            Some((seg, occ)) => (seg, positive(occ.strip_suffix(')').ok_or(PathError)?)?),
            None => (head, 1),
        };
        if segment.len() != 3 || !segment.bytes().all(crate::error::is_id_byte) {
            return Err(PathError);
        }
        let mut parts = tail.split('.');
        let first = parts.next().ok_or(PathError)?;
        let (field, repetition) = match first.split_once('[') {
            Some((f, r)) => (
                positive(f)?,
                positive(r.strip_suffix(']').ok_or(PathError)?)?,
            ),
            None => (positive(first)?, 1),
        };
        let component = parts.next().map(positive).transpose()?.unwrap_or(1);
        let subcomponent = parts.next().map(positive).transpose()?.unwrap_or(1);
        if parts.next().is_some() {
            return Err(PathError);
        }
        Ok(Self {
            segment: segment.to_owned(),
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }

    /// The segment id.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// Which segment with that id (1 = first).
    pub fn occurrence(&self) -> usize {
        self.occurrence
    }

    /// Field number.
    pub fn field(&self) -> usize {
        self.field
    }

    /// Repetition number.
    pub fn repetition(&self) -> usize {
        self.repetition
    }

    /// Component number.
    pub fn component(&self) -> usize {
        self.component
    }

    /// Subcomponent number.
    pub fn subcomponent(&self) -> usize {
        self.subcomponent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let p = Path::parse("OBX(2)-5[3].4.5").unwrap();
        assert_eq!(
            (p.segment(), p.occurrence(), p.field(), p.repetition()),
            ("OBX", 2, 5, 3)
        );
        assert_eq!((p.component(), p.subcomponent()), (4, 5));
        let p = Path::parse("PID-3").unwrap();
        assert_eq!((p.field(), p.repetition(), p.component()), (3, 1, 1));
        for bad in [
            "PID",
            "PID-0",
            "pid-3",
            "PID-3[0]",
            "PID-3.1.1.1",
            "PID-x",
            "PI-3",
            "PID(0)-1",
        ] {
            assert_eq!(Path::parse(bad), Err(PathError), "{bad}");
        }
    }
}
