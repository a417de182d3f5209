//! The one moto starter of the workspace: `moto_server` on a free loopback port, owned by a [`Server`] guard, and
//! SDK configuration pointing at it.

use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};

use crate::process::{Server, free_port};

/// A running moto server, stopped when dropped (or when the process ends).
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _server: Server,
}

impl Moto {
    /// The `moto_server` to run: `MOTO_SERVER`, else the project's `.venv` (what `.ci/setup` installs), else
    /// `moto_server` on `PATH`.
    pub fn program() -> String {
        if let Ok(program) = std::env::var("MOTO_SERVER") {
            return program;
        }
        let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        if venv.exists() {
            return venv.display().to_string();
        }
        "moto_server".to_owned()
    }

    /// Starts moto and waits until it answers. Fails the test, with what to install, if `moto_server` is missing.
    pub async fn start() -> Self {
        Self::try_start().await.unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts moto and waits until it answers, or says why not.
    pub async fn try_start() -> anyhow::Result<Self> {
        let program = Self::program();
        let port = free_port();
        let server = Server::spawn(
            &program,
            &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        )?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = qrelay::chat::http_client(Duration::from_secs(5))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{endpoint}/moto-api/")).send().await.is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "moto_server ({program}) did not start on {endpoint} within 30 s; is it installed? Run .ci/setup, \
                 or `pip install \"moto[server]\"` and put moto_server on PATH (or set MOTO_SERVER)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            endpoint,
            _server: server,
        })
    }

    /// SDK configuration for this server: fixed region and test credentials, nothing read from the machine.
    pub async fn sdk_config(&self) -> SdkConfig {
        qrelay::aws::loader()
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .test_credentials()
            .load()
            .await
    }
}
