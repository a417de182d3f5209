//! The console Lambda: the instructor's API behind API Gateway's JWT authorizer (room states, held questions,
//! the dead-letter queue). Everything but the wiring lives in `qrelay::console`.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use qrelay::config::ConsoleConfig;
use qrelay::console::{ChatInfo, Console, ConsoleAuth};
use qrelay::control::DynamoStore;
use qrelay::publish::SnsPublisher;
use qrelay::redrive::{CopyMover, NativeMover, Queues, Redrive};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = ConsoleConfig::from_env()?;
    let aws = qrelay::aws::load().await;
    let queues = Queues {
        client: aws_sdk_sqs::Client::new(&aws),
        queue_url: config.redrive.queue_url,
        queue_arn: config.redrive.queue_arn,
        dead_letter_queue_url: config.redrive.dead_letter_queue_url,
        dead_letter_queue_arn: config.redrive.dead_letter_queue_arn,
    };
    let redrive = Redrive::new(
        queues.clone(),
        CopyMover(queues.clone()),
        NativeMover(queues),
        config.redrive.default_mode,
    );
    let console = &Console::new(
        config.rooms,
        Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.control_table,
        )),
        Arc::new(SnsPublisher::new(aws_sdk_sns::Client::new(&aws), config.topic_arn)),
        Arc::new(redrive),
        ChatInfo {
            label: config.chat.label(),
            guarantee: config.chat.guarantee(),
        },
        config.flood_threshold,
        ConsoleAuth::Jwt {
            issuer: config.issuer,
            audience: config.client_id,
        },
    );
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(console.handle(req).await)
    }))
    .await
}
