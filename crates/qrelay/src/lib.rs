//! qrelay: anonymous questions from a web form to a team chat, through API Gateway, SNS and SQS.
//!
//! This crate holds the domain ([`domain`]), the ports to the outside world with their real adapters
//! ([`publish`]), and the handlers each Lambda binary wires up ([`intake`]). The binaries in `crates/intake`,
//! `crates/consumer` and `crates/redrive` only read configuration, build clients and call into here.

pub mod aws;
pub mod chat;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod intake;
pub mod publish;
pub mod redrive;
pub mod sqs;
pub mod tls;
