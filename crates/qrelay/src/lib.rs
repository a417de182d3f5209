//! qrelay: anonymous questions from a web form to a team chat, through API Gateway, SNS and SQS.
//!
//! This library holds everything but the wiring: the binaries in `crates/intake`, `crates/consumer` and
//! `crates/redrive` only read configuration, build clients and call into here. Its modules, from the handlers down:
//!
//! - [`intake`]: the intake function's handler. Serves the question form, accepts a question and acknowledges it
//!   only once it is published.
//! - [`consumer`]: the consumer function's handler. Posts each queued question to its room's chat channel exactly
//!   once, retrying with a backoff that spans hours and dead-lettering what can never be delivered.
//! - [`redrive`]: the redrive function's handler, the instructor's tool to move dead letters back to the queue.
//! - [`console`]: the instructor's console API (room states, held questions, redrive, export, digest on demand).
//! - [`control`]: room states, held questions, the flood breaker's counters and the archive of delivered
//!   questions, in one store (DynamoDB deployed, memory locally).
//! - [`digest`]: after class, a room's questions with the chat's votes and answers, mailed (SES) or exported.
//! - [`escalation`]: when the chat stays down, phone calls through a Twilio rotation until someone acknowledges.
//! - [`config`]: each function's configuration, read from environment variables once at cold start.
//! - [`publish`]: the port an accepted question leaves the intake through, and its SNS adapter.
//! - [`chat`]: the port to the team chat, how a question reads there, and the Rocket.Chat REST and
//!   incoming-webhook adapters with the secret they read their credentials from.
//! - [`sqs`]: SQS conventions the consumer, the redrive and the tools share.
//! - [`aws`]: the AWS SDK configuration every client starts from: one HTTP stack and timeouts that fail fast.
//! - [`telemetry`]: the binaries' one logging set-up, third-party crates capped below TRACE.
//! - [`tls`]: TLS for every connection (AWS and the chat), with compiled-in root certificates.
//! - [`domain`]: questions, rooms and the question document, parsed once from untrusted input; no I/O.

#![warn(unreachable_pub)]

pub mod aws;
pub mod chat;
pub mod config;
pub mod console;
pub mod consumer;
pub mod control;
pub mod digest;
pub mod domain;
pub mod escalation;
pub mod intake;
pub mod publish;
pub mod redrive;
pub mod sqs;
pub mod telemetry;
pub mod tls;
mod web;

/// HTML escaping, as every page of qrelay's (and the local runner's) does it.
pub use web::{escape_html, escape_html_into};
