//! qrelay's integration tests: the real handlers, on the same `events/*.json` files `cargo lambda invoke` uses,
//! against moto (the real AWS SDK over HTTP) and, for the chat, a real HTTP fake of Rocket.Chat.
//!
//! One test binary for the whole workspace (see matklad's "Delete Cargo Integration Tests").

mod after_class;
mod browser;
mod chat;
mod console;
mod consumer;
mod frozen;
mod intake;
mod local;
mod logs;
mod redrive;
mod support;
mod template;
