//! The consumer Lambda: posts questions from the SQS queue to the chat, as often as its chat's guarantee allows
//! (exactly once on Rocket.Chat's REST API), reporting partial batch failures. Everything but the wiring lives in
//! `qrelay::consumer` and `qrelay::chat`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use qrelay::chat::secret::SecretsManagerSource;
use qrelay::chat::{http_client, poster};
use qrelay::config::ConsumerConfig;
use qrelay::consumer::{Consumer, Control, SqsQueueControl};
use qrelay::control::{CachedRooms, DynamoStore};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = ConsumerConfig::from_env()?;
    let aws = qrelay::aws::load().await;
    let secrets = Arc::new(SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        &config.chat_secret_id,
    ));
    let chat = poster(&config.chat, http_client(config.chat_timeout)?, secrets);
    // Said once per cold start, so the log states what the deployment can promise about each question.
    tracing::info!(
        chat = config.chat.label(),
        guarantee = chat.guarantee().label(),
        "posting to the chat"
    );
    let mut consumer = Consumer::new(
        config.rooms,
        config.time_zone,
        config.backoff,
        chat,
        Arc::new(SqsQueueControl::lazy(
            aws.clone(),
            &config.queue_url,
            &config.dead_letter_queue_url,
        )),
    )
    .with_chat_timeout(config.chat_timeout);
    if let Some(control) = config.control {
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), control.table));
        consumer = consumer.with_control(Control {
            rooms: Arc::new(CachedRooms::new(store, CachedRooms::DEFAULT_TTL)),
            flood_threshold: control.flood_threshold,
            held_for: control.held_for,
            keep_delivered_for: control.keep_delivered_for,
        });
    }
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        Ok::<_, Error>(consumer.handle(event.payload, deadline).await)
    }))
    .await
}
