//! A timing proxy in front of moto and the Rocket.Chat fake. The functions under measurement talk to them through
//! it, and it adds up how long each call spent upstream, so a cold start or an invocation splits into the time
//! spent waiting on SNS, SQS, Secrets Manager or the chat, and the function's own time (the rest).
//!
//! The proxy's own forwarding (a loopback hop, well under a millisecond) counts as the function's own time, so
//! the split never flatters the function. Calls are added up, not overlapped: the measured invocations make
//! their calls one after another.
//!
//! The HTTPS proxy ([`start_tls`]) serves a certificate for `127.0.0.1` from a private test CA
//! (`crates/qrelay/testdata/bench-*`), which the functions trust through `SSL_CERT_FILE`. It speaks plain HTTP
//! upstream, so the whole TLS handshake, the client's part and the proxy's, counts as the function's own time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use qrelay_testkit::proxy::{Observer, Proxy};

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

impl Observer for Waited {
    fn answered(&self, waited: Duration) {
        self.add(waited);
    }
}

/// A timing proxy to one upstream: the test kit's [`Proxy`] adding up into a [`Waited`].
pub type Downstream = Proxy;

/// Starts a timing proxy on loopback to `upstream` (`http://host:port`, no path).
pub async fn start(upstream: &str, waited: Arc<Waited>) -> anyhow::Result<Downstream> {
    Proxy::start(upstream, waited).await
}

/// The leaf for `127.0.0.1` the HTTPS proxy serves, and its key.
const CERT_PEM: &[u8] = include_bytes!("../../qrelay/testdata/bench-loopback.pem");
const KEY_PEM: &[u8] = include_bytes!("../../qrelay/testdata/bench-loopback.key");
/// The private CA that signed it.
const CA_PEM: &[u8] = include_bytes!("../../qrelay/testdata/bench-ca.pem");

/// Starts an HTTPS timing proxy on loopback (`https://127.0.0.1:PORT`) to `upstream`; see [`Proxy::handshakes`].
pub async fn start_tls(upstream: &str, waited: Arc<Waited>) -> anyhow::Result<Downstream> {
    Proxy::start_tls(upstream, waited, CERT_PEM, KEY_PEM).await
}

/// The file to give the functions as `SSL_CERT_FILE` so they trust the HTTPS proxy.
pub fn ca_file() -> std::path::PathBuf {
    crate::workspace_root().join("crates/qrelay/testdata/bench-ca.pem")
}

/// An HTTPS client in this process that trusts the test CA only (rustls with ring, HTTP/1.1, as the functions').
pub fn tls_client() -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(CA_PEM) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(10))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real handshake through the HTTPS proxy, trusting the test CA: the upstream's answer comes back, three
    /// requests on one client open one connection (one handshake), and a client that does not trust the CA gets
    /// no answer.
    #[tokio::test]
    async fn https_proxy_forwards_over_one_reused_connection() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
        let app = axum::Router::new().route("/api/info", axum::routing::get(|| async { "upstream says hello" }));
        let server = tokio::spawn(async move { axum::serve(upstream, app).await });
        let waited = Arc::new(Waited::default());
        let proxy = start_tls(&upstream_url, waited.clone()).await.unwrap();
        assert!(proxy.url.starts_with("https://127.0.0.1:"), "{}", proxy.url);

        let client = tls_client().unwrap();
        for _ in 0..3 {
            let response = client.get(format!("{}/api/info", proxy.url)).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "upstream says hello");
        }
        assert_eq!(proxy.handshakes(), Some(1), "three requests, one connection");
        assert_eq!(waited.take().1, 3, "each request timed upstream");

        let untrusting = reqwest::Client::builder()
            .tls_backend_preconfigured(
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
            .build()
            .unwrap();
        assert!(untrusting.get(format!("{}/api/info", proxy.url)).send().await.is_err());
        assert_eq!(proxy.handshakes(), Some(1), "a failed handshake is not counted");
        server.abort();
    }
}
