//! The HTTP side of the local runner: the real intake handler for the form routes, plus the board and the
//! instructor page. Binds to loopback only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::LocalConfig;
use crate::pages;
use crate::system::System;

/// A running local system.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub system: Arc<System>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    consumer: JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets the consumer finish its batch, makes a last delivery attempt and reports
    /// what is still waiting.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.consumer.await;
        self.system.report_at_shutdown().await;
    }
}

/// Builds the system, binds the port and starts serving and consuming in the background.
pub async fn start(config: LocalConfig) -> anyhow::Result<Running> {
    let system = Arc::new(System::build(&config).await?);
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = watch::channel(false);
    let app = router(system.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(async move {
        let graceful = async move {
            let _ = server_stopped.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            tracing::error!(error = %e, "the local server stopped");
        }
    });
    let consumer = tokio::spawn(system.clone().run_consumer(stopped));
    Ok(Running {
        addr,
        system,
        shutdown,
        server,
        consumer,
    })
}

fn router(system: Arc<System>) -> Router {
    let admin = Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/state.json", get(admin_state))
        .route("/admin/outage", post(admin_outage))
        .route("/admin/retry-now", post(admin_retry_now))
        .route("/admin/redrive", post(admin_redrive))
        .route_layer(axum::middleware::from_fn(loopback_only));
    Router::new()
        .route("/board", get(board_page))
        .route("/board/messages.json", get(board_messages))
        .merge(admin)
        .fallback(intake)
        .with_state(system)
}

/// Everything else goes to the real intake handler, as API Gateway would send it.
async fn intake(State(system): State<Arc<System>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Larger than intake's own 16 KiB limit, so that intake is the one to answer 413 with its JSON error.
    let bytes = match to_bytes(body, 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(
                serde_json::json!({"error": {"code": "payload_too_large", "message": "the request body is too large"}}),
            ),
        )
            .into_response(),
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    let response = system
        .intake
        .handle(lambda_http::Request::from_parts(parts, body))
        .await;
    let (parts, body) = response.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

async fn board_page() -> Html<&'static str> {
    Html(pages::BOARD)
}

#[derive(Deserialize)]
struct After {
    after: Option<usize>,
}

async fn board_messages(State(system): State<Arc<System>>, Query(after): Query<After>) -> impl IntoResponse {
    Json(system.board.messages_after(after.after.unwrap_or(0)))
}

/// The instructor page and its actions answer loopback clients only.
async fn loopback_only(ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request, next: Next) -> Response {
    if peer.ip().is_loopback() {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "the instructor page is available on this machine only",
        )
            .into_response()
    }
}

async fn admin_page(State(system): State<Arc<System>>) -> Response {
    Html(pages::admin(&system.rooms)).into_response()
}

async fn admin_state(State(system): State<Arc<System>>) -> Response {
    match system.depths().await {
        Ok(depths) => Json(serde_json::json!({
            "depths": depths,
            "chat": system.chat_label,
            "chat_down": system.outage.is_down(),
            "on_board": system.board.len(),
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e:#}")).into_response(),
    }
}

#[derive(Deserialize)]
struct Outage {
    down: bool,
}

async fn admin_outage(State(system): State<Arc<System>>, Json(outage): Json<Outage>) -> Response {
    system.outage.set_down(outage.down);
    tracing::info!(
        chat_down = outage.down,
        "outage switch changed from the instructor page"
    );
    Json(serde_json::json!({ "chat_down": outage.down })).into_response()
}

async fn admin_retry_now(State(system): State<Arc<System>>) -> Response {
    match system.retry_now().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::CONFLICT, format!("{e:#}")).into_response(),
    }
}

async fn admin_redrive(State(system): State<Arc<System>>, Json(event): Json<serde_json::Value>) -> Response {
    match system.redrive(event).await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
