//! A fake of Discord's HTTP API, v10: the bot's "Create Message" and "Get Channel Messages", and an incoming
//! webhook's "Execute Webhook", answering as <https://discord.com/developers/docs> documents.
//!
//! - `POST /api/v10/channels/{channel.id}/messages` with `Authorization: Bot <token>`: 200 and the message object
//!   (with the `nonce` sent: the create answer echoes it). With `enforce_nonce: true`, a nonce the same author used
//!   in the last few minutes returns that earlier message, 200, and creates nothing (Discord's "Create Message":
//!   "If another message was created by the same author with the same nonce, that message will be returned and no
//!   new message will be created").
//! - `GET /api/v10/channels/{channel.id}/messages?limit=1..100` (default 50): the newest messages first, WITHOUT
//!   `nonce`: Discord does not store it with the message (discord.py issue #2451: it is only in the create answer and
//!   the gateway event).
//! - `POST /api/webhooks/{webhook.id}/{webhook.token}[?wait=true]`: 204 without `wait`, 200 and the message with it.
//! - Errors are Discord's JSON error objects `{"message", "code"}`: 401 `{"message": "401: Unauthorized", "code": 0}`,
//!   403 Missing Access (50001), 404 Unknown Channel (10003) / Unknown Webhook (10015), 401 Invalid Webhook Token
//!   (50027), 400 Invalid Form Body (50035, content over 2000 characters), 429 with `Retry-After` (seconds),
//!   `X-RateLimit-Reset-After` (seconds, float), `X-RateLimit-Scope` and a body with `retry_after` (float) and
//!   `global`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::lock;
use crate::{Faults, Running};

/// How long Discord remembers a nonce for `enforce_nonce` ("the past few minutes"); the fake uses five.
pub const NONCE_WINDOW: Duration = Duration::from_secs(300);

/// Discord's limit on `content`, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;

/// A message the fake stored, as a test inspects it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: String,
    pub channel_id: String,
    pub content: String,
    pub flags: u64,
    /// The nonce sent with it, if any (kept for tests; Discord's history does not return it).
    pub nonce: Option<String>,
    pub enforce_nonce: bool,
    pub allowed_mentions: Option<Value>,
    /// Through the webhook, not the bot.
    pub via_webhook: bool,
    /// Sent to the webhook with `?wait=true` (Discord answers only once it is stored).
    pub waited: bool,
}

/// The fake's state: shared with the handlers, inspected by tests.
#[derive(Debug)]
pub struct Discord {
    bot_token: Mutex<String>,
    /// Channel id → whether the bot may post there (false answers 403 Missing Access).
    channels: Mutex<HashMap<String, bool>>,
    webhook_id: String,
    webhook_token: String,
    messages: Mutex<Vec<(StoredMessage, Instant)>>,
    /// Answer 429 to the next requests while set: `retry_after` seconds.
    rate_limited: Mutex<Option<f64>>,
    next_id: AtomicU64,
    /// How long a nonce is enforced ([`NONCE_WINDOW`] unless a test shortens it, to act as if minutes had passed).
    nonce_window: Mutex<Duration>,
    /// Requests answered, by kind (`create`, `history`, `webhook`).
    calls: Mutex<HashMap<&'static str, usize>>,
    pub faults: Faults,
}

impl Discord {
    /// A fake with the bot token `bot_token`, the channels `channels` the bot may post in, and one webhook
    /// (see [`Self::webhook_path`]).
    pub fn new(bot_token: &str, channels: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            bot_token: Mutex::new(bot_token.to_owned()),
            channels: Mutex::new(channels.iter().map(|c| ((*c).to_owned(), true)).collect()),
            webhook_id: "1100000000000000001".into(),
            webhook_token: "webhook-token-Secret-123".into(),
            messages: Mutex::new(Vec::new()),
            rate_limited: Mutex::new(None),
            next_id: AtomicU64::new(1_200_000_000_000_000_000),
            nonce_window: Mutex::new(NONCE_WINDOW),
            calls: Mutex::new(HashMap::new()),
            faults: Faults::default(),
        })
    }

    /// Serves the fake on loopback.
    pub async fn serve(self: &Arc<Self>) -> Running {
        Running::serve(self.router()).await
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create).get(history))
            .route("/api/webhooks/{id}/{token}", post(execute_webhook))
            .with_state(self.clone())
    }

    /// The webhook's path, `/api/webhooks/{id}/{token}`, to append to the fake's URL.
    pub fn webhook_path(&self) -> String {
        format!("/api/webhooks/{}/{}", self.webhook_id, self.webhook_token)
    }

    /// The webhook's token, which must never appear in an error or a log.
    pub fn webhook_token(&self) -> &str {
        &self.webhook_token
    }

    /// A channel the bot can see but may not post in (403, code 50001).
    pub fn add_forbidden_channel(&self, channel: &str) {
        lock(&self.channels).insert(channel.to_owned(), false);
    }

    /// Rotates the bot token: the old one answers 401 from now on.
    pub fn set_bot_token(&self, token: &str) {
        *lock(&self.bot_token) = token.to_owned();
    }

    /// Enforces nonces for `window` instead of [`NONCE_WINDOW`]; zero acts as if every earlier post were minutes old.
    pub fn nonce_window(&self, window: Duration) {
        *lock(&self.nonce_window) = window;
    }

    /// Answers 429 with `retry_after` seconds while set.
    pub fn rate_limit(&self, retry_after: Option<f64>) {
        *lock(&self.rate_limited) = retry_after;
    }

    /// The messages stored, oldest first.
    pub fn messages(&self) -> Vec<StoredMessage> {
        lock(&self.messages).iter().map(|(m, _)| m.clone()).collect()
    }

    /// How many requests of `kind` (`create`, `history`, `webhook`) were answered.
    pub fn calls(&self, kind: &'static str) -> usize {
        lock(&self.calls).get(kind).copied().unwrap_or(0)
    }

    fn count(&self, kind: &'static str) {
        *lock(&self.calls).entry(kind).or_default() += 1;
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = format!("Bot {}", lock(&self.bot_token));
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
    }

    /// The answer every request gets before its own checks: a forced failure, or the rate limit.
    fn common_refusal(&self) -> Option<Response> {
        if let Some(status) = self.faults.failing() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(if status == StatusCode::UNAUTHORIZED {
                unauthorized()
            } else {
                error(status, 0, status.canonical_reason().unwrap_or("error"))
            });
        }
        lock(&self.rate_limited).map(rate_limited)
    }

    fn store(&self, channel_id: &str, body: &CreateBody, via_webhook: bool, waited: bool) -> StoredMessage {
        let message = StoredMessage {
            id: self.next_id.fetch_add(1, Ordering::SeqCst).to_string(),
            channel_id: channel_id.to_owned(),
            content: body.content.clone().unwrap_or_default(),
            flags: body.flags.unwrap_or(0),
            nonce: body.nonce.as_ref().map(nonce_text),
            enforce_nonce: body.enforce_nonce.unwrap_or(false),
            allowed_mentions: body.allowed_mentions.clone(),
            via_webhook,
            waited,
        };
        lock(&self.messages).push((message.clone(), Instant::now()));
        message
    }

    /// The answer after storing: held back past the client's timeout when the test loses it, or when slow.
    async fn deliver(&self, response: Response, stored: bool) -> Response {
        let hold = if stored { self.faults.lose_this_answer() } else { None };
        if let Some(delay) = hold.or(self.faults.slowness()) {
            tokio::time::sleep(delay).await;
        }
        response
    }
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    content: Option<String>,
    nonce: Option<Value>,
    enforce_nonce: Option<bool>,
    flags: Option<u64>,
    allowed_mentions: Option<Value>,
}

fn nonce_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message object as the API returns it (the fields qrelay and the tests read).
fn message_json(m: &StoredMessage, with_nonce: bool) -> Value {
    let mut v = json!({
        "id": m.id,
        "type": 0,
        "channel_id": m.channel_id,
        "content": m.content,
        "flags": m.flags,
        "author": { "id": "1000000000000000001", "username": "qrelay", "bot": true },
        "mentions": [],
        "mention_everyone": false,
        "embeds": [],
        "attachments": [],
        "pinned": false,
        "tts": false,
        "timestamp": "2026-11-22T09:30:00.000000+00:00",
    });
    if let (true, Some(nonce)) = (with_nonce, &m.nonce) {
        v["nonce"] = json!(nonce);
    }
    v
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
}

fn rate_limited(retry_after: f64) -> Response {
    let mut headers = HeaderMap::new();
    let secs = format!("{retry_after:.3}");
    headers.insert("x-ratelimit-reset-after", secs.parse().expect("header value"));
    headers.insert(
        "retry-after",
        (retry_after.ceil() as u64).to_string().parse().expect("header value"),
    );
    headers.insert("x-ratelimit-scope", "user".parse().expect("header value"));
    headers.insert("x-ratelimit-remaining", "0".parse().expect("header value"));
    (
        StatusCode::TOO_MANY_REQUESTS,
        headers,
        Json(json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false })),
    )
        .into_response()
}

/// Checks the body as Discord's "Create Message" / "Execute Webhook" would; `None` if it is valid.
fn invalid_body(body: &CreateBody) -> Option<Response> {
    let content = body.content.as_deref().unwrap_or("");
    if content.is_empty() {
        return Some(error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message"));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Some(
            (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": { "content": { "_errors": [
                        { "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length." }
                    ] } }
                })),
            )
                .into_response(),
        );
    }
    if body.nonce.as_ref().is_some_and(|n| nonce_text(n).chars().count() > 25) {
        return Some(error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"));
    }
    None
}

async fn create(
    State(fake): State<Arc<Discord>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Response {
    fake.count("create");
    if let Some(refusal) = fake.common_refusal() {
        return fake.deliver(refusal, false).await;
    }
    if !fake.authorized(&headers) {
        return fake.deliver(unauthorized(), false).await;
    }
    let access = lock(&fake.channels).get(&channel).copied();
    let refusal = match access {
        None => Some(error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")),
        Some(false) => Some(error(StatusCode::FORBIDDEN, 50001, "Missing Access")),
        Some(true) => invalid_body(&body),
    };
    if let Some(refusal) = refusal {
        return fake.deliver(refusal, false).await;
    }
    if let (Some(nonce), Some(true)) = (body.nonce.as_ref().map(nonce_text), body.enforce_nonce) {
        let window = *lock(&fake.nonce_window);
        let earlier = lock(&fake.messages)
            .iter()
            .find(|(m, at)| !m.via_webhook && m.nonce.as_deref() == Some(&nonce) && at.elapsed() < window)
            .map(|(m, _)| m.clone());
        if let Some(earlier) = earlier {
            return fake
                .deliver(Json(message_json(&earlier, true)).into_response(), false)
                .await;
        }
    }
    let stored = fake.store(&channel, &body, false, false);
    fake.deliver(Json(message_json(&stored, true)).into_response(), true)
        .await
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history(
    State(fake): State<Arc<Discord>>,
    Path(channel): Path<String>,
    Query(query): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    fake.count("history");
    if let Some(refusal) = fake.common_refusal() {
        return fake.deliver(refusal, false).await;
    }
    if !fake.authorized(&headers) {
        return fake.deliver(unauthorized(), false).await;
    }
    match lock(&fake.channels).get(&channel).copied() {
        None => return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        Some(false) => return error(StatusCode::FORBIDDEN, 50001, "Missing Access"),
        Some(true) => {}
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    }
    let page: Vec<Value> = lock(&fake.messages)
        .iter()
        .rev()
        .filter(|(m, _)| m.channel_id == channel)
        .take(limit)
        .map(|(m, _)| message_json(m, false))
        .collect();
    fake.deliver(Json(page).into_response(), false).await
}

#[derive(Debug, Deserialize)]
struct WebhookQuery {
    wait: Option<bool>,
}

async fn execute_webhook(
    State(fake): State<Arc<Discord>>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<WebhookQuery>,
    Json(body): Json<CreateBody>,
) -> Response {
    fake.count("webhook");
    if let Some(refusal) = fake.common_refusal() {
        return fake.deliver(refusal, false).await;
    }
    if id != fake.webhook_id {
        return fake
            .deliver(error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"), false)
            .await;
    }
    if token != fake.webhook_token {
        return fake
            .deliver(error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token"), false)
            .await;
    }
    if let Some(refusal) = invalid_body(&body) {
        return fake.deliver(refusal, false).await;
    }
    let channel = "1300000000000000001";
    let stored = fake.store(channel, &body, true, query.wait == Some(true));
    let answer = if query.wait == Some(true) {
        Json(message_json(&stored, false)).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    fake.deliver(answer, true).await
}
