//! qrelay's test kit, shared by the integration tests, the benchmarks and the local runner; none of it compiles
//! into a Lambda function.
//!
//! - [`process`]: server processes owned by a guard that stops them (and their children) however the owner ends.
//! - [`moto`]: the one moto starter.
//! - [`world`]: the one AWS world setup (topic, queue, dead-letter queue, subscription, secret).
//! - [`samples`]: sample questions and events.
//! - [`event_source`]: `SqsPoller`, which plays Lambda's SQS event-source mapping where there is none.

pub mod event_source;
pub mod moto;
pub mod process;
pub mod samples;
pub mod world;
