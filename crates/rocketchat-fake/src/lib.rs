//! A fake Rocket.Chat server for qrelay's integration tests, benchmarks and local runner.
//!
//! qrelay's chat adapter must be tested against HTTP, not against a mock of its own client: timeouts, refused
//! connections, duplicate `_id`s and rate limits only show up on a real socket. This crate serves, on `127.0.0.1`,
//! the subset of Rocket.Chat's REST API (as described in Rocket.Chat's developer documentation) that qrelay uses:
//! `GET /api/info`; `GET /api/v1/rooms.info`, `POST /api/v1/chat.sendMessage` (with a client-chosen message `_id`,
//! the idempotency key) and `GET /api/v1/chat.getMessage`, authenticated by the `X-User-Id` and `X-Auth-Token`
//! headers; and incoming webhooks at `POST /hooks/{integration_id}/{token}`. It answers with the real server's
//! status codes, bodies and headers (a duplicate `_id` is a 400, a rate limit a 429 with `X-RateLimit-Reset`), and
//! lets a test break it on purpose with [`FakeRocketChat::set_mode`], [`FakeRocketChat::rate_limit_until`] and
//! [`FakeRocketChat::rotate_token`].
//!
//! ```no_run
//! # async fn example() {
//! let chat = rocketchat_fake::FakeRocketChat::start().await;
//! let room_id = chat.add_channel("questions");
//! // ... point qrelay at chat.url(), then assert on chat.messages_in("questions") ...
//! # let _ = room_id;
//! # }
//! ```

mod api;
mod net;
mod state;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::net::Gate;
use crate::state::State;

/// The bot's user id: the only `X-User-Id` the fake accepts.
pub const USER_ID: &str = "qrelay-bot-id";

/// The bot's personal access token as the fake starts; [`FakeRocketChat::rotate_token`] replaces it.
pub const TOKEN: &str = "qrelay-bot-token";

/// How the fake behaves towards clients, to provoke each failure qrelay must survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Serves normally.
    Up,
    /// The listening socket is closed, so connecting fails with "connection refused", and connections opened
    /// before are cut, as when the server process is gone. As with a real crash, a client that reuses a keep-alive
    /// connection before noticing it was closed gets a send error (reqwest: `is_request()`, hyper's
    /// `IncompleteMessage`) rather than a refused connect; once it noticed, it reconnects and is refused.
    Down,
    /// Every `/api/` and `/hooks/` request answers HTTP 500 without storing anything, as when the database is down.
    Failing,
    /// Requests are processed (a message IS stored) but the answer leaves only after this delay, so a client that
    /// times out cannot know whether its message was posted.
    Slow(Duration),
}

/// A message as the fake stored it, for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredMessage {
    /// The message's `_id`: the client's own when it sent one, else generated.
    pub id: String,
    /// The room id.
    pub rid: String,
    /// The room name.
    pub channel: String,
    pub msg: String,
    pub alias: Option<String>,
    pub emoji: Option<String>,
    /// The request's top-level `previewUrls`, `None` when it had none (then the real server would fetch previews).
    pub preview_urls: Option<Vec<String>>,
    /// What the real server would have detected as mentions in `msg` (usernames, `all`, `here`), so a test can
    /// assert that qrelay neutralised them: this is empty for a safely escaped text.
    pub mentions: Vec<String>,
    /// Whether it came through an incoming webhook rather than `chat.sendMessage`.
    pub via_webhook: bool,
    /// A webhook body's `parseUrls`, `None` when it had none (then the real server would fetch previews).
    pub parse_urls: Option<bool>,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without its query string, e.g. `/api/v1/chat.sendMessage`.
    pub path: String,
    /// The status the fake answered; 0 while it has not decided yet. In [`Mode::Slow`] this is set before the
    /// delay, so it is what the fake sent or was about to send even if the client gave up waiting.
    pub status: u16,
    /// When the request arrived.
    pub at: SystemTime,
}

/// A running fake Rocket.Chat server on `127.0.0.1`. Dropping it stops the server.
pub struct FakeRocketChat {
    state: Arc<Mutex<State>>,
    gate: Arc<Gate>,
    server: JoinHandle<()>,
}

impl FakeRocketChat {
    /// Binds a free port on `127.0.0.1` and serves on the current tokio runtime, for as long as that runtime runs.
    ///
    /// # Panics
    /// If no loopback port can be bound: a test cannot go on without its server.
    pub async fn start() -> Self {
        let gate = Gate::bind().expect("binding the fake Rocket.Chat to a free port on 127.0.0.1");
        let state = Arc::new(Mutex::new(State::new()));
        let app = api::router(Arc::clone(&state));
        let listener = net::GatedListener::new(Arc::clone(&gate));
        let server = tokio::spawn(async move {
            // `serve` only returns on an accept error, and the gated listener retries those itself.
            let _ = axum::serve(listener, app).await;
        });
        Self { state, gate, server }
    }

    /// The base URL, `http://127.0.0.1:<port>`, without a trailing slash. It stays the same across [`Mode::Down`].
    pub fn url(&self) -> String {
        format!("http://{}", self.gate.addr())
    }

    /// Creates a public channel, or finds it if it exists, and returns its room id. A leading `#` is ignored, as
    /// it is not part of a Rocket.Chat room name.
    pub fn add_channel(&self, name: &str) -> String {
        lock(&self.state).add_channel(name)
    }

    /// Switches the failure mode. Entering [`Mode::Down`] closes the listening socket and every open connection
    /// before returning, so the very next connection attempt is refused; leaving it re-binds the same port.
    ///
    /// # Panics
    /// If the port cannot be bound again, which only happens when another process took it in the meantime.
    pub fn set_mode(&self, mode: Mode) {
        let down = mode == Mode::Down;
        lock(&self.state).mode = mode;
        if down {
            self.gate.close();
        } else {
            self.gate
                .open()
                .expect("re-binding the fake Rocket.Chat's port after Mode::Down");
        }
    }

    pub fn mode(&self) -> Mode {
        lock(&self.state).mode.clone()
    }

    /// Plays a load balancer (or a server's keep-alive timeout racing a request) in front of the chat: a connection
    /// idle for longer than `idle` is forgotten without telling the client, and the next request on it is answered
    /// with a TCP reset before any response byte. `None` turns it off.
    pub fn forget_idle_connections_after(&self, idle: Option<Duration>) {
        self.gate.forget_idle_after(idle);
    }

    /// How many requests were reset because their connection had been forgotten.
    pub fn forgotten_connection_resets(&self) -> usize {
        self.gate.forgotten_resets()
    }

    /// Until `reset`, every `/api/v1/chat.*` and `/hooks/` request answers 429 with Rocket.Chat's rate-limit
    /// headers, `X-RateLimit-Reset` being `reset` in epoch milliseconds.
    pub fn rate_limit_until(&self, reset: SystemTime) {
        lock(&self.state).rate_limited_until = Some(reset);
    }

    /// Revokes the current token: from now on only `new_token` is accepted as `X-Auth-Token`.
    pub fn rotate_token(&self, new_token: &str) {
        lock(&self.state).token = new_token.to_owned();
    }

    /// Creates an incoming webhook posting to `channel` (created if needed) and returns its full URL. Its token
    /// contains `/` and `+`, as real ones may, so that a client which re-encodes the URL is caught.
    pub fn add_webhook(&self, channel: &str) -> String {
        let (integration_id, token) = lock(&self.state).add_webhook(channel);
        format!("{}/hooks/{integration_id}/{token}", self.url())
    }

    /// `username` reacts to message `msg_id` with `emoji` (a shortcode such as `:+1:`), as a person in the channel
    /// would; reacting twice with the same emoji counts once, as on the server. False if there is no such message.
    pub fn react(&self, msg_id: &str, emoji: &str, username: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(record) = state.message_mut(msg_id) else {
            return false;
        };
        let who = record.reactions.entry(emoji.to_owned()).or_default();
        if !who.iter().any(|u| u == username) {
            who.push(username.to_owned());
        }
        true
    }

    /// User `user_id` replies in the thread of message `msg_id`. False if there is no such message.
    pub fn reply_in_thread(&self, msg_id: &str, user_id: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(record) = state.message_mut(msg_id) else {
            return false;
        };
        record.thread_count += 1;
        if !record.replies.iter().any(|u| u == user_id) {
            record.replies.push(user_id.to_owned());
        }
        true
    }

    /// Every stored message, in storage order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        lock(&self.state).messages().cloned().collect()
    }

    /// The stored messages of one channel (by name, a leading `#` ignored), in storage order.
    pub fn messages_in(&self, channel: &str) -> Vec<StoredMessage> {
        let channel = state::room_name(channel);
        lock(&self.state)
            .messages()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// Every request received since the start or the last [`Self::clear_requests`], in arrival order, including
    /// those answered 401, 429 or 500.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests().cloned().collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).clear_requests();
    }
}

impl fmt::Debug for FakeRocketChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRocketChat")
            .field("url", &self.url())
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeRocketChat {
    fn drop(&mut self) {
        self.server.abort();
        // Aborting the accept loop does not end the connection tasks axum spawned; closing the gate cuts them.
        self.gate.close();
    }
}

/// Locks a mutex even if a panicking test poisoned it: the fake's state stays consistent because every update is
/// made under one lock, and one failed test must not cascade into every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
