//! The fake's HTTP surface: Rocket.Chat's routes, status codes, bodies and headers, as read from its source.
//!
//! A middleware plays the server's outer layers (failure modes, authentication, then rate limiting, in the real
//! server's order) and records every request; the handlers play the endpoints. Each handler validates, checks and
//! stores under one lock and never holds it across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{Record, State};
use crate::text::{exceeds_max_size, iso_timestamp, mentions, mentions_everyone};
use crate::{Mode, StoredMessage, USER_ID, lock};

type Shared = Arc<Mutex<State>>;

/// The bot's username, as the server echoes it in `message.u`.
const USERNAME: &str = "qrelay-bot";

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/info", get(info))
        .route("/api/v1/rooms.info", get(rooms_info))
        .route("/api/v1/chat.sendMessage", post(send_message))
        .route("/api/v1/chat.getMessage", get(get_message))
        // The token may contain `/`, so it is the rest of the path.
        .route("/hooks/{integration_id}/{*token}", post(incoming_webhook))
        .fallback(not_found)
        // Added last so that it also wraps the fallback and 405s: every request is recorded.
        .layer(middleware::from_fn_with_state(Arc::clone(&state), outer_layers))
        .with_state(state)
}

/// Records the request, answers for the failure mode, authentication and rate limit, and delays the answer in
/// [`Mode::Slow`] after the endpoint has done its work.
async fn outer_layers(Extract(state): Extract<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let (seq, mode, refusal) = {
        let mut state = lock(&state);
        let seq = state.record_arrival(request.method().as_str(), &path);
        (seq, state.mode.clone(), refusal(&state, &path, request.headers()))
    };
    let response = match refusal {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    lock(&state).record_status(seq, response.status().as_u16());
    if let Mode::Slow(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The answer the server gives before reaching the endpoint, if any.
fn refusal(state: &State, path: &str, headers: &HeaderMap) -> Option<Response> {
    if state.mode == Mode::Failing && (path.starts_with("/api/") || path.starts_with("/hooks/")) {
        let error = "Internal server error";
        return Some(failure(StatusCode::INTERNAL_SERVER_ERROR, error, None));
    }
    // Rocket.Chat authenticates before it rate-limits, so a bad token gets 401 even while limited.
    if path.starts_with("/api/v1/") && !authenticated(state, headers) {
        let body = json!({"status": "error", "message": "You must be logged in to do this."});
        return Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    }
    let limited_path = path.starts_with("/api/v1/chat.") || path.starts_with("/hooks/");
    let reset = state.rate_limited_until.filter(|_| limited_path)?;
    let wait = reset
        .duration_since(SystemTime::now())
        .ok()
        .filter(|wait| !wait.is_zero())?;
    Some(too_many_requests(reset, wait))
}

fn authenticated(state: &State, headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-user-id") == Some(USER_ID) && header("x-auth-token") == Some(state.token.as_str())
}

/// Rocket.Chat's 429: the reset is absolute epoch milliseconds, and there is no `Retry-After`.
fn too_many_requests(reset: SystemTime, wait: Duration) -> Response {
    let seconds = wait.as_millis().div_ceil(1000);
    let error = format!(
        "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying this endpoint again. \
         [error-too-many-requests]"
    );
    let mut response = failure(StatusCode::TOO_MANY_REQUESTS, &error, None);
    let reset_ms = reset.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("10"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    let reset_ms = u64::try_from(reset_ms).unwrap_or(u64::MAX);
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset_ms));
    response
}

async fn info() -> Response {
    ok(json!({"version": "7.0.0", "success": true}))
}

async fn rooms_info(Extract(state): Extract<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let state = lock(&state);
    let room = match (query.get("roomId"), query.get("roomName")) {
        (Some(id), _) => state.room_by_id(id),
        (None, Some(name)) => state.room_by_name(name),
        (None, None) => {
            let error = r#"The parameter "roomId" or "roomName" is required [error-roomid-param-not-provided]"#;
            return bad_request(error, Some("error-roomid-param-not-provided"));
        }
    };
    match room {
        Some(room) => ok(json!({"room": {"_id": room.id, "name": room.name, "t": "c"}, "success": true})),
        None => bad_request(
            r#"The required "roomId" or "roomName" param provided does not match any channel [error-room-not-found]"#,
            Some("error-room-not-found"),
        ),
    }
}

#[derive(Deserialize)]
struct SendMessageBody {
    message: Option<OutgoingMessage>,
    #[serde(rename = "previewUrls")]
    preview_urls: Option<Vec<String>>,
}

/// The fields the fake reads; others (`attachments`, `tmid`, ...) are accepted and ignored.
#[derive(Deserialize)]
struct OutgoingMessage {
    #[serde(rename = "_id")]
    id: Option<String>,
    rid: Option<String>,
    msg: Option<String>,
    alias: Option<String>,
    emoji: Option<String>,
}

async fn send_message(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    let body: SendMessageBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return invalid_params(&format!("Invalid JSON body: {e}")),
    };
    let Some(message) = body.message else {
        return invalid_params("The \"message\" parameter must be provided.");
    };
    let Some(rid) = message.rid else {
        return invalid_params("Match error: Missing key 'rid'");
    };
    let msg = message.msg.unwrap_or_default();

    let mut state = lock(&state);
    let Some(room) = state.room_by_id(&rid) else {
        return bad_request("error-invalid-room", Some("error-invalid-room"));
    };
    let channel = room.name.clone();
    if exceeds_max_size(&msg) {
        return size_exceeded();
    }
    let mentions = mentions(&msg);
    // The bot has neither `mention-all` nor `mention-here`, so the whole message is refused.
    if mentions_everyone(&mentions) {
        return bad_request(
            "Not allowed [error-action-not-allowed]",
            Some("error-action-not-allowed"),
        );
    }
    // The real server's reply to a reused `_id` is this accident of its code, not a dedicated error; it stores
    // nothing and notifies nobody. Checked under the same lock as the insert, like Mongo's unique index.
    if message.id.as_deref().is_some_and(|id| state.message(id).is_some()) {
        return bad_request("Cannot read properties of undefined (reading 'starred')", None);
    }
    let id = message.id.unwrap_or_else(|| state.new_message_id());
    let record = state.store(StoredMessage {
        id,
        rid,
        channel,
        msg,
        alias: message.alias,
        emoji: message.emoji,
        preview_urls: body.preview_urls,
        mentions,
        via_webhook: false,
        parse_urls: None,
    });
    ok(json!({"message": message_json(record), "success": true}))
}

async fn get_message(Extract(state): Extract<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(id) = query.get("msgId") else {
        return bad_request("The \"msgId\" query parameter must be provided.", None);
    };
    match lock(&state).message(id) {
        Some(record) => ok(json!({"message": message_json(record), "success": true})),
        // The server answers a bare `API.v1.failure()` here: no error text to key on.
        None => (StatusCode::BAD_REQUEST, axum::Json(json!({"success": false}))).into_response(),
    }
}

#[derive(Deserialize)]
struct WebhookBody {
    text: Option<String>,
    alias: Option<String>,
    emoji: Option<String>,
    #[serde(rename = "parseUrls")]
    parse_urls: Option<bool>,
}

async fn incoming_webhook(
    Extract(state): Extract<Shared>,
    Path((integration_id, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    let Some(room) = state.webhook_room(&integration_id, &token) else {
        return failure(StatusCode::NOT_FOUND, "Invalid integration id or token provided.", None);
    };
    let (rid, channel) = (room.id.clone(), room.name.clone());
    let body: WebhookBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return bad_request(&format!("Invalid JSON body: {e}"), None),
    };
    let Some(msg) = body.text else {
        return bad_request("The \"text\" field is required.", None);
    };
    // Webhook posts go through the same `sendMessage` as the REST API, with the same size limit.
    if exceeds_max_size(&msg) {
        return size_exceeded();
    }
    let id = state.new_message_id();
    // A webhook posts as its integration's user, which may mention everyone: nothing is refused, only recorded.
    let mentions = mentions(&msg);
    let message = StoredMessage {
        id,
        rid,
        channel,
        msg,
        alias: body.alias,
        emoji: body.emoji,
        preview_urls: None,
        mentions,
        via_webhook: true,
        parse_urls: body.parse_urls,
    };
    state.store(message);
    ok(json!({"success": true}))
}

async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "Not found", None)
}

/// A message as the server returns it from `chat.sendMessage` and `chat.getMessage`.
fn message_json(record: &Record) -> Value {
    let m = &record.message;
    let ts = iso_timestamp(record.ts);
    let mut json = json!({
        "_id": m.id, "rid": m.rid, "msg": m.msg, "ts": ts, "_updatedAt": ts,
        "u": {"_id": USER_ID, "username": USERNAME},
    });
    for (key, value) in [("alias", &m.alias), ("emoji", &m.emoji)] {
        if let Some(value) = value {
            json[key] = json!(value);
        }
    }
    // As the server shows them: `reactions` only once someone reacted, the thread's fields only once it has one.
    if !record.reactions.is_empty() {
        let reactions: serde_json::Map<String, Value> = record
            .reactions
            .iter()
            .map(|(emoji, usernames)| (emoji.clone(), json!({ "usernames": usernames })))
            .collect();
        json["reactions"] = Value::Object(reactions);
    }
    if record.thread_count > 0 {
        json["tcount"] = json!(record.thread_count);
        json["replies"] = json!(record.replies);
        json["tlm"] = json!(ts);
    }
    json
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Rocket.Chat's error shape: `{"success":false,"error":...,"errorType"?:...}`.
fn failure(status: StatusCode, error: &str, error_type: Option<&str>) -> Response {
    let mut body = json!({"success": false, "error": error});
    if let Some(error_type) = error_type {
        body["errorType"] = json!(error_type);
    }
    (status, axum::Json(body)).into_response()
}

/// Rocket.Chat answers 400 for every problem with a request, including unknown rooms: never 403 or 404.
fn bad_request(error: &str, error_type: Option<&str>) -> Response {
    failure(StatusCode::BAD_REQUEST, error, error_type)
}

fn invalid_params(detail: &str) -> Response {
    bad_request(&format!("{detail} [invalid-params]"), Some("invalid-params"))
}

fn size_exceeded() -> Response {
    let error = "Message size exceeds Message_MaxAllowedSize [error-message-size-exceeded]";
    bad_request(error, Some("error-message-size-exceeded"))
}
