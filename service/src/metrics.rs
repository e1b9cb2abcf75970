//! Prometheus metrics and the `/metrics` + `/health` endpoint every service serves.
//!
//! Each service registers its own metrics in one [`Registry`]; the endpoint binds to loopback
//! unless configured otherwise, because metrics can reveal positions and wallet balances.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{extract::State, http::header, response::IntoResponse, routing::get, Json, Router};
use clap::Args;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::sync::RwLock;

#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Address of the `/metrics` and `/health` endpoint; `off` disables it. Loopback by default:
    /// expose it deliberately (e.g. `0.0.0.0:9100` in a container).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:0")]
    pub metrics_addr: String,
}

impl MetricsArgs {
    pub fn address(&self) -> Result<Option<SocketAddr>, crate::config::ConfigError> {
        if self.metrics_addr.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        self.metrics_addr
            .parse()
            .map(Some)
            .map_err(|e| crate::config::ConfigError::Flag {
                flag: "--metrics-addr",
                problem: format!("`{}` is not host:port: {e}", self.metrics_addr),
            })
    }
}

/// What `/health` answers: a JSON object each service fills with its own figures.
pub type HealthReport = Arc<RwLock<serde_json::Value>>;

#[derive(Clone)]
struct EndpointState {
    registry: Registry,
    health: HealthReport,
}

/// Serves `/metrics` (Prometheus text format) and `/health` (JSON) until the task is dropped.
/// Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    health: HealthReport,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_report))
        .with_state(EndpointState { registry, health });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok((bound, task))
}

async fn metrics(State(state): State<EndpointState>) -> impl IntoResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&state.registry.gather(), &mut buffer) {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("encoding metrics failed: {e}").into_bytes(),
        );
    }
    (
        axum::http::StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buffer,
    )
}

async fn health_report(State(state): State<EndpointState>) -> Json<serde_json::Value> {
    Json(state.health.read().await.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::IntCounter;

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let registry = Registry::new();
        let counter = IntCounter::new("redline_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let health: HealthReport = Arc::new(RwLock::new(serde_json::json!({"last_block": 7})));
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), registry, health)
            .await
            .unwrap();
        let body = http_get(addr, "/metrics").await;
        assert!(body.contains("redline_test_total 3"), "{body}");
        let body = http_get(addr, "/health").await;
        assert!(body.contains("\"last_block\":7"), "{body}");
        task.abort();
    }

    #[test]
    fn address_flag_is_validated() {
        let args = MetricsArgs {
            metrics_addr: "nowhere".into(),
        };
        assert!(args
            .address()
            .unwrap_err()
            .to_string()
            .contains("--metrics-addr"));
        let args = MetricsArgs {
            metrics_addr: "off".into(),
        };
        assert_eq!(args.address().unwrap(), None);
    }

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }
}
