//! The floor for cold-start comparisons: a Lambda that does nothing, built with the same runtime crate and
//! release profile as qrelay's functions. qrelay's cold start divided by this one's is the figure to drive down.

use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory than a thread pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
