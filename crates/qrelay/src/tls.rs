//! TLS for every connection qrelay opens (AWS and the chat): rustls with ring, trusting Mozilla's root
//! certificates compiled into the binary (`webpki-roots`).
//!
//! Compiled-in roots cost nothing at cold start. The system's roots would: reading and parsing the CA bundle took
//! about 3 ms per process here (`cargo run --release -p qrelay-bench`), paid once by the AWS SDK and once more by
//! the chat client. AWS endpoints and a chat server with a public certificate (Let's Encrypt, say) chain to
//! these roots. A chat server whose certificate comes from a private CA is trusted by setting `SSL_CERT_FILE` to
//! a PEM file holding that CA: its certificates are added to the compiled-in ones.

use std::sync::{Arc, LazyLock};

use rustls::pki_types::{CertificateDer, pem::PemObject as _};

/// Why the TLS configuration could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsSetupError {
    #[error("SSL_CERT_FILE={path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("building the HTTPS client: {0}")]
    Client(String),
}

static CONFIG: LazyLock<Result<Arc<rustls::ClientConfig>, TlsSetupError>> =
    LazyLock::new(|| build(std::env::var_os("SSL_CERT_FILE").map(|p| p.to_string_lossy().into_owned())));

/// The client configuration every HTTPS connection uses, built once per process.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    CONFIG.clone()
}

fn build(extra_roots_file: Option<String>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let roots = roots(extra_roots_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Both AWS's endpoints and the chat speak HTTP/1.1 to us; reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The compiled-in roots, plus the certificates of `extra_roots_file` (PEM) when given.
fn roots(extra_roots_file: Option<String>) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_roots_file {
        let error = |reason: String| TlsSetupError::CaFile {
            path: path.clone(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| error(format!("cannot read PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(error("holds no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| error(format!("not a usable CA certificate: {e}")))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::PrivateKeyDer;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// `testdata/`: a private CA, and a certificate for `localhost` that it signed, with that certificate's key;
    /// made with openssl for these tests only (the CA's own key was not kept).
    const PRIVATE_CA: &str = include_str!("../testdata/private-ca.pem");

    fn write_temp(name: &str, contents: &str) -> std::path::PathBuf {
        let file = std::env::temp_dir().join(format!("qrelay-tls-{name}-{}.pem", std::process::id()));
        std::fs::write(&file, contents).unwrap();
        file
    }

    /// An HTTPS server on loopback presenting the `localhost` certificate, answering `ok` to any request.
    async fn https_server() -> u16 {
        let certs = CertificateDer::pem_slice_iter(include_bytes!("../testdata/localhost.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../testdata/localhost.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = [0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = tls.write_all(answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    async fn get(config: Arc<rustls::ClientConfig>, port: u16) -> reqwest::Result<String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*config).clone())
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .build()?;
        client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await?
            .text()
            .await
    }

    #[tokio::test]
    async fn a_server_certified_by_the_ssl_cert_file_ca_is_trusted_and_without_it_is_refused() {
        let port = https_server().await;
        let file = write_temp("handshake", PRIVATE_CA);
        let with_ca = build(Some(file.display().to_string())).unwrap();
        std::fs::remove_file(&file).unwrap();

        assert_eq!(get(with_ca, port).await.expect("a trusted handshake"), "ok");
        let refused = get(build(None).unwrap(), port).await.expect_err("an unknown issuer");
        assert!(format!("{refused:?}").contains("UnknownIssuer"), "{refused:?}");
    }

    #[test]
    fn trusts_the_compiled_in_roots_without_reading_files() {
        assert!(roots(None).unwrap().len() > 100);
        assert_eq!(build(None).unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn ssl_cert_file_adds_a_private_ca_to_the_compiled_in_roots() {
        let file = write_temp("ca", PRIVATE_CA);
        let with_ca = roots(Some(file.display().to_string()));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(with_ca.unwrap().len(), webpki_roots::TLS_SERVER_ROOTS.len() + 1);
    }

    #[test]
    fn an_unusable_ssl_cert_file_is_a_clear_error() {
        let missing = build(Some("/nonexistent/ca.pem".into())).unwrap_err().to_string();
        assert!(
            missing.starts_with("SSL_CERT_FILE=/nonexistent/ca.pem: cannot read"),
            "{missing}"
        );

        let file = write_temp("empty", "not a certificate\n");
        let empty = build(Some(file.display().to_string())).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(empty.ends_with("holds no PEM certificate"), "{empty}");
    }
}
