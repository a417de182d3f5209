//! A forwarding proxy on loopback in front of moto or a chat fake, with an [`Observer`] that sees each request
//! and how long the upstream took to answer it. The benchmark's timing proxy and the deploy rehearsal's
//! recording proxy are both this one proxy with their own observer.
//!
//! [`Proxy::start_tls`] serves HTTPS instead (rustls with ring, a certificate given in PEM), with keep-alive as
//! [`Proxy::start`]: a client that reuses its connection does one handshake, which [`Observer::handshake`] sees.
//! Upstream is still plain HTTP, so "waited" never includes a handshake: the client's side of it is the client's
//! own time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What a proxy's owner wants to know of the traffic.
pub trait Observer: Send + Sync + 'static {
    /// A request, before it is forwarded.
    fn request(&self, _headers: &HeaderMap, _body: &[u8]) {}
    /// The time from forwarding a request to having read its whole answer (or failed to).
    fn answered(&self, _waited: Duration) {}
    /// A TLS handshake completed: a client opened a new connection to an HTTPS proxy.
    fn handshake(&self) {}
    /// Whether to lose this request's answer: the request is forwarded and answered upstream, and the client then
    /// waits for an answer that never comes (until it gives up, or [`LOST_ANSWER_HELD_FOR`] passes): a network that
    /// drops a reply.
    fn lose_answer(&self, _method: &axum::http::Method, _path: &str) -> bool {
        false
    }
}

/// How long a lost answer keeps its client waiting at most.
pub const LOST_ANSWER_HELD_FOR: Duration = Duration::from_secs(60);

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
    handshakes: Option<Arc<AtomicU64>>,
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
        // TCP_NODELAY, as the HTTPS proxy sets it (see there), so the two differ by TLS only.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            server,
            handshakes: None,
        })
    }

    /// Starts a proxy on loopback to `upstream` that serves HTTPS with `cert_pem` (the chain, leaf first) and
    /// `key_pem`; its [`Proxy::url`] is `https://127.0.0.1:PORT`, so the certificate must name `IP:127.0.0.1`.
    pub async fn start_tls(
        upstream: &str,
        observer: Arc<dyn Observer>,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> anyhow::Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
        anyhow::ensure!(!certs.is_empty(), "no PEM certificate");
        let key = PrivateKeyDer::from_pem_slice(key_pem)?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let forward = Forward {
            upstream: upstream.to_owned(),
            client: qrelay::chat::http_client(Duration::from_secs(30))?,
            observer: observer.clone(),
        };
        let app = Router::new().fallback(forward_one).with_state(forward);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", tcp.local_addr()?);
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let handshakes = Arc::new(AtomicU64::new(0));
        let counted = handshakes.clone();
        // Handshakes run in their own tasks, so a slow or failed one holds up no other client.
        let accepting = tokio::spawn(async move {
            let mut handshaking = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, addr)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // As a server should: without it, a TLS record split over two writes waits for the client's
                // delayed ACK (40 ms on Linux), which would be counted as the function's own time.
                let _ = stream.set_nodelay(true);
                let (acceptor, sender, observer, counted) =
                    (acceptor.clone(), sender.clone(), observer.clone(), counted.clone());
                handshaking.spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        counted.fetch_add(1, Ordering::SeqCst);
                        observer.handshake();
                        let _ = sender.send((stream, addr)).await;
                    }
                });
                while handshaking.try_join_next().is_some() {}
            }
        });
        let server = tokio::spawn(async move {
            let _stop_accepting = AbortOnDrop(accepting);
            let _ = axum::serve(TlsListener { receiver }, app).await;
        });
        Ok(Self {
            url,
            server,
            handshakes: Some(handshakes),
        })
    }

    /// The TLS handshakes completed so far (connections opened to it), for a proxy started with
    /// [`Proxy::start_tls`]; `None` for a plain one.
    pub fn handshakes(&self) -> Option<u64> {
        self.handshakes.as_ref().map(|h| h.load(Ordering::SeqCst))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The connections whose handshake completed, for `axum::serve`.
struct TlsListener {
    receiver: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, SocketAddr)>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.receiver.recv().await {
            Some(connection) => connection,
            // The accepting task is gone: the proxy is stopping.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Err(std::io::Error::other("a TLS listener fed by a channel"))
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
    let lose = forward.observer.lose_answer(&parts.method, parts.uri.path());
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
    if lose {
        tokio::time::sleep(LOST_ANSWER_HELD_FOR).await;
        return (StatusCode::GATEWAY_TIMEOUT, "proxy: this answer was lost on purpose").into_response();
    }
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
