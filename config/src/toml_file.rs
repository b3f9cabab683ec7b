//! Reading a TOML file into a typed structure, with errors that name the
//! file, the key path and the line.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{ConfigError, Problem};

/// Reads and parses `file`. Unknown keys are errors (every config struct
/// has `deny_unknown_fields`).
pub fn read<T: DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::one(file, "", format!("cannot read the file: {e}")))?;
    parse(file, &text)
}

/// Parses TOML text that came from `file`.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| error(file, text, "", &e))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        error(file, text, &key, e.inner())
    })
}

fn error(file: &Path, text: &str, key: &str, inner: &toml::de::Error) -> ConfigError {
    let line = inner
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    ConfigError {
        file: file.to_owned(),
        problems: vec![Problem {
            key: key.to_owned(),
            line,
            message: inner.message().trim().to_owned(),
        }],
    }
}
