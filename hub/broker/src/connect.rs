//! Connecting to the broker.

use lapin::{Connection, ConnectionProperties};
use lhcie_config::BrokerConfig;

use crate::BrokerError;

/// Opens a connection, naming it `connection_name` in the broker's
/// management views (e.g. `hub`, `adapter nwl-imperial`).
pub async fn connect(
    config: &BrokerConfig,
    connection_name: &str,
) -> Result<Connection, BrokerError> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    Connection::connect(&config.url, properties)
        .await
        .map_err(|source| BrokerError::Connect {
            url: config.redacted_url(),
            source,
        })
}
