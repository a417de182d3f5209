//! The redrive Lambda: the instructor's tool to move dead letters back to the consumer's queue after the chat
//! recovers. Everything but the wiring lives in `qrelay::redrive`.

use std::time::{Duration, SystemTime};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use qrelay::config::RedriveConfig;
use qrelay::redrive::{CopyMover, NativeMover, Queues, Redrive};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = RedriveConfig::from_env()?;
    let queues = Queues {
        client: aws_sdk_sqs::Client::new(&qrelay::aws::load().await),
        queue_url: config.queue_url,
        queue_arn: config.queue_arn,
        dead_letter_queue_url: config.dead_letter_queue_url,
        dead_letter_queue_arn: config.dead_letter_queue_arn,
    };
    let redrive = &Redrive::new(
        queues.clone(),
        CopyMover(queues.clone()),
        NativeMover(queues),
        config.default_mode,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        redrive.handle(event.payload, deadline).await
    }))
    .await
}
