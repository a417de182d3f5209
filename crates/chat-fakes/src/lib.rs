//! Fakes of the chat APIs qrelay posts to besides Rocket.Chat (which has its own, `rocketchat-fake`): Slack,
//! Mattermost, Discord, Google Chat and Teams, each a real HTTP server on `127.0.0.1`, answering as that API's documentation
//! says it does (success, refused credentials, an unknown channel, rate limits with the API's own headers, server
//! errors, slow answers, duplicates), so the adapters are tested against real sockets and real status codes rather
//! than mocked functions.
//!
//! Beside them, [`twilio`]: Twilio's voice API as the escalation calls it, and the callee pressing a key.
//!
//! Every fake can lose answers after storing the post ([`Faults::lose_every`]), the case that makes a retry post
//! twice unless the adapter checks first.

pub mod discord;
pub mod google_chat;
pub mod mattermost;
pub mod slack;
pub mod teams;
pub mod twilio;

mod server;

pub use server::{Faults, Running};
