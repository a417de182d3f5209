//! Starts `moto_server` on a free loopback port for one test, and stops it when the test ends (even when the
//! test binary is killed: the server is watched over its standard input).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use tokio::process::{Child, Command};

/// A running moto server.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

impl Moto {
    /// Starts moto and waits until it answers. Fails the test, with what to install, if `moto_server` is missing.
    pub async fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        // `sh` keeps moto alive only as long as this process holds its stdin open: when the test binary exits,
        // however it exits, `cat` sees end-of-file and the server is killed.
        let script = format!("\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid");
        let child = Command::new("sh")
            .args(["-c", &script, &program])
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting sh");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = qrelay::chat::http_client(std::time::Duration::from_secs(30)).unwrap();
        loop {
            if client.get(format!("{endpoint}/moto-api/")).send().await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on {endpoint} within 30 s; is it installed? Run `.ci/run`, or \
                 `pip install \"moto[server]\"` and put moto_server on PATH (or set MOTO_SERVER)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            endpoint,
            _child: child,
        }
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
