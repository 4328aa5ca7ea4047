//! The observability HTTP server (axum): `GET /metrics`, `GET /health`, and the status page
//! (`GET /`, `GET /fragment`, `GET /api/status`), each mounted when its source is given.

use super::page;
use super::status::StatusSource;
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kcl_worker::health::WorkerHealth;
use kcl_worker::scheduler::SchedulerHandle;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a worker's `/health` asks.
#[derive(Debug, Clone)]
pub struct HealthSource {
    /// The running worker.
    pub handle: SchedulerHandle,
    /// A shard whose processor call has run this long makes the worker unhealthy.
    pub stuck_after: Duration,
}

/// What the server serves; each `None` leaves its routes out.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// `GET /metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// `GET /health`.
    pub health: Option<HealthSource>,
    /// `GET /`, `GET /fragment`, `GET /api/status`.
    pub status: Option<StatusSource>,
}

fn with_content_type(mut response: Response, content_type: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn metrics(State(endpoints): State<Arc<Endpoints>>) -> Response {
    let Some(handle) = &endpoints.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    with_content_type(
        handle.render().into_response(),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

/// The `/health` answer of `health`: 200 `{"status":"ok"}` or 503 with the reason.
pub fn health_response(health: &WorkerHealth) -> (StatusCode, serde_json::Value) {
    match health {
        WorkerHealth::Healthy => (StatusCode::OK, serde_json::json!({ "status": "ok" })),
        WorkerHealth::Unhealthy {
            reason,
            failing_for,
        } => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "status": "unhealthy",
                "reason": reason,
                "failing_for_ms": failing_for.as_millis() as u64,
            }),
        ),
    }
}

async fn health(State(endpoints): State<Arc<Endpoints>>) -> Response {
    let Some(source) = &endpoints.health else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (status, body) = health_response(&source.handle.probe(source.stuck_after));
    (status, axum::Json(body)).into_response()
}

async fn snapshot_or_error(
    endpoints: &Endpoints,
) -> Result<super::status::StatusSnapshot, Response> {
    let Some(source) = &endpoints.status else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    source.snapshot().await.map_err(|error| {
        let body =
            serde_json::json!({ "error": format!("reading the lease table failed: {error}") });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    })
}

async fn status_page(State(endpoints): State<Arc<Endpoints>>) -> Response {
    match snapshot_or_error(&endpoints).await {
        Ok(snapshot) => with_content_type(
            page::render_page(&snapshot).into_response(),
            "text/html; charset=utf-8",
        ),
        Err(response) => response,
    }
}

async fn status_fragment(State(endpoints): State<Arc<Endpoints>>) -> Response {
    match snapshot_or_error(&endpoints).await {
        Ok(snapshot) => with_content_type(
            page::render_fragment(&snapshot).into_response(),
            "text/html; charset=utf-8",
        ),
        Err(response) => response,
    }
}

async fn status_json(State(endpoints): State<Arc<Endpoints>>) -> Response {
    match snapshot_or_error(&endpoints).await {
        Ok(snapshot) => axum::Json(snapshot).into_response(),
        Err(response) => response,
    }
}

/// The router of `endpoints`.
pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/", get(status_page))
        .route("/fragment", get(status_fragment))
        .route("/api/status", get(status_json))
        .with_state(Arc::new(endpoints))
}

/// A running observability server; [`ObserveServer::shutdown`] stops it.
#[derive(Debug)]
pub struct ObserveServer {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ObserveServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting requests and waits for the server task.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Serves `endpoints` on `addr` until [`ObserveServer::shutdown`].
pub async fn serve(addr: SocketAddr, endpoints: Endpoints) -> anyhow::Result<ObserveServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local_addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let exporter = endpoints.metrics.clone();
    let app = router(endpoints);
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let server =
                axum::serve(listener, app).with_graceful_shutdown(cancel.clone().cancelled_owned());
            let upkeep = async {
                if let Some(handle) = exporter {
                    super::exporter::upkeep(handle, cancel.clone()).await;
                }
            };
            let (served, ()) = tokio::join!(server.into_future(), upkeep);
            served
        }
    });
    Ok(ObserveServer {
        local_addr,
        cancel,
        task,
    })
}
