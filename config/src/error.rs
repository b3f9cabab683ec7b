//! Configuration errors that name the file, the key and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// One or more problems found in one configuration file. Every problem is
/// reported, not just the first, so an operator can fix them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problems are in.
    pub file: PathBuf,
    /// What is wrong, in file order where that is known.
    pub problems: Vec<Problem>,
}

/// One problem: the key (a dotted path such as
/// `exchange[3].organisations[1]`, empty for the file as a whole), the line
/// where known, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key.
    pub key: String,
    /// 1-based line number, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A single problem in `file`.
    pub fn one(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            problems: vec![Problem {
                key: key.into(),
                line: None,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "{}: {count} problem{}",
            self.file.display(),
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "  {}", self.file.display())?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            if problem.key.is_empty() {
                writeln!(f, ": {}", problem.message)?;
            } else {
                writeln!(f, ": {}: {}", problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while validating a file.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }

    pub(crate) fn first_message(&self) -> String {
        self.0
            .first()
            .map(|p| p.message.clone())
            .unwrap_or_else(|| "invalid".into())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn into_result(self, file: &Path) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                file: file.to_owned(),
                problems: self.0,
            })
        }
    }
}
