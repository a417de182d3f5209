//! Rocket.Chat's REST API as a [`ChatPoster`] that never posts a question twice.
//!
//! Each question is sent with `chat.sendMessage` and a message `_id` derived from the question id
//! (`qrelay-<uuid>`), which Rocket.Chat stores as the message's primary key: a second delivery of the same
//! question can't create a second message. Because Rocket.Chat answers a duplicate `_id` with an odd HTTP 400
//! rather than a clear "already exists", every ambiguous outcome (timeout, 5xx, unexplained 400) is settled by
//! asking `chat.getMessage` whether the message is there.
//!
//! A request that fails at once on a connection the server had already closed (a keep-alive connection it timed
//! out while this Lambda was frozen) is sent again at once, once: the `_id` makes that safe for a post too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::secret::{ChatSecret, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Guarantee, STALE_RETRY_WINDOW, Signals, rate_limit_reset};
use crate::domain::QuestionId;

/// Posts through Rocket.Chat's REST API as a bot user with a personal access token.
pub struct RocketChat {
    http: reqwest::Client,
    base_url: String,
    secrets: Arc<dyn SecretSource>,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
    /// Channel name → room id, resolved once per execution environment.
    room_ids: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for RocketChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocketChat")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user_id: String,
    token: String,
}

/// The body of a Rocket.Chat error answer; only `errorType` is reliable across versions.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<serde_json::Value>,
}

/// The message id qrelay gives a question in Rocket.Chat.
pub fn message_id(id: QuestionId) -> String {
    format!("qrelay-{id}")
}

impl RocketChat {
    /// `base_url` is the server's address, e.g. `https://chat.example.com`. The secret is read on first use.
    pub fn new(http: reqwest::Client, base_url: &str, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secrets,
            credentials: tokio::sync::Mutex::new(None),
            room_ids: Mutex::new(HashMap::new()),
        }
    }

    /// The current credentials, reading the secret on first use, or again when `refresh` is set (after a 401:
    /// the token may have been rotated). Returns whether they changed.
    async fn credentials(&self, refresh: bool) -> Result<(Credentials, bool), ChatError> {
        let mut current = self.credentials.lock().await;
        if let (Some(c), false) = (current.as_ref(), refresh) {
            return Ok((c.clone(), false));
        }
        let secret = self
            .secrets
            .fetch()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{e:#}")))?;
        let ChatSecret::RocketChat { user_id, token } = secret else {
            return Err(ChatError::Misconfigured(
                "the chat secret holds a webhook URL, not a user_id and token".into(),
            ));
        };
        let fresh = Credentials { user_id, token };
        let changed = current.as_ref() != Some(&fresh);
        *current = Some(fresh.clone());
        Ok((fresh, changed))
    }

    fn get(&self, creds: &Credentials, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base_url))
            .header("X-User-Id", &creds.user_id)
            .header("X-Auth-Token", &creds.token)
    }

    async fn room_id(&self, creds: &Credentials, channel: &str) -> Result<String, ChatError> {
        if let Some(rid) = self.room_ids.lock().expect("room cache lock").get(channel) {
            return Ok(rid.clone());
        }
        #[derive(Deserialize)]
        struct RoomInfo {
            room: Room,
        }
        #[derive(Deserialize)]
        struct Room {
            #[serde(rename = "_id")]
            id: String,
        }
        let response = send(self.get(creds, "/api/v1/rooms.info").query(&[("roomName", channel)]))
            .await
            .map_err(|e| unavailable("rooms.info", &e))?;
        match response.status() {
            StatusCode::OK => {
                let info: RoomInfo = response.json().await.map_err(|e| unavailable("rooms.info", &e))?;
                self.room_ids
                    .lock()
                    .expect("room cache lock")
                    .insert(channel.to_owned(), info.room.id.clone());
                Ok(info.room.id)
            }
            status => Err(match classify(status, &response) {
                Some(e) => e,
                None => ChatError::Misconfigured(format!("channel {channel:?} was not found (HTTP {status})")),
            }),
        }
    }

    async fn post_once(
        &self,
        creds: &Credentials,
        msg_id: &str,
        channel: &str,
        message: &ChatMessage,
    ) -> Result<Delivery, ChatError> {
        let rid = self.room_id(creds, channel).await?;
        let body = json!({ "message": { "_id": msg_id, "rid": rid, "msg": message.as_ref() }, "previewUrls": [] });
        let sent = send(
            self.http
                .post(format!("{}/api/v1/chat.sendMessage", self.base_url))
                .header("X-User-Id", &creds.user_id)
                .header("X-Auth-Token", &creds.token)
                .json(&body),
        )
        .await;
        let response = match sent {
            Ok(response) => response,
            // The message may or may not have been stored before the connection failed or timed out.
            Err(e) => return self.settle(creds, msg_id, unavailable("chat.sendMessage", &e)).await,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Delivery::Posted);
        }
        if let Some(e) = classify(status, &response) {
            return match e {
                ChatError::Unavailable(_) => self.settle(creds, msg_id, e).await,
                e => Err(e),
            };
        }
        let error: ErrorBody = response.json().await.unwrap_or_default();
        match error.error_type.as_deref() {
            Some("error-invalid-room") => {
                // The room was deleted or recreated: forget its id so the next attempt resolves it again.
                self.room_ids.lock().expect("room cache lock").remove(channel);
                Err(ChatError::Misconfigured(format!("room {channel:?} no longer exists")))
            }
            Some("error-not-allowed") => Err(ChatError::Misconfigured(format!("the bot may not post in {channel:?}"))),
            Some(kind @ ("error-message-size-exceeded" | "error-action-not-allowed")) => {
                Err(ChatError::Rejected(kind.to_owned()))
            }
            // Rocket.Chat's answer to a duplicate `_id` is a 400 with a JavaScript or Mongo error text.
            _ => {
                let detail = error.error.map(|e| e.to_string()).unwrap_or_default();
                self.settle(
                    creds,
                    msg_id,
                    ChatError::Unavailable(format!("unexplained HTTP 400 {detail}")),
                )
                .await
            }
        }
    }

    /// `chat.getMessage`: 200 means the message is there, 400 that it is not (the documented answer for an
    /// unknown id); anything else says nothing.
    async fn find(&self, creds: &Credentials, msg_id: &str) -> Result<bool, ChatError> {
        let response = send(self.get(creds, "/api/v1/chat.getMessage").query(&[("msgId", msg_id)]))
            .await
            .map_err(|e| unavailable("chat.getMessage", &e))?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(true);
        }
        if let Some(e) = classify(status, &response) {
            return Err(e);
        }
        match status {
            StatusCode::BAD_REQUEST => Ok(false),
            other => Err(ChatError::Unavailable(format!("chat.getMessage answered HTTP {other}"))),
        }
    }

    /// `chat.getMessage`, read for the message's reactions and thread: `None` when the message is not there.
    async fn read_signals(&self, creds: &Credentials, msg_id: &str) -> Result<Option<Signals>, ChatError> {
        let response = send(self.get(creds, "/api/v1/chat.getMessage").query(&[("msgId", msg_id)]))
            .await
            .map_err(|e| unavailable("chat.getMessage", &e))?;
        let status = response.status();
        if status == StatusCode::OK {
            let body: MessageBody = response
                .json()
                .await
                .map_err(|e| ChatError::Unavailable(format!("chat.getMessage answered an unreadable body: {e}")))?;
            return Ok(Some(body.message.signals(&creds.user_id)));
        }
        if let Some(e) = classify(status, &response) {
            return Err(e);
        }
        match status {
            StatusCode::BAD_REQUEST => Ok(None),
            other => Err(ChatError::Unavailable(format!("chat.getMessage answered HTTP {other}"))),
        }
    }

    /// After an ambiguous outcome: if the message is in the chat, it was delivered; otherwise `failure` stands.
    async fn settle(&self, creds: &Credentials, msg_id: &str, failure: ChatError) -> Result<Delivery, ChatError> {
        let response = send(self.get(creds, "/api/v1/chat.getMessage").query(&[("msgId", msg_id)])).await;
        match response {
            Ok(response) if response.status() == StatusCode::OK => Ok(Delivery::AlreadyPosted),
            _ => Err(failure),
        }
    }
}

#[async_trait]
impl ChatPoster for RocketChat {
    fn guarantee(&self) -> Guarantee {
        Guarantee::ExactlyOnce
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let msg_id = message_id(id);
        let (creds, _) = self.credentials(false).await?;
        match self.post_once(&creds, &msg_id, channel, message).await {
            // The token may have been rotated since this execution environment read it: read it once more.
            Err(ChatError::Unauthorized) => match self.credentials(true).await? {
                (fresh, true) => self.post_once(&fresh, &msg_id, channel, message).await,
                (_, false) => Err(ChatError::Unauthorized),
            },
            other => other,
        }
    }

    async fn signals(&self, id: QuestionId, _channel: &str) -> Result<Option<Signals>, ChatError> {
        let msg_id = message_id(id);
        let (creds, _) = self.credentials(false).await?;
        match self.read_signals(&creds, &msg_id).await {
            Err(ChatError::Unauthorized) => match self.credentials(true).await? {
                (fresh, true) => self.read_signals(&fresh, &msg_id).await,
                (_, false) => Err(ChatError::Unauthorized),
            },
            other => other,
        }
    }

    /// A message `_id` is unique across the whole server: the channel is not needed to find it.
    async fn is_posted(&self, id: QuestionId, _channel: &str) -> Result<bool, ChatError> {
        let msg_id = message_id(id);
        let (creds, _) = self.credentials(false).await?;
        match self.find(&creds, &msg_id).await {
            Err(ChatError::Unauthorized) => match self.credentials(true).await? {
                (fresh, true) => self.find(&fresh, &msg_id).await,
                (_, false) => Err(ChatError::Unauthorized),
            },
            other => other,
        }
    }
}

/// The parts of `chat.getMessage`'s message that carry the class's reception: `reactions` maps an emoji
/// (`:+1:`) to who reacted with it; `replies` lists the user ids who answered in its thread.
#[derive(Debug, Deserialize)]
struct MessageBody {
    message: ReadMessage,
}

#[derive(Debug, Default, Deserialize)]
struct ReadMessage {
    #[serde(default)]
    reactions: HashMap<String, Reaction>,
    #[serde(default)]
    replies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Reaction {
    #[serde(default)]
    usernames: Vec<String>,
}

/// Rocket.Chat's names for 👍 and ✅ (it stores the shortcode the client sent, and clients send either).
const VOTE_EMOJI: [&str; 2] = [":+1:", ":thumbsup:"];
const ANSWERED_EMOJI: [&str; 3] = [":white_check_mark:", ":heavy_check_mark:", ":ballot_box_with_check:"];

impl ReadMessage {
    fn signals(&self, bot_user_id: &str) -> Signals {
        let people = |names: &[&str]| {
            let mut who: Vec<&str> = names
                .iter()
                .filter_map(|name| self.reactions.get(*name))
                .flat_map(|r| r.usernames.iter().map(String::as_str))
                .collect();
            who.sort_unstable();
            who.dedup();
            who.len()
        };
        Signals {
            votes: u32::try_from(people(&VOTE_EMOJI)).unwrap_or(u32::MAX),
            answered: people(&ANSWERED_EMOJI) > 0 || self.replies.iter().any(|user| user != bot_user_id),
        }
    }
}

/// Sends a request, and once more at once if it failed within [`STALE_RETRY_WINDOW`] without timing out or
/// failing to connect: then it went out on a pooled connection the server (or a load balancer between) had
/// already dropped, and reqwest has discarded that connection, so the second try opens a fresh one. Every
/// Rocket.Chat call qrelay makes may be repeated: reads, and posts with their `_id`.
async fn send(request: reqwest::RequestBuilder) -> Result<Response, reqwest::Error> {
    let again = request.try_clone();
    let started = Instant::now();
    match (request.send().await, again) {
        (Err(e), Some(again)) if is_dropped_connection(&e) && started.elapsed() < STALE_RETRY_WINDOW => {
            tracing::debug!(error = %e, "the chat dropped a pooled connection; sending again on a new one");
            again.send().await
        }
        (result, _) => result,
    }
}

/// A failure while sending or before any answer arrived (reset, closed), on a connection that was open.
fn is_dropped_connection(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_timeout() && !e.is_connect()
}

/// Classifies the statuses every endpoint shares; `None` for a 4xx the caller must interpret.
fn classify(status: StatusCode, response: &Response) -> Option<ChatError> {
    match status {
        StatusCode::UNAUTHORIZED => Some(ChatError::Unauthorized),
        StatusCode::TOO_MANY_REQUESTS => Some(ChatError::RateLimited {
            reset: rate_limit_reset(response.headers()),
        }),
        s if s.is_server_error() => Some(ChatError::Unavailable(format!("HTTP {s}"))),
        s if s.is_client_error() => None,
        s => Some(ChatError::Unavailable(format!("unexpected HTTP {s}"))),
    }
}

fn unavailable(call: &str, e: &reqwest::Error) -> ChatError {
    super::unavailable(call, e)
}
