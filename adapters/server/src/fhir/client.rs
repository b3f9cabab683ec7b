//! The HTTP client towards the local FHIR endpoint (`deliver_to`): HTTP/1.1
//! with connection reuse, `https://` with `[fhir.deliver_tls]` (the
//! endpoint's CA, optionally a client certificate: mutual TLS), an optional
//! bearer token (never over `http://` to a host other than loopback), and
//! a timeout per request.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lhcie_config::FhirSettings;

use crate::hl7v2::tls::{client_config, no_trust_config};

/// The most of a local endpoint's answer that is read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What the local endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body (at most 1 MiB).
    pub body: Vec<u8>,
}

/// Posts FHIR JSON to the local endpoint.
#[derive(Clone)]
pub struct LocalClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    bearer: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClient")
            .field("base", &self.base)
            .field("bearer", &self.bearer.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl LocalClient {
    /// A client for the base URL `base` with the kind's settings (reads the
    /// token and TLS files).
    pub fn new(base: &str, settings: &FhirSettings) -> anyhow::Result<Self> {
        let tls = match &settings.deliver_tls {
            Some(tls) => client_config(&tls.ca, tls.cert.as_deref(), tls.key.as_deref())?,
            None => no_trust_config()?,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        if settings.bearer_token_file.is_some() && base.starts_with("http://") {
            let host = base
                .trim_start_matches("http://")
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => host.rsplit_once(':').map_or(host, |(host, _)| host),
            };
            anyhow::ensure!(
                lhcie_config::is_loopback_host(host),
                "a bearer token is never sent over http:// to the non-loopback host {host}: use https://"
            );
        }
        let bearer = match &settings.bearer_token_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the bearer token {}", file.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            base: base.trim_end_matches('/').to_owned(),
            bearer,
            timeout: Duration::from_millis(settings.delivery_timeout_ms),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs `body` as `application/fhir+json` to `<base>/<path>`.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{path}", self.base))
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json");
        if let Some(token) = &self.bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes()
                .to_vec();
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_never_sent_in_clear_to_another_host() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "secret\n").unwrap();
        let settings = FhirSettings {
            bearer_token_file: Some(token),
            ..FhirSettings::default()
        };
        let error = LocalClient::new("http://epr.example.nhs.uk/fhir", &settings).unwrap_err();
        assert!(error.to_string().contains("https://"), "{error}");
        assert!(LocalClient::new("http://127.0.0.1:9/fhir", &settings).is_ok());
        assert!(LocalClient::new("http://[::1]:9/fhir", &settings).is_ok());
        assert!(LocalClient::new("https://epr.example.nhs.uk/fhir", &settings).is_ok());
    }
}
