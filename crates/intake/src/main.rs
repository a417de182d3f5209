//! The intake Lambda: serves the question form and publishes accepted questions to SNS.
//! Everything but the wiring lives in `qrelay::intake`.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use qrelay::config::IntakeConfig;
use qrelay::control::{CachedRooms, DynamoStore};
use qrelay::intake::Intake;
use qrelay::publish::SnsPublisher;

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    qrelay::telemetry::init();
    let config = IntakeConfig::from_env()?;
    if let Some(cap) = &config.question_cap {
        tracing::warn!("{cap}");
    }
    let publisher = Arc::new(SnsPublisher::lazy(config.topic_arn.clone()));
    let mut intake = Intake::new(config.rooms, config.limits, publisher);
    if let Some(table) = config.control_table {
        // Built on first use: a student opening the form reads no table.
        let store = Arc::new(DynamoStore::lazy(table));
        intake = intake.with_control(Arc::new(CachedRooms::new(store, CachedRooms::DEFAULT_TTL)));
    }
    if let Some(auth) = config.console_page {
        intake = intake.with_console_page(auth);
    }
    let intake = &intake;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(intake.handle(req).await)
    }))
    .await
}
