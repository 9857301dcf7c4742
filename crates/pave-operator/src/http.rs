//! The operator's HTTP endpoints: `/healthz` (the process answers), `/readyz` (every
//! controller has listed its objects once) and `/metrics`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Which controllers have completed their first list. Until all have, the operator
/// would reconcile against a partial view, so it reports itself not ready.
pub struct Readiness {
    controllers: Vec<(&'static str, AtomicBool)>,
}

impl Readiness {
    pub fn new(controllers: &[&'static str]) -> Self {
        let controllers = controllers
            .iter()
            .map(|&name| (name, AtomicBool::new(false)))
            .collect();
        Readiness { controllers }
    }

    pub fn mark_synced(&self, controller: &str) {
        for (name, synced) in &self.controllers {
            if *name == controller {
                synced.store(true, Ordering::Release);
            }
        }
    }

    /// The controllers that have not synced yet; empty once the operator is ready.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        self.controllers
            .iter()
            .filter(|(_, synced)| !synced.load(Ordering::Acquire))
            .map(|(name, _)| *name)
            .collect()
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { metrics, readiness });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let waiting = state.readiness.waiting_for();
    if waiting.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        let body = format!("waiting for the first sync of: {}\n", waiting.join(", "));
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn readyz_turns_ok_only_when_every_controller_synced() {
        let names = ["pave-catalog", "pave-scorecards"];
        let metrics = Arc::new(Metrics::new(&names));
        let readiness = Arc::new(Readiness::new(&names));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics, readiness.clone(), async {
            let _ = stopped.await;
        }));

        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        readiness.mark_synced("pave-catalog");
        let response = get(addr, "/readyz").await;
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert!(response.ends_with("waiting for the first sync of: pave-scorecards\n"));
        readiness.mark_synced("pave-scorecards");
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics").await;
        assert!(
            metrics.contains(r#"pave_operator_status_writes_total{controller="pave-catalog"} 0"#)
        );

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
