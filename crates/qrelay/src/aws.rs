//! Shared AWS SDK configuration: loaded once per cold start, with timeouts short enough that a slow AWS
//! dependency turns into a clear error inside the Lambda's own timeout instead of a killed invocation.
//!
//! The SDK sends its requests through `ReqwestHttpClient`, a connector on the same reqwest and rustls stack as
//! the chat client (see [`crate::tls`]): one HTTP client library, one crypto library and compiled-in root
//! certificates, instead of the SDK's own hyper client, which would bring its own TLS set-up and read the
//! system's certificate files on the first call.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The configuration loader every qrelay SDK client starts from: our HTTP client and timeouts. Region,
/// credentials and `AWS_ENDPOINT_URL` (moto, locally) come from the environment unless the caller sets them.
///
/// Lambda hands a function its role's credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`. When they are there, the loader reads them directly: the default chain would find them
/// first too, but building it also builds an STS client and an IMDS client that are never used, about a fifth
/// of the consumer's instructions at cold start (callgrind). Without them (a developer's machine with a
/// profile), the default chain runs as usual.
pub fn loader() -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts);
    if credentials_in_environment(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty())) {
        loader.credentials_provider(EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    }
}

/// Whether the environment holds an access key and its secret (what the environment provider needs).
fn credentials_in_environment(is_set: impl Fn(&str) -> bool) -> bool {
    is_set("AWS_ACCESS_KEY_ID") && is_set("AWS_SECRET_ACCESS_KEY")
}

/// Loads the SDK configuration from the environment.
pub async fn load() -> SdkConfig {
    loader().load().await
}

/// The process's one SDK configuration, loaded on first use: clients built lazily (the intake's SNS publisher and
/// its room-state reader) share it, and so its credentials and its HTTP connection pool, instead of each loading
/// its own at the first question.
pub async fn shared() -> &'static SdkConfig {
    static SHARED: tokio::sync::OnceCell<SdkConfig> = tokio::sync::OnceCell::const_new();
    SHARED.get_or_init(load).await
}

/// The SDK's HTTP client (see the module documentation).
fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestHttpClient::default())
}

/// An [`HttpClient`] for the AWS SDK on reqwest. It keeps one reqwest client (one connection pool) per connect
/// timeout the SDK asks for; qrelay's clients all ask for the same one, so a process has one pool. SDK requests
/// to SNS, SQS and Secrets Manager carry their whole body in memory, which is all this connector sends.
#[derive(Debug, Default)]
struct ReqwestHttpClient {
    clients: Mutex<Vec<(Option<Duration>, reqwest::Client)>>,
}

impl ReqwestHttpClient {
    fn client(&self, connect_timeout: Option<Duration>) -> Result<reqwest::Client, ConnectorError> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, client)) = clients.iter().find(|(timeout, _)| *timeout == connect_timeout) {
            return Ok(client.clone());
        }
        let tls = crate::tls::client_config().map_err(|e| ConnectorError::user(e.into()))?;
        let mut builder = reqwest::Client::builder().tls_backend_preconfigured((*tls).clone());
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        let client = builder.build().map_err(|e| ConnectorError::user(e.into()))?;
        clients.push((connect_timeout, client.clone()));
        Ok(client)
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(ReqwestConnector {
            client: self.client(settings.connect_timeout()),
            read_timeout: settings.read_timeout(),
        })
    }
}

/// One operation's connector: a handle on the shared reqwest client, or the error that building it gave.
#[derive(Debug)]
struct ReqwestConnector {
    client: Result<reqwest::Client, ConnectorError>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(e) => {
                let error = ConnectorError::user(e.to_string().into());
                return HttpConnectorFuture::ready(Err(error));
            }
        };
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            let body = body
                .bytes()
                .ok_or_else(|| ConnectorError::user("a streaming request body is not supported".into()))?
                .to_vec();
            let mut builder = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body);
            // reqwest has no per-read timeout, so a read timeout bounds the whole exchange (stricter, never looser).
            if let Some(timeout) = read_timeout {
                builder = builder.timeout(timeout);
            }
            let response = builder.send().await.map_err(classify)?;
            let mut http_response = http::Response::builder().status(response.status());
            if let Some(headers) = http_response.headers_mut() {
                *headers = response.headers().clone();
            }
            // A streaming body, not the bytes read into memory: the SDK logs an answer's body with `Debug` at TRACE,
            // and a buffered one prints its bytes (Secrets Manager's answer is the chat token); a streaming one
            // prints nothing of them. The SDK reads it to the end as it deserialises, as before.
            let http_response = http_response
                .body(SdkBody::from_body_1_x(reqwest::Body::from(response)))
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            HttpResponse::try_from(http_response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Timeouts and failures to connect or to exchange the request are transient: the SDK's retry strategy retries
/// them. Anything else (a malformed URL, say) is not.
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() || error.is_body() {
        ConnectorError::io(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::Region;
    use aws_config::retry::RetryConfig;
    use aws_sdk_sns::error::SdkError;
    use aws_sdk_sns::operation::publish::PublishError;

    use super::*;

    /// An SNS client on this connector, sending to `endpoint`, trying `attempts` times with a 1 ms backoff,
    /// reading for at most 200 ms.
    async fn sns(endpoint: &str, attempts: u32) -> aws_sdk_sns::Client {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .read_timeout(Duration::from_millis(200))
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(1));
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts)
            .retry_config(retries)
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .test_credentials()
            .load()
            .await;
        aws_sdk_sns::Client::new(&sdk)
    }

    async fn publish(endpoint: &str, attempts: u32) -> SdkError<PublishError> {
        sns(endpoint, attempts)
            .await
            .publish()
            .topic_arn("arn:aws:sns:us-east-1:123456789012:questions")
            .message("{}")
            .send()
            .await
            .expect_err("nothing answers there")
    }

    #[test]
    fn lambdas_credentials_are_read_from_the_environment_directly_and_anything_less_takes_the_default_chain() {
        let lambda = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
        assert!(credentials_in_environment(|name| lambda.contains(&name)));
        assert!(!credentials_in_environment(|name| name == "AWS_ACCESS_KEY_ID"));
        assert!(!credentials_in_environment(|_| false));
    }

    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_an_io_error_that_the_sdk_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(connection);
            }
        });
        let error = publish(&format!("http://{address}"), 3).await;
        let SdkError::DispatchFailure(failure) = &error else {
            panic!("not a dispatch failure: {error:?}")
        };
        assert!(failure.is_io(), "{error:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "one connection per attempt");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = publish(&format!("http://{closed}"), 1).await;
        let SdkError::DispatchFailure(failure) = &error else {
            panic!("not a dispatch failure: {error:?}")
        };
        assert!(failure.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_error() {
        // Bound but never accepting: the kernel completes the handshake, and no answer ever comes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap();
        let error = publish(&format!("http://{address}"), 1).await;
        drop(silent);
        let SdkError::DispatchFailure(failure) = &error else {
            panic!("not a dispatch failure: {error:?}")
        };
        assert!(failure.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn a_streaming_body_is_refused_clearly() {
        let connector = ReqwestConnector {
            client: ReqwestHttpClient::default().client(None),
            read_timeout: None,
        };
        // What the SDK leaves of a body that streams (an S3 upload, say): no bytes in memory.
        let body = SdkBody::taken();
        let request = HttpRequest::try_from(http::Request::post("http://127.0.0.1:1/").body(body).unwrap()).unwrap();
        let error = connector.call(request).await.unwrap_err();
        assert!(error.is_user(), "{error:?}");
        assert!(format!("{error:?}").contains("streaming request body"), "{error:?}");
    }
}
