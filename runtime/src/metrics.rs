//! The Prometheus exposition every process serves (`GET /metrics`).
//!
//! Each process installs the `metrics` crate's global recorder once with
//! [`install`], naming the buckets of its histograms, and either adds
//! [`routes`] to an HTTP server it already runs (the hub's admin port) or
//! starts a small one of its own with [`serve`] (registry nodes,
//! adapters). Metric names and labels are listed in `docs/metrics.md`;
//! labels never carry a patient identifier.

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Buckets for latencies from half a millisecond to a minute, in seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (the first call wins; later
/// calls return the same handle). `histograms` names the histograms (by
/// full name) that get [`LATENCY_BUCKETS`]; others are summaries. `None`
/// if another recorder was installed first.
pub fn install(histograms: &[&str]) -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for name in histograms {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).to_owned()), &LATENCY_BUCKETS)
                    .ok()?;
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// The installed recorder's handle, if [`install`] succeeded.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned().flatten()
}

/// The exposition as an HTTP response (503 if no recorder is installed).
pub fn exposition() -> Response {
    match handle() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}

/// `GET /metrics` and `GET /healthz`, to merge into a process's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/metrics", get(|| async { exposition() }))
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Serves [`routes`] on `listen` until `shutdown`; returns the bound
/// address (`127.0.0.1:0` picks a free port).
pub async fn serve(listen: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = crate::net::bind(listen).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let app: Router = routes();
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
        {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_serves_what_was_recorded() {
        assert!(install(&["lhcie_test_seconds"]).is_some());
        metrics::counter!("lhcie_test_total", "exchange" => "x1").increment(3);
        metrics::histogram!("lhcie_test_seconds").record(0.003);
        let shutdown = CancellationToken::new();
        let bound = serve("127.0.0.1:0".parse().unwrap(), shutdown.clone())
            .await
            .unwrap();
        let mut stream = tokio::net::TcpStream::connect(bound).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains("lhcie_test_total{exchange=\"x1\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("lhcie_test_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        shutdown.cancel();
    }
}
