//! Shared AWS SDK configuration: loaded once per cold start, with timeouts short enough that a slow AWS
//! dependency turns into a clear error inside the Lambda's own timeout instead of a killed invocation, and one
//! HTTPS client on rustls with ring (the SDK's default would bring a second crypto library, aws-lc).

use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_sns::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The SDK's HTTPS client: rustls with ring, the system's root certificates.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The configuration loader every qrelay SDK client starts from: our HTTPS client and timeouts. Region,
/// credentials and `AWS_ENDPOINT_URL` (moto, locally) come from the environment unless the caller sets them.
pub fn loader() -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts)
}

/// Loads the SDK configuration from the environment.
pub async fn load() -> SdkConfig {
    loader().load().await
}
