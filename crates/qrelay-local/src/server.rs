//! The HTTP side of the local runner: the real intake handler for the form routes, plus the board and the
//! instructor page. Listens on loopback unless told otherwise (`--listen`), so that phones on the same network can
//! try the form; the instructor page stays this machine's alone whatever the listen address.
//!
//! The instructor page changes state (the outage switch, the redrive), so it must not answer a web page the
//! instructor happens to have open. It answers only when all of these hold:
//! - the peer is a loopback address (as before `--listen` existed);
//! - `Host` is a loopback name or address with this runner's port, so a DNS-rebinding page (its own name,
//!   resolving to 127.0.0.1) is refused;
//! - a state-changing request (anything but GET and HEAD) carries `Origin` equal to this runner's loopback
//!   origin, or, without `Origin`, a `Sec-Fetch-Site` of `same-origin` or `none` or no such header at all (a
//!   non-browser client such as curl: browsers send `Origin` on every cross-origin request);
//! - and it declares a JSON body, which no cross-site form can send and a cross-site script can send only after a
//!   CORS preflight that this server never grants. This covers old browsers that sent neither header.
//!
//! The pages also refuse to be framed, so another page can't trick a click on them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{LocalConfig, PublicUrl};
use crate::net::{self, Reachable, is_loopback_authority};
use crate::system::System;
use crate::{instructor, pages};

/// A running local system.
#[derive(Debug)]
pub struct Running {
    /// The address the server is bound to (`0.0.0.0:8080` with `--listen 0.0.0.0:8080`).
    pub addr: SocketAddr,
    /// Where phones reach it, and why that might not work.
    pub reachable: Reachable,
    pub system: Arc<System>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    consumer: JoinHandle<()>,
}

impl Running {
    /// The URL this machine reaches the runner at (`http://127.0.0.1:<port>`; the listen address when it is one
    /// network address only).
    pub fn url(&self) -> String {
        format!("http://{}", net::local(self.addr).unwrap_or(self.addr))
    }

    /// The URL students' phones use, printed and encoded in the QR codes.
    pub fn public_url(&self) -> String {
        self.reachable.url.to_string()
    }

    /// The instructor page's URL, if this machine can reach it (not when listening on one network address).
    pub fn admin_url(&self) -> Option<String> {
        net::local(self.addr).map(|addr| format!("http://{addr}/admin"))
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

/// Builds the system, binds the listen address and starts serving and consuming in the background.
pub async fn start(config: LocalConfig) -> anyhow::Result<Running> {
    let system = Arc::new(System::build(&config).await?);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let reachable = net::reachable(addr, config.public_url.as_ref());
    let site = Arc::new(Site {
        port: addr.port(),
        public: reachable.url.clone(),
    });
    let (shutdown, stopped) = watch::channel(false);
    let app = router(system.clone(), site).into_make_service_with_connect_info::<SocketAddr>();
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
        reachable,
        system,
        shutdown,
        server,
        consumer,
    })
}

/// What the routes need to know about the server's addresses.
#[derive(Debug)]
struct Site {
    /// The bound port: the instructor page's `Host` and `Origin` must carry it.
    port: u16,
    /// Where phones reach the runner.
    public: PublicUrl,
}

fn router(system: Arc<System>, site: Arc<Site>) -> Router {
    let admin = Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/state.json", get(admin_state))
        .route("/admin/outage", post(admin_outage))
        .route("/admin/retry-now", post(admin_retry_now))
        .route("/admin/redrive", post(admin_redrive))
        // The deployed console, without its sign-in: this machine is the instructor's.
        .route("/instructor", get(console_page))
        .route("/instructor/api/{*rest}", any(console_api))
        .route_layer(axum::middleware::from_fn_with_state(site.clone(), this_machine_only));
    let intake_site = site.clone();
    Router::new()
        .route("/board", get(board_page))
        .route("/board/channels.html", get(board_channels))
        .route("/board/messages.json", get(board_messages))
        .merge(admin)
        .fallback(move |state, request| intake(state, intake_site.clone(), request))
        .layer(axum::middleware::from_fn(no_framing))
        .with_state(system)
}

/// The console page, as the intake serves it deployed, signing nobody in.
async fn console_page(Query(lang): Query<Lang>) -> Response {
    let lang = lang.lang.as_deref().unwrap_or("en");
    Html(qrelay::console::console_page(lang, &qrelay::console::PageAuth::Local)).into_response()
}

#[derive(Deserialize)]
struct Lang {
    lang: Option<String>,
}

/// The console's API: the real handler, as API Gateway would send it (behind this machine's guard, not a token).
async fn console_api(State(system): State<Arc<System>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request = match to_lambda(parts, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    from_lambda(system.console.handle(request).await)
}

/// An axum request as the lambda_http request API Gateway would hand a function, or the 413 answer.
async fn to_lambda(parts: axum::http::request::Parts, body: Body) -> Result<lambda_http::Request, Response> {
    // Larger than intake's own 16 KiB limit, so that intake is the one to answer 413 with its JSON error.
    let bytes = match to_bytes(body, 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(
                    serde_json::json!({"error": {"code": "payload_too_large", "message": "the request body is too large"}}),
                ),
            )
                .into_response());
        }
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    Ok(lambda_http::Request::from_parts(parts, body))
}

/// A function's answer as an axum response.
fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

/// Everything else goes to the real intake handler, as API Gateway would send it.
async fn intake(State(system): State<Arc<System>>, site: Arc<Site>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    as_phones_see_it(&mut parts.headers, &site);
    let request = match to_lambda(parts, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    from_lambda(system.intake.handle(request).await)
}

/// The intake builds the QR code's link from `Host` and `X-Forwarded-Proto`, as API Gateway gives them. Here the
/// instructor opens the QR code on this machine (`127.0.0.1`), but phones need the network address; and the
/// runner speaks plain HTTP, which the intake would otherwise take as HTTPS for any non-loopback host.
fn as_phones_see_it(headers: &mut axum::http::HeaderMap, site: &Site) {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let public_is_loopback = is_loopback_authority(site.public.authority(), site.port);
    if is_loopback_authority(host, site.port) && !public_is_loopback {
        if let Ok(public) = HeaderValue::from_str(site.public.authority()) {
            headers.insert(header::HOST, public);
            headers.insert("x-forwarded-proto", HeaderValue::from_static(site.public.scheme()));
        }
    } else if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
}

async fn board_page(State(system): State<Arc<System>>) -> Html<String> {
    let channels = system.board.channels(&system.rooms);
    Html(pages::board(&channels, system.board.len(), &system.time_zone))
}

async fn board_channels(State(system): State<Arc<System>>) -> Html<String> {
    Html(pages::board_channels(
        &system.board.channels(&system.rooms),
        &system.time_zone,
    ))
}

#[derive(Deserialize)]
struct After {
    after: Option<usize>,
}

async fn board_messages(State(system): State<Arc<System>>, Query(after): Query<After>) -> impl IntoResponse {
    Json(system.board.messages_after(after.after.unwrap_or(0)))
}

/// Neither page of the runner may be shown inside another site's frame, where a click could be stolen.
async fn no_framing(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    response
}

/// The instructor page and its actions answer this machine only, and never a request another site made (see
/// the module's documentation).
async fn this_machine_only(
    State(site): State<Arc<Site>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match admin_refusal(&site, peer, &request) {
        None => next.run(request).await,
        Some((code, message)) => {
            // No address, no header values: only which check refused.
            tracing::warn!(check = code, "the instructor page refused a request");
            admin_error(StatusCode::FORBIDDEN, code, message)
        }
    }
}

/// Why a request to the instructor page is refused, if it is.
fn admin_refusal(site: &Site, peer: SocketAddr, request: &Request) -> Option<(&'static str, &'static str)> {
    if !peer.ip().to_canonical().is_loopback() {
        return Some((
            "not_this_machine",
            "the instructor page is available on this machine only",
        ));
    }
    let headers = request.headers();
    let header = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{FFFD}"));
    let host = header(header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|host| is_loopback_authority(host, site.port)) {
        return Some((
            "wrong_host",
            "the instructor page answers only at http://127.0.0.1:PORT or http://localhost:PORT",
        ));
    }
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let same_origin = match (
        header(header::ORIGIN),
        header(HeaderName::from_static("sec-fetch-site")),
    ) {
        (Some(origin), _) => origin
            .strip_prefix("http://")
            .is_some_and(|authority| is_loopback_authority(authority, site.port)),
        (None, Some(site)) => site == "same-origin" || site == "none",
        (None, None) => true,
    };
    if !same_origin {
        return Some((
            "cross_origin",
            "the instructor page's actions answer the instructor page only, not other sites",
        ));
    }
    let json = header(header::CONTENT_TYPE).is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Some((
            "not_json",
            "the instructor page's actions take a JSON body (Content-Type: application/json), e.g. {}",
        ));
    }
    None
}

fn admin_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

async fn admin_page(State(system): State<Arc<System>>) -> Response {
    Html(pages::admin(&system.rooms)).into_response()
}

async fn admin_state(State(system): State<Arc<System>>) -> Response {
    match system.depths().await {
        Ok(depths) => {
            let counts = system.receive_counts();
            let warnings = instructor::warnings(counts.as_deref(), depths.dead_letters, system.retries);
            Json(serde_json::json!({
                "depths": depths,
                "chat": system.chat_label,
                "guarantee": system.chat_guarantee.label(),
                "chat_down": system.outage.is_down(),
                "on_board": system.board.len(),
                "warnings": warnings,
            }))
            .into_response()
        }
        Err(e) => admin_error(
            StatusCode::BAD_GATEWAY,
            "queue_unavailable",
            format!("Could not read the queues: {e:#}"),
        ),
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
    Json(serde_json::json!({
        "chat_down": outage.down,
        "message": instructor::outage_changed(outage.down),
    }))
    .into_response()
}

async fn admin_retry_now(State(system): State<Arc<System>>) -> Response {
    match system.retry_now().await {
        Ok(waiting) => Json(serde_json::json!({
            "released": waiting,
            "message": instructor::retried(waiting),
        }))
        .into_response(),
        Err(e) => admin_error(StatusCode::CONFLICT, "not_available", format!("{e:#}")),
    }
}

async fn admin_redrive(State(system): State<Arc<System>>, Json(event): Json<serde_json::Value>) -> Response {
    match system.redrive(event).await {
        Ok(mut summary) => {
            summary.message = instructor::redrive_result(&summary.message);
            Json(summary).into_response()
        }
        Err(e) => admin_error(StatusCode::BAD_REQUEST, "redrive_failed", e.to_string()),
    }
}
