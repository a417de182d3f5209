//! The console Lambda: the instructor's API behind API Gateway's JWT authorizer (room states, held questions,
//! the dead-letter queue). Everything but the wiring lives in `qrelay::console`.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use qrelay::config::ConsoleConfig;
use qrelay::console::{AfterClass, ChatInfo, Console, ConsoleAuth};
use qrelay::control::DynamoStore;
use qrelay::digest::{DigestRequests, Digester, SnsDigestRequests};
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
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.control_table,
    ));
    let after = config.after_class;
    // The console exports from the archive and never reads the chat: the digest function does, with the
    // chat's token, when the console asks it through its topic.
    let after_class = after.keep_delivered_for.map(|_| AfterClass {
        digester: Arc::new(Digester::new(config.rooms.clone(), store.clone(), None)),
        time_zone: after.time_zone.clone(),
        digest: after
            .digest_topic_arn
            .clone()
            .zip(after.digest_email.clone())
            .map(|(topic, to)| {
                let requests: Arc<dyn DigestRequests> =
                    Arc::new(SnsDigestRequests::new(aws_sdk_sns::Client::new(&aws), topic));
                (requests, to)
            }),
    });
    let mut console = Console::new(
        config.rooms,
        store,
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
    if let Some(after_class) = after_class {
        console = console.with_after_class(after_class);
    }
    let console = &console;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(console.handle(req).await)
    }))
    .await
}
