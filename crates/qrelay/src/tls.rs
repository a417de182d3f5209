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
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
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
    use super::*;

    #[test]
    fn trusts_the_compiled_in_roots_without_reading_files() {
        assert!(roots(None).unwrap().len() > 100);
        assert_eq!(build(None).unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn ssl_cert_file_adds_a_private_ca_to_the_compiled_in_roots() {
        let file = std::env::temp_dir().join(format!("qrelay-tls-ca-{}.pem", std::process::id()));
        std::fs::write(&file, include_str!("../testdata/private-ca.pem")).unwrap();
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

        let file = std::env::temp_dir().join(format!("qrelay-tls-empty-{}.pem", std::process::id()));
        std::fs::write(&file, "not a certificate\n").unwrap();
        let empty = build(Some(file.display().to_string())).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(empty.ends_with("holds no PEM certificate"), "{empty}");
    }
}
