//! Connecting to the hub's gRPC endpoint.

use std::path::PathBuf;

use lhcie_model::ExchangeId;
use lhcie_proto::hub::exchange_client::ExchangeClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Client certificate files for mutual TLS.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA the hub's certificate chains to.
    pub ca: PathBuf,
    /// This adapter's certificate (names its exchange).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The name the hub's certificate must carry (e.g. `localhost`).
    pub server_name: String,
}

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct HubConnection {
    /// `https://host:port` with TLS, `http://host:port` without.
    pub endpoint: String,
    /// Mutual TLS; `None` only against a hub in insecure development mode.
    pub tls: Option<ClientTls>,
    /// The exchange this adapter serves. With TLS the hub reads it from the
    /// certificate; without, it is sent in a header.
    pub exchange: ExchangeId,
}

/// Why the hub could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Bad endpoint or TLS files.
    #[error("hub connection settings: {0}")]
    Settings(String),
    /// The connection failed.
    #[error("cannot connect to the hub at {endpoint}: {source}")]
    Transport {
        /// Where.
        endpoint: String,
        /// Why.
        source: tonic::transport::Error,
    },
}

/// Adds the exchange header that identifies the caller to a hub in insecure
/// development mode (harmless with TLS: the hub ignores it there).
#[derive(Clone)]
pub struct ExchangeHeader(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for ExchangeHeader {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("lhcie-exchange", self.0.clone());
        Ok(request)
    }
}

/// A connected client of the hub's `Exchange` service.
pub type HubClient = ExchangeClient<InterceptedService<Channel, ExchangeHeader>>;

impl HubConnection {
    /// Connects.
    pub async fn connect(&self) -> Result<HubClient, ConnectError> {
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| ConnectError::Settings(e.to_string()))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            let config =
                lhcie_tls::tonic_config::client(&tls.ca, &tls.cert, &tls.key, &tls.server_name)
                    .map_err(|e| ConnectError::Settings(e.to_string()))?;
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| ConnectError::Settings(e.to_string()))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ConnectError::Transport {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let header = MetadataValue::try_from(self.exchange.as_str())
            .map_err(|e| ConnectError::Settings(e.to_string()))?;
        Ok(
            ExchangeClient::with_interceptor(channel, ExchangeHeader(header))
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        )
    }
}
