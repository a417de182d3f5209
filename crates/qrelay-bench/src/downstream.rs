//! A timing proxy in front of moto and the Rocket.Chat fake. The functions under measurement talk to them through
//! it, and it adds up how long each call spent upstream, so a cold start or an invocation splits into the time
//! spent waiting on SNS, SQS, Secrets Manager or the chat, and the function's own time (the rest).
//!
//! The proxy's own forwarding (a loopback hop, well under a millisecond) counts as the function's own time, so
//! the split never flatters the function. Calls are added up, not overlapped: the measured invocations make
//! their calls one after another.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Time spent upstream since the last [`Waited::take`], over every proxy that shares it.
#[derive(Debug, Default)]
pub struct Waited {
    nanos: AtomicU64,
    calls: AtomicU64,
}

impl Waited {
    /// The time waited and the number of calls since the last take, and starts counting again.
    pub fn take(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.nanos.swap(0, Ordering::SeqCst)),
            self.calls.swap(0, Ordering::SeqCst),
        )
    }

    fn add(&self, waited: Duration) {
        self.nanos
            .fetch_add(u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    waited: Arc<Waited>,
}

/// A running proxy to one upstream.
#[derive(Debug)]
pub struct Downstream {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Downstream {
    /// Starts a proxy on loopback to `upstream` (`http://host:port`, no path).
    pub async fn start(upstream: String, waited: Arc<Waited>) -> anyhow::Result<Self> {
        let proxy = Proxy {
            upstream,
            client: qrelay::chat::http_client(Duration::from_secs(30))?,
            waited,
        };
        let app = Router::new().fallback(forward).with_state(proxy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, server })
    }
}

impl Drop for Downstream {
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

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::BAD_REQUEST, "unreadable request body").into_response();
    };
    let url = format!(
        "{}{}",
        proxy.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut headers = parts.headers;
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    let started = Instant::now();
    let result = async {
        let response = proxy
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
    proxy.waited.add(started.elapsed());
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
        Err(e) => (StatusCode::BAD_GATEWAY, format!("timing proxy: {e}")).into_response(),
    }
}
