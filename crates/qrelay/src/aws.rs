//! Shared AWS SDK configuration: loaded once per cold start, with timeouts short enough that a slow AWS
//! dependency turns into a clear error inside the Lambda's own timeout instead of a killed invocation.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};

/// Loads the SDK configuration from the environment (`AWS_REGION`, credentials, and `AWS_ENDPOINT_URL` for a
/// local emulator such as moto).
pub async fn load() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
}
