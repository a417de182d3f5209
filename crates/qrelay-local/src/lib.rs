//! qrelay on one machine, for a first look and for development: the real intake routes over HTTP (on loopback, or
//! on the network for a phone demo), the real consumer and redrive logic behind the same ports, with in-process
//! queues in place of SNS and SQS (or the real AWS adapters when `AWS_ENDPOINT_URL` points at moto or another
//! endpoint), and a board page in place of the chat (or a real Rocket.Chat or webhook when configured).

pub mod board;
mod config;
mod delivery;
mod instructor;
mod markdown;
pub mod memq;
pub mod net;
mod pages;
pub mod ports;
mod server;
mod system;

pub use config::{ChatChoice, LocalConfig, PublicUrl};
pub use server::{Running, start};
pub use system::{Backend, Retries, System};
