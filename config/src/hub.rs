//! The hub's configuration file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Problems;
use crate::{BrokerConfig, ConfigError, toml_file};

/// The hub's configuration (see `config/demo/hub.toml`). Relative paths are
/// relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The topology file.
    pub topology: PathBuf,
    /// The broker.
    pub broker: BrokerConfig,
}

impl HubConfig {
    /// Reads and validates a hub configuration file, resolving relative
    /// paths against the file's folder.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml_file::read(file)?;
        let mut problems = Problems::default();
        for (key, problem) in config.broker.problems() {
            problems.add(format!("broker.{key}"), problem);
        }
        problems.into_result(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        config.topology = base.join(&config.topology);
        Ok(config)
    }
}
