//! A fake of the Google Chat API for a Chat app, and of Google's OAuth token endpoint, answering as
//! <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create>,
//! <https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/get> and
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest> document.
//!
//! - `POST /token` (form: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=<JWT>`): checks the
//!   assertion's RS256 signature with the test key's public half, its `iss`, `aud` (this endpoint) and `scope`
//!   (`chat.bot`), and that it has not expired; answers `{"access_token", "expires_in": 3600, "token_type":
//!   "Bearer"}`, or `400 {"error": "invalid_grant"}`.
//! - `POST /v1/spaces/{space}/messages?messageId=client-…&requestId=…` with `Authorization: Bearer <access token>`:
//!   stores `{"text"}` under `spaces/{space}/messages/client-…` and answers the message; the same `messageId` again
//!   answers `409 ALREADY_EXISTS` (the same `requestId` again answers the stored message, as Google documents);
//!   `401 UNAUTHENTICATED` for a missing or expired token, `403 PERMISSION_DENIED` in a space the app is not in,
//!   `404 NOT_FOUND` for an unknown space, `400 INVALID_ARGUMENT` for a text over 32,000 bytes or a `messageId`
//!   not of the form `client-[a-z0-9-]{1,56}`, `429 RESOURCE_EXHAUSTED` while rate limited.
//! - `GET /v1/spaces/{space}/messages/client-…`: the message, or `404 NOT_FOUND`.
//!
//! Errors have Google's shape: `{"error": {"code", "message", "status"}}`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::lock;
use crate::{Faults, Running};

/// The test service account's private key (PKCS#8 PEM), for the secret the tests give the adapter.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("../testdata/google-service-account-key.pem");
/// Its public half, with which the fake checks assertions.
const TEST_PUBLIC_KEY_DER: &[u8] = include_bytes!("../testdata/google-service-account-public.der");
/// The service account's e-mail in the tests' secret.
pub const TEST_CLIENT_EMAIL: &str = "qrelay@qrelay-test.iam.gserviceaccount.com";
/// The scope a Chat app asks for.
pub const CHAT_BOT_SCOPE: &str = "https://www.googleapis.com/auth/chat.bot";
/// Google Chat's limit on a message's text, in bytes.
pub const MAX_TEXT_BYTES: usize = 32_000;

/// A message the fake stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// `spaces/{space}/messages/client-…`
    pub name: String,
    pub space: String,
    pub text: String,
    pub request_id: Option<String>,
}

/// The fake's state, shared with the handlers and inspected by tests.
#[derive(Debug)]
pub struct GoogleChat {
    url: Mutex<String>,
    /// Spaces the app is a member of (`spaces/AAA…`); another known space answers 403.
    spaces: Mutex<HashMap<String, bool>>,
    tokens: Mutex<HashSet<String>>,
    next_token: AtomicU64,
    messages: Mutex<Vec<StoredMessage>>,
    rate_limited: Mutex<bool>,
    calls: Mutex<HashMap<&'static str, usize>>,
    pub faults: Faults,
}

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeGoogleChat {
    pub state: Arc<GoogleChat>,
    running: Running,
}

impl FakeGoogleChat {
    pub async fn start() -> Self {
        let state = Arc::new(GoogleChat {
            url: Mutex::new(String::new()),
            spaces: Mutex::default(),
            tokens: Mutex::default(),
            next_token: AtomicU64::new(1),
            messages: Mutex::default(),
            rate_limited: Mutex::new(false),
            calls: Mutex::default(),
            faults: Faults::default(),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/spaces/{space}/messages", post(create))
            .route("/v1/spaces/{space}/messages/{id}", axum::routing::get(get_message))
            .with_state(state.clone());
        let running = Running::serve(app).await;
        *lock(&state.url) = running.url.clone();
        Self { state, running }
    }

    /// The API's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.running.url.clone()
    }

    /// The token endpoint (the service account key's `token_uri`).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.running.url)
    }

    /// A space the app is a member of (`member`) or one it was not added to; returns `spaces/<id>`.
    pub fn add_space(&self, id: &str, member: bool) -> String {
        lock(&self.state.spaces).insert(format!("spaces/{id}"), member);
        format!("spaces/{id}")
    }

    /// The secret a test gives the adapter: `{"service_account": {...}}` with the test key and this token URI.
    pub fn secret_json(&self) -> Value {
        json!({ "service_account": {
            "type": "service_account",
            "client_email": TEST_CLIENT_EMAIL,
            "private_key": TEST_PRIVATE_KEY_PEM,
            "token_uri": self.token_uri(),
        }})
    }

    /// Every access token issued so far stops working (as after an hour), so the next call gets 401.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Answer `429 RESOURCE_EXHAUSTED` while set.
    pub fn rate_limit(&self, on: bool) {
        *lock(&self.state.rate_limited) = on;
    }

    pub fn messages(&self) -> Vec<StoredMessage> {
        lock(&self.state.messages).clone()
    }

    pub fn messages_in(&self, space: &str) -> Vec<StoredMessage> {
        self.messages().into_iter().filter(|m| m.space == space).collect()
    }

    /// How many times each endpoint was called (`token`, `create`, `get`).
    pub fn calls(&self, endpoint: &str) -> usize {
        lock(&self.state.calls).get(endpoint).copied().unwrap_or(0)
    }
}

fn count(state: &GoogleChat, endpoint: &'static str) {
    *lock(&state.calls).entry(endpoint).or_default() += 1;
}

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": status.as_u16(), "message": message, "status": reason } })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    assertion: String,
}

async fn token(State(state): State<Arc<GoogleChat>>, body: String) -> Response {
    count(&state, "token");
    let Ok(form) = serde_urlencoded::from_str::<TokenRequest>(&body) else {
        return invalid_grant("the body is not grant_type and assertion");
    };
    if form.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    let parts: Vec<&str> = form.assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return invalid_grant("the assertion is not a JWT");
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Ok(header_json), Ok(claims_json), Ok(signature)) =
        (b64.decode(header), b64.decode(claims), b64.decode(signature))
    else {
        return invalid_grant("the assertion is not base64url");
    };
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, TEST_PUBLIC_KEY_DER);
    let signed = format!("{header}.{claims}");
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return invalid_grant("Invalid JWT Signature.");
    }
    let header: Value = serde_json::from_slice(&header_json).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&claims_json).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let audience = format!("{}/token", lock(&state.url));
    let valid = header["alg"] == "RS256"
        && claims["iss"] == TEST_CLIENT_EMAIL
        && claims["aud"] == audience.as_str()
        && claims["scope"] == CHAT_BOT_SCOPE
        && claims["iat"].as_u64().is_some_and(|iat| iat <= now + 60)
        && claims["exp"]
            .as_u64()
            .is_some_and(|exp| exp > now && exp <= now + 3600 + 60);
    if !valid {
        return invalid_grant("Invalid JWT: iss, aud, scope, iat or exp");
    }
    let token = format!("ya29.fake-{}", state.next_token.fetch_add(1, Ordering::SeqCst));
    lock(&state.tokens).insert(token.clone());
    Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" })).into_response()
}

fn invalid_grant(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "invalid_grant", "error_description": description })),
    )
        .into_response()
}

/// The common checks of the Chat API calls: faults, the bearer token, the space.
fn admit(state: &GoogleChat, headers: &HeaderMap, space: &str) -> Result<String, Box<Response>> {
    if let Some(status) = state.faults.failing() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(Box::new(google_error(
            status,
            "UNAVAILABLE",
            "the fake is failing on purpose",
        )));
    }
    if *lock(&state.rate_limited) {
        return Err(Box::new(google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Write requests'",
        )));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !lock(&state.tokens).contains(token) {
        return Err(Box::new(google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        )));
    }
    let space = format!("spaces/{space}");
    match lock(&state.spaces).get(&space) {
        Some(true) => Ok(space),
        Some(false) => Err(Box::new(google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        ))),
        None => Err(Box::new(google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Requested entity was not found.",
        ))),
    }
}

async fn held(state: &GoogleChat) {
    if let Some(delay) = state.faults.slowness() {
        tokio::time::sleep(delay).await;
    }
}

fn message_json(message: &StoredMessage) -> Value {
    json!({ "name": message.name, "text": message.text, "space": { "name": message.space } })
}

async fn create(
    State(state): State<Arc<GoogleChat>>,
    Path(space): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    count(&state, "create");
    let space = match admit(&state, &headers, &space) {
        Ok(space) => space,
        Err(response) => return *response,
    };
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    if text.is_empty() || text.len() > MAX_TEXT_BYTES {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Message text is empty or too long.",
        );
    }
    let request_id = query.get("requestId").cloned();
    let message_id = query.get("messageId").cloned().unwrap_or_default();
    let well_formed = message_id.strip_prefix("client-").is_some_and(|rest| {
        (1..=56).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !message_id.is_empty() && !well_formed {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid custom message id.",
        );
    }
    let name = if message_id.is_empty() {
        format!("{space}/messages/{}", state.next_token.fetch_add(1, Ordering::SeqCst))
    } else {
        format!("{space}/messages/{message_id}")
    };
    let (stored, existing) = {
        let mut messages = lock(&state.messages);
        match messages.iter().find(|m| m.name == name).cloned() {
            Some(existing) => (existing.clone(), Some(existing)),
            None => {
                let message = StoredMessage {
                    name,
                    space,
                    text,
                    request_id: request_id.clone(),
                };
                messages.push(message.clone());
                (message, None)
            }
        }
    };
    let answer = match existing {
        // The same request again: the same message, as the API documents for requestId.
        Some(existing) if request_id.is_some() && existing.request_id == request_id => {
            Json(message_json(&stored)).into_response()
        }
        Some(_) => google_error(StatusCode::CONFLICT, "ALREADY_EXISTS", "Message already exists."),
        None => Json(message_json(&stored)).into_response(),
    };
    held(&state).await;
    if let Some(delay) = state.faults.lose_this_answer() {
        tokio::time::sleep(delay).await;
    }
    answer
}

async fn get_message(
    State(state): State<Arc<GoogleChat>>,
    Path((space, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    count(&state, "get");
    let space = match admit(&state, &headers, &space) {
        Ok(space) => space,
        Err(response) => return *response,
    };
    held(&state).await;
    let name = format!("{space}/messages/{id}");
    match lock(&state.messages).iter().find(|m| m.name == name) {
        Some(message) => Json(message_json(message)).into_response(),
        None => google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Message not found."),
    }
}
