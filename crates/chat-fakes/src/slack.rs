//! A fake of Slack's Web API: `chat.postMessage` and `conversations.history`, answering as
//! <https://docs.slack.dev/reference/methods/chat.postMessage> and
//! <https://docs.slack.dev/reference/methods/conversations.history> document.
//!
//! - Every method answers HTTP 200 with `{"ok": true, ...}` on success and HTTP 200 with `{"ok": false, "error":
//!   "..."}` for its errors: `not_authed` (no token), `invalid_auth`, `token_revoked`, `channel_not_found`,
//!   `not_in_channel`, `is_archived`, `no_text`, `msg_too_long` (text over 40,000 characters),
//!   `invalid_metadata_format`, `missing_scope`.
//! - Rate limits answer HTTP 429 with `Retry-After` (seconds) and `{"ok": false, "error": "ratelimited"}`
//!   (<https://docs.slack.dev/apis/web-api/rate-limits>).
//! - `chat.postMessage` stores the message with its `metadata` and answers `{"ok": true, "channel", "ts",
//!   "message"}`. Slack has no idempotency key: the same body sent twice is stored twice (the duplicate).
//! - `conversations.history` (GET query or form) answers the newest messages first, `limit` (default 100, at most
//!   999), after `oldest` (a ts) if given, and with each message's `metadata` only when `include_all_metadata=true`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::lock;
use crate::{Faults, Running};

/// Slack truncates `text` over 40,000 characters; the API refuses it with `msg_too_long`.
pub const MAX_TEXT_CHARS: usize = 40_000;

/// A message the fake stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub channel: String,
    pub ts: String,
    pub text: String,
    /// The `metadata` object sent, if any.
    pub metadata: Option<Value>,
    pub unfurl_links: Option<bool>,
    pub unfurl_media: Option<bool>,
}

/// The fake's state: shared with the handlers, inspected by tests.
#[derive(Debug)]
pub struct Slack {
    token: Mutex<String>,
    /// A token that answers `token_revoked`.
    revoked: Mutex<Option<String>>,
    /// Channel id → whether the bot is a member (false answers `not_in_channel`).
    channels: Mutex<HashMap<String, bool>>,
    messages: Mutex<Vec<StoredMessage>>,
    /// Answer 429 `ratelimited` with this `Retry-After` while set.
    rate_limited: Mutex<Option<u64>>,
    next_ts: AtomicU64,
    calls: Mutex<HashMap<&'static str, usize>>,
    pub faults: Faults,
}

impl Slack {
    /// A fake accepting `token`, with the bot a member of `channels` (ids such as `C0123456789`).
    pub fn new(token: &str, channels: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            token: Mutex::new(token.to_owned()),
            revoked: Mutex::new(None),
            channels: Mutex::new(channels.iter().map(|c| ((*c).to_owned(), true)).collect()),
            messages: Mutex::new(Vec::new()),
            rate_limited: Mutex::new(None),
            next_ts: AtomicU64::new(now_micros()),
            calls: Mutex::new(HashMap::new()),
            faults: Faults::default(),
        })
    }

    pub async fn serve(self: &Arc<Self>) -> Running {
        Running::serve(self.router()).await
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/conversations.history", get(history).post(history))
            .with_state(self.clone())
    }

    /// A channel that exists but the bot is not a member of (`not_in_channel`).
    pub fn add_foreign_channel(&self, channel: &str) {
        lock(&self.channels).insert(channel.to_owned(), false);
    }

    /// Rotates the token: the old one answers `token_revoked` from now on.
    pub fn set_token(&self, token: &str) {
        let old = std::mem::replace(&mut *lock(&self.token), token.to_owned());
        *lock(&self.revoked) = Some(old);
    }

    /// Answers 429 with `Retry-After: secs` while set.
    pub fn rate_limit(&self, secs: Option<u64>) {
        *lock(&self.rate_limited) = secs;
    }

    /// The messages stored, oldest first.
    pub fn messages(&self) -> Vec<StoredMessage> {
        lock(&self.messages).clone()
    }

    /// How many requests `method` (`chat.postMessage`, `conversations.history`) answered.
    pub fn calls(&self, method: &'static str) -> usize {
        lock(&self.calls).get(method).copied().unwrap_or(0)
    }

    fn count(&self, method: &'static str) {
        *lock(&self.calls).entry(method).or_default() += 1;
    }

    /// Checks the bearer token: `None` if it is the current one, else Slack's answer.
    fn auth_error(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(given) = given else {
            return Some(not_ok("not_authed"));
        };
        if given == lock(&self.token).as_str() {
            None
        } else if lock(&self.revoked).as_deref() == Some(given) {
            Some(not_ok("token_revoked"))
        } else {
            Some(not_ok("invalid_auth"))
        }
    }

    /// A forced failure, or the rate limit.
    fn common_refusal(&self) -> Option<Response> {
        if let Some(status) = self.faults.failing() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Slack's own errors are HTTP 200 with ok: false; a failing front end answers the status.
            return Some(match status {
                StatusCode::UNAUTHORIZED => not_ok("invalid_auth"),
                StatusCode::FORBIDDEN => not_ok("missing_scope"),
                s => (s, "upstream error").into_response(),
            });
        }
        lock(&self.rate_limited).map(|secs| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response()
        })
    }

    /// Whether the bot can use `channel`: `None` if so, else Slack's answer.
    fn channel_error(&self, channel: &str) -> Option<Response> {
        match lock(&self.channels).get(channel) {
            None => Some(not_ok("channel_not_found")),
            Some(false) => Some(not_ok("not_in_channel")),
            Some(true) => None,
        }
    }

    async fn deliver(&self, response: Response, stored: bool) -> Response {
        let hold = if stored { self.faults.lose_this_answer() } else { None };
        if let Some(delay) = hold.or(self.faults.slowness()) {
            tokio::time::sleep(delay).await;
        }
        response
    }
}

/// Message timestamps start at the current time (in microseconds, Slack's `ts` precision), so a history query's
/// `oldest` relative to now finds them.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn not_ok(error: &str) -> Response {
    Json(json!({ "ok": false, "error": error })).into_response()
}

#[derive(Debug, Deserialize)]
struct PostBody {
    channel: Option<String>,
    text: Option<String>,
    metadata: Option<Value>,
    unfurl_links: Option<bool>,
    unfurl_media: Option<bool>,
}

fn message_json(m: &StoredMessage, with_metadata: bool) -> Value {
    let mut v = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": m.text,
        "ts": m.ts,
        "bot_id": "B0123456789",
        "app_id": "A0123456789",
    });
    if let (true, Some(metadata)) = (with_metadata, &m.metadata) {
        v["metadata"] = metadata.clone();
    }
    v
}

/// Slack's metadata: `event_type` a string, `event_payload` an object.
fn valid_metadata(metadata: &Value) -> bool {
    metadata.get("event_type").is_some_and(Value::is_string)
        && metadata.get("event_payload").is_some_and(Value::is_object)
}

async fn post_message(State(fake): State<Arc<Slack>>, headers: HeaderMap, Json(body): Json<PostBody>) -> Response {
    fake.count("chat.postMessage");
    if let Some(refusal) = fake.common_refusal().or_else(|| fake.auth_error(&headers)) {
        return fake.deliver(refusal, false).await;
    }
    let channel = body.channel.clone().unwrap_or_default();
    let text = body.text.clone().unwrap_or_default();
    let refusal = fake.channel_error(&channel).or_else(|| {
        if text.is_empty() {
            Some(not_ok("no_text"))
        } else if text.chars().count() > MAX_TEXT_CHARS {
            Some(not_ok("msg_too_long"))
        } else if body.metadata.as_ref().is_some_and(|m| !valid_metadata(m)) {
            Some(not_ok("invalid_metadata_format"))
        } else {
            None
        }
    });
    if let Some(refusal) = refusal {
        return fake.deliver(refusal, false).await;
    }
    let micros = fake.next_ts.fetch_add(100, Ordering::SeqCst);
    let message = StoredMessage {
        channel: channel.clone(),
        ts: format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000),
        text,
        metadata: body.metadata.clone(),
        unfurl_links: body.unfurl_links,
        unfurl_media: body.unfurl_media,
    };
    lock(&fake.messages).push(message.clone());
    let answer = Json(json!({
        "ok": true,
        "channel": channel,
        "ts": message.ts,
        "message": message_json(&message, true),
    }));
    fake.deliver(answer.into_response(), true).await
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    channel: Option<String>,
    limit: Option<usize>,
    oldest: Option<String>,
    include_all_metadata: Option<String>,
}

async fn history(State(fake): State<Arc<Slack>>, headers: HeaderMap, Query(query): Query<HistoryQuery>) -> Response {
    fake.count("conversations.history");
    if let Some(refusal) = fake.common_refusal().or_else(|| fake.auth_error(&headers)) {
        return fake.deliver(refusal, false).await;
    }
    let channel = query.channel.unwrap_or_default();
    if let Some(refusal) = fake.channel_error(&channel) {
        return fake.deliver(refusal, false).await;
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 999);
    let oldest: f64 = query.oldest.as_deref().and_then(|o| o.parse().ok()).unwrap_or(0.0);
    let with_metadata = matches!(query.include_all_metadata.as_deref(), Some("true" | "1"));
    let (page, has_more) = {
        let messages = lock(&fake.messages);
        let newer: Vec<&StoredMessage> = messages
            .iter()
            .rev()
            .filter(|m| m.channel == channel && m.ts.parse::<f64>().unwrap_or(0.0) > oldest)
            .collect();
        let page: Vec<Value> = newer
            .iter()
            .take(limit)
            .map(|m| message_json(m, with_metadata))
            .collect();
        (page, newer.len() > limit)
    };
    let answer = Json(json!({
        "ok": true,
        "messages": page,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": { "next_cursor": "" },
    }));
    fake.deliver(answer.into_response(), false).await
}
