//! The escalation Lambda: hears the alarm topic, ticks every minute, and takes Twilio's key-press callback; calls
//! the staff rotation while the chat stays down. Everything but the wiring lives in `qrelay::escalation`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use qrelay::config::EscalationConfig;
use qrelay::control::DynamoStore;
use qrelay::escalation::{Escalation, TwilioCaller, TwilioSecret};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = EscalationConfig::from_env()?;
    let aws = qrelay::aws::load().await;
    let secret = Arc::new(TwilioSecret::secrets_manager(
        aws_sdk_secretsmanager::Client::new(&aws),
        config.twilio_secret_id,
    ));
    let caller = TwilioCaller::new(
        qrelay::chat::http_client(std::time::Duration::from_secs(10))?,
        &config.twilio_api_url,
        config.twilio_from,
        secret.clone(),
    );
    let escalation = &Escalation::new(
        config.rotation,
        Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.control_table,
        )),
        Arc::new(caller),
    );
    let secret = &*secret;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        escalation
            .handle(event.payload, secret, jiff::Timestamp::now())
            .await
            .map_err(Error::from)
    }))
    .await
}
