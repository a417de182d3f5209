//! qrelay's test kit, shared by the integration tests, the benchmarks and the local runner; none of it compiles
//! into a Lambda function.
//!
//! - [`process`]: server processes owned by a guard that stops them (and their children) however the owner ends.
//! - [`moto`]: the one moto starter.
//! - [`world`]: the one AWS world setup (topic, queue, dead-letter queue, subscription, secret).
//! - [`samples`]: sample questions and events.
//! - [`event_source`]: `SqsPoller`, which plays Lambda's SQS event-source mapping where there is none.
//! - [`proxy`]: a forwarding proxy on loopback whose observer sees each request and its upstream time.
//! - [`runtime_api`]: a stand-in for the Lambda Runtime API, to run a function's real binary as Lambda would.
//! - [`rehearsal`]: the deploy rehearsal (`cargo run -p qrelay-testkit --bin deploy-rehearsal`): `sam deploy` of
//!   `template.yaml` to moto, then the wiring checked and the real binaries run with the stack's configuration.

pub mod event_source;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod rehearsal;
pub mod runtime_api;
pub mod samples;
pub mod world;
