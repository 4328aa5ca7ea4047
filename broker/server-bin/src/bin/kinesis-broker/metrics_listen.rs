//! `--metrics-listen`: installs the Prometheus recorder and serves `GET /metrics`.

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Histogram buckets for every `_seconds` series: 100 µs to 10 s.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Buckets for the group-commit batch size.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often histograms are compacted.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// `ADDR` of `--FLAG`: `HOST:PORT`, or a bare `PORT` / `:PORT` meaning loopback.
pub(crate) fn parse_addr(flag: &str, text: &str) -> anyhow::Result<SocketAddr> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().with_context(|| {
        format!("--{flag}: {text:?} is not an address like 127.0.0.1:9100 or a port like 9100")
    })
}

/// The running metrics endpoint.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    upkeep: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Stops serving and waits for both tasks.
    pub(crate) async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.server.await;
        let _ = self.upkeep.await;
    }
}

async fn render(handle: PrometheusHandle) -> Response {
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Installs the global Prometheus recorder and serves `GET /metrics` on `addr`.
pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<MetricsServer> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(broker::storage::writer::GROUP_COMMIT_APPENDS.to_owned()),
            &BATCH_BUCKETS,
        )?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    broker::server::metrics::describe();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen: cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving metrics at /metrics");
    let cancel = CancellationToken::new();
    let app = Router::new().route(
        "/metrics",
        get({
            let handle = handle.clone();
            move || render(handle.clone())
        }),
    );
    let server = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await
        }
    });
    let upkeep = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(UPKEEP_INTERVAL) => handle.run_upkeep(),
                }
            }
        }
    });
    Ok(MetricsServer {
        cancel,
        server,
        upkeep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        let cases = [
            ("9100", Some("127.0.0.1:9100")),
            (":9100", Some("127.0.0.1:9100")),
            ("0.0.0.0:9100", Some("0.0.0.0:9100")),
            ("[::1]:9100", Some("[::1]:9100")),
            ("nowhere", None),
        ];
        for (text, expected) in cases {
            let parsed = parse_addr("metrics-listen", text)
                .ok()
                .map(|a| a.to_string());
            assert_eq!(parsed.as_deref(), expected, "{text}");
        }
    }
}
