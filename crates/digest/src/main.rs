//! The digest Lambda: on its EventBridge Scheduler schedule (`DigestSchedule`), mails the day's questions of
//! every room to `DIGEST_EMAIL` through SES. Everything but the wiring lives in `qrelay::digest`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use qrelay::chat::secret::SecretsManagerSource;
use qrelay::chat::{http_client, poster};
use qrelay::config::DigestConfig;
use qrelay::control::DynamoStore;
use qrelay::digest::{Digester, ScheduledDigest, SesMailer};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = DigestConfig::from_env()?;
    let aws = qrelay::aws::load().await;
    let after = config.after_class;
    let chat = match &after.chat {
        Some((kind, secret)) => Some(poster(
            kind,
            http_client(after.chat_timeout)?,
            Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&aws),
                secret,
            )),
        )),
        None => None,
    };
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.control_table,
    ));
    let (to, from) = after
        .digest_email
        .clone()
        .zip(after.digest_from.clone())
        .ok_or("DIGEST_EMAIL is required")?;
    let digest = &ScheduledDigest {
        digester: Digester::new(config.rooms, store, chat),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&aws), from)),
        to,
        language: after.language,
        time_zone: after.time_zone,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        digest.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
