//! A fake of a Microsoft Teams "Workflows" webhook: a Power Automate flow started by the trigger "When a Teams
//! webhook request is received", whose URL is
//! `…/workflows/{id}/triggers/manual/paths/invoke?api-version=…&sp=…&sv=1.0&sig=…` (the `sig` is its secret).
//!
//! As the real one: the trigger answers **202 Accepted** with an empty body as soon as the request is queued, and the
//! flow posts the card later, so a 202 says nothing about delivery (clients such as keel and lightdash had to
//! learn to take 202 as success; a flow can still fail with "The specified Teams flowbot adaptive card request is
//! missing or invalid" out of the sender's sight). Errors are Logic Apps' JSON `{"error": {"code", "message"}}`:
//! 400 `TriggerInputSchemaMismatch`, 401 `DirectApiInvalidAuthorizationSignature` (wrong `sig`), 404
//! `WorkflowNotFound`, 429 with `Retry-After` (seconds), 5xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::server::lock;
use crate::{Faults, Running};

/// The fake's state.
#[derive(Debug)]
pub struct Teams {
    workflow_id: String,
    sig: String,
    /// Cards the flow posted to the channel (the `content` of each adaptive-card attachment).
    posted: Mutex<Vec<Value>>,
    /// Requests accepted with 202 (whether or not the flow then posted them).
    accepted: Mutex<usize>,
    /// The flow fails after answering 202 (as when Teams refuses the card).
    fail_in_flow: Mutex<bool>,
    /// Answer 429 with this `Retry-After` (seconds) while set.
    rate_limited: Mutex<Option<u64>>,
    pub faults: Faults,
}

impl Teams {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            workflow_id: "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5".into(),
            sig: "SIG-secret-signature-0123456789abcdef".into(),
            posted: Mutex::new(Vec::new()),
            accepted: Mutex::new(0),
            fail_in_flow: Mutex::new(false),
            rate_limited: Mutex::new(None),
            faults: Faults::default(),
        })
    }

    pub async fn serve(self: &Arc<Self>) -> Running {
        Running::serve(self.router()).await
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/workflows/{id}/triggers/manual/paths/invoke", post(invoke))
            .with_state(self.clone())
    }

    /// The workflow URL's path and query, to append to the fake's URL.
    pub fn webhook_path(&self) -> String {
        format!(
            "/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            self.workflow_id, self.sig
        )
    }

    /// The signature, which must never appear in an error or a log.
    pub fn sig(&self) -> &str {
        &self.sig
    }

    /// The cards the flow posted.
    pub fn posted(&self) -> Vec<Value> {
        lock(&self.posted).clone()
    }

    pub fn accepted(&self) -> usize {
        *lock(&self.accepted)
    }

    pub fn fail_in_flow(&self, fail: bool) {
        *lock(&self.fail_in_flow) = fail;
    }

    pub fn rate_limit(&self, retry_after: Option<u64>) {
        *lock(&self.rate_limited) = retry_after;
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// The adaptive cards in a Workflows body: `{"type": "message", "attachments": [{"contentType":
/// "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", ...}}]}`.
fn cards(body: &Value) -> Option<Vec<Value>> {
    if body["type"] != "message" {
        return None;
    }
    let attachments = body["attachments"].as_array()?;
    let cards: Vec<Value> = attachments
        .iter()
        .filter(|a| a["contentType"] == "application/vnd.microsoft.card.adaptive")
        .map(|a| a["content"].clone())
        .filter(|c| c["type"] == "AdaptiveCard")
        .collect();
    (!cards.is_empty()).then_some(cards)
}

async fn invoke(
    State(fake): State<Arc<Teams>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    _headers: HeaderMap,
    body: String,
) -> Response {
    let answer = answer(&fake, &id, &query, &body);
    let stored = answer.status() == StatusCode::ACCEPTED && !*lock(&fake.fail_in_flow);
    if stored {
        if let Some(cards) = serde_json::from_str::<Value>(&body).ok().as_ref().and_then(cards) {
            lock(&fake.posted).extend(cards);
        }
    }
    let hold = if stored { fake.faults.lose_this_answer() } else { None };
    if let Some(delay) = hold.or(fake.faults.slowness()) {
        tokio::time::sleep(delay).await;
    }
    answer
}

fn answer(fake: &Teams, id: &str, query: &HashMap<String, String>, body: &str) -> Response {
    if let Some(status) = fake.faults.failing() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "ServiceError", status.canonical_reason().unwrap_or("error"));
    }
    if let Some(secs) = *lock(&fake.rate_limited) {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "WorkflowRequestsThrottled",
            "The request was throttled.",
        );
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("header value"));
        return response;
    }
    if id != fake.workflow_id {
        return error(
            StatusCode::NOT_FOUND,
            "WorkflowNotFound",
            "The workflow could not be found.",
        );
    }
    if query.get("sig") != Some(&fake.sig) {
        return error(
            StatusCode::UNAUTHORIZED,
            "DirectApiInvalidAuthorizationSignature",
            "The provided authorization signature is not valid.",
        );
    }
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content is not valid JSON.",
        );
    };
    if !value.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "TriggerInputSchemaMismatch",
            "The input body for trigger 'manual' of type 'Request' did not match its schema definition.",
        );
    }
    // The trigger takes any object: a body without a valid card is accepted too, and the flow's "Post card" action
    // fails later, out of the sender's sight (`invoke` stores no card then).
    *lock(&fake.accepted) += 1;
    StatusCode::ACCEPTED.into_response()
}
