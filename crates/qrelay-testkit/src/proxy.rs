//! A forwarding proxy on loopback in front of moto or a chat fake, with an [`Observer`] that sees each request
//! and how long the upstream took to answer it. The benchmark's timing proxy and the deploy rehearsal's
//! recording proxy are both this one proxy with their own observer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What a proxy's owner wants to know of the traffic.
pub trait Observer: Send + Sync + 'static {
    /// A request, before it is forwarded.
    fn request(&self, _headers: &HeaderMap, _body: &[u8]) {}
    /// The time from forwarding a request to having read its whole answer (or failed to).
    fn answered(&self, _waited: Duration) {}
}

#[derive(Clone)]
struct Forward {
    upstream: String,
    client: reqwest::Client,
    observer: Arc<dyn Observer>,
}

/// A running proxy to one upstream, stopped when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where to send requests instead of the upstream: `http://127.0.0.1:PORT`.
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on loopback to `upstream` (`http://host:port`, no path).
    pub async fn start(upstream: &str, observer: Arc<dyn Observer>) -> anyhow::Result<Self> {
        let forward = Forward {
            upstream: upstream.to_owned(),
            client: qrelay::chat::http_client(Duration::from_secs(30))?,
            observer,
        };
        let app = Router::new().fallback(forward_one).with_state(forward);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, server })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Headers that belong to one connection, not to the request or response: not forwarded. The bodies are
/// buffered, so their length is set again on each side.
const HOP_BY_HOP: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::HOST,
];

async fn forward_one(State(forward): State<Forward>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable request body").into_response();
    };
    forward.observer.request(&parts.headers, &body);
    let url = format!(
        "{}{}",
        forward.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut headers = parts.headers;
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    let started = Instant::now();
    let result = async {
        let response = forward
            .client
            .request(parts.method, url)
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let (status, headers) = (response.status(), response.headers().clone());
        Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
    }
    .await;
    forward.observer.answered(started.elapsed());
    match result {
        Ok((status, mut headers, body)) => {
            for name in &HOP_BY_HOP {
                headers.remove(name);
            }
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    }
}
