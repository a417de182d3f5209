//! Slack's Web API as a [`ChatPoster`] that checks before it retries.
//!
//! Each question is sent with `chat.postMessage` (`POST https://slack.com/api/chat.postMessage`, JSON,
//! `Authorization: Bearer xoxb-…`, scope `chat:write`; <https://docs.slack.dev/reference/methods/chat.postMessage>):
//! - `channel`: the channel's ID (`C…`, `G…`): what the API wants; ROOMS names Slack channels by ID
//!   (`rust-101=C0123456789`), since a name can be renamed and is refused by the history method;
//! - `text`: the question in Slack's mrkdwn ([`Dialect::Slack`], mentions and links defused), at most 40,000
//!   characters (Slack answers `msg_too_long` beyond);
//! - `unfurl_links: false`, `unfurl_media: false`: no previews of links in a question;
//! - `metadata: {"event_type": "qrelay_question", "event_payload": {"question_id": …}}`: message metadata, stored
//!   with the message and returned by `conversations.history` with `include_all_metadata=true`
//!   (<https://docs.slack.dev/messaging/message-metadata>).
//!
//! Slack has no idempotency key for `chat.postMessage`. So after an ambiguous outcome (a timeout, a lost answer, a
//! 5xx), and before posting a question SQS delivers again, the adapter reads the channel's newest messages
//! (`GET /api/conversations.history?channel=…&limit=200&oldest=<now − 14 days>&include_all_metadata=true`, scope
//! `channels:history`/`groups:history`) and looks for the question id in their metadata. A question is posted once
//! unless a retry races a first request still in flight, or more than 200 messages were posted in the channel in
//! between: [`Guarantee::CheckedRetry`]. (Since 29 May 2025, commercially distributed apps outside the Marketplace
//! get `conversations.history` at 1 request a minute and 15 messages; an internal app, as qrelay's is, keeps Tier 3,
//! 50+ a minute: <https://docs.slack.dev/apis/web-api/rate-limits>.)
//!
//! [`ChatPoster::is_posted`] reads that history in the question's channel.
//!
//! Answers: Slack answers HTTP 200 with `{"ok": false, "error": "…"}` for its errors (classified in [`classify`]),
//! HTTP 429 with `Retry-After` (seconds) when rate limited ([`ChatError::RateLimited`]), and 5xx when down
//! ([`ChatError::Unavailable`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::secret::{BotToken, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Dialect, Guarantee, STALE_RETRY_WINDOW, rate_limit_reset};
use crate::domain::QuestionId;

/// Slack's Web API host.
pub const API_BASE: &str = "https://slack.com";

/// The `event_type` of the metadata every question carries.
pub const EVENT_TYPE: &str = "qrelay_question";

/// How many of a channel's newest messages are searched: Slack recommends no more than 200 per page.
const HISTORY_LIMIT: usize = 200;

/// How far back the history is searched: SQS keeps a message at most 14 days.
const HISTORY_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);

/// Posts through Slack's Web API with a bot token.
pub struct Slack {
    http: reqwest::Client,
    base_url: String,
    token: BotToken,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The metadata sent with question `id`.
pub fn metadata(id: QuestionId) -> Value {
    json!({ "event_type": EVENT_TYPE, "event_payload": { "question_id": id.to_string() } })
}

/// The text of a question (over the size limit: refused for good) in Slack's syntax.
fn text(message: &ChatMessage) -> Result<String, ChatError> {
    message
        .text_for(Dialect::Slack)
        .map_err(|e| ChatError::Rejected(e.to_string()))
}

/// Every Web API answer: `ok`, and `error` when not.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error: String,
    #[serde(default)]
    messages: Vec<HistoryMessage>,
}

#[derive(Debug, Deserialize)]
struct HistoryMessage {
    metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    event_payload: Value,
}

impl Slack {
    /// `base_url` is [`API_BASE`] but in tests. The secret (`{"bot_token": "xoxb-…"}`) is read on first use.
    pub fn new(http: reqwest::Client, base_url: &str, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: BotToken::new(secrets),
        }
    }

    /// The bot token, read on first use, or again when `refresh` is set (after a refusal). Returns whether it changed.
    async fn token(&self, refresh: bool) -> Result<(String, bool), ChatError> {
        self.token.get(refresh).await
    }

    fn url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base_url)
    }

    /// Whether question `id`'s metadata is among `channel`'s newest messages.
    async fn find(&self, token: &str, channel: &str, id: QuestionId) -> Result<bool, ChatError> {
        let oldest = SystemTime::now()
            .checked_sub(HISTORY_WINDOW)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let request = self
            .http
            .get(self.url("conversations.history"))
            .bearer_auth(token)
            .query(&[
                ("channel", channel),
                ("limit", &HISTORY_LIMIT.to_string()),
                ("oldest", &oldest.to_string()),
                ("include_all_metadata", "true"),
            ]);
        // A read: safe to send again on a dropped pooled connection.
        let response = send(request, true)
            .await
            .map_err(|e| unavailable("reading the channel", &e))?;
        let answer = read(channel, response).await?;
        let id = id.to_string();
        Ok(answer.messages.iter().any(|m| {
            m.metadata.as_ref().is_some_and(|md| {
                md.event_type == EVENT_TYPE && md.event_payload.get("question_id").and_then(Value::as_str) == Some(&id)
            })
        }))
    }

    async fn post_once(&self, token: &str, id: QuestionId, channel: &str, text: &str) -> Result<Delivery, ChatError> {
        let body = json!({
            "channel": channel,
            "text": text,
            "unfurl_links": false,
            "unfurl_media": false,
            "metadata": metadata(id),
        });
        let request = self
            .http
            .post(self.url("chat.postMessage"))
            .bearer_auth(token)
            .json(&body);
        let again = request.try_clone();
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // Stored or not: look. A request that failed at once on a connection the server had dropped is sent
                // again once, but only after the history shows it was not stored.
                let stale =
                    e.is_request() && !e.is_timeout() && !e.is_connect() && started.elapsed() < STALE_RETRY_WINDOW;
                let failure = unavailable("posting", &e);
                return match (self.find(token, channel, id).await, again) {
                    (Ok(true), _) => Ok(Delivery::AlreadyPosted),
                    (Ok(false), Some(again)) if stale => {
                        tracing::debug!("Slack dropped a pooled connection; posting again on a new one");
                        let response = again.send().await.map_err(|e| unavailable("posting", &e))?;
                        read(channel, response).await.map(|_| Delivery::Posted)
                    }
                    _ => Err(failure),
                };
            }
        };
        match read(channel, response).await {
            Ok(_) => Ok(Delivery::Posted),
            Err(e @ ChatError::Unavailable(_)) => match self.find(token, channel, id).await {
                Ok(true) => Ok(Delivery::AlreadyPosted),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Runs `call` with the token, and once more with the secret read again if Slack refused the token.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ChatError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ChatError>>,
    {
        let (token, _) = self.token(false).await?;
        match call(token).await {
            Err(ChatError::Unauthorized) => match self.token(true).await? {
                (fresh, true) => call(fresh).await,
                (_, false) => Err(ChatError::Unauthorized),
            },
            other => other,
        }
    }
}

#[async_trait]
impl ChatPoster for Slack {
    fn guarantee(&self) -> Guarantee {
        Guarantee::CheckedRetry
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        // Slack's history method takes only IDs; say so rather than let `channel_not_found` puzzle the instructor.
        if channel.len() < 9 || !channel.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return Err(ChatError::Misconfigured(format!(
                "{channel:?} is not a Slack channel ID: ROOMS names Slack channels by ID (room=C0123456789; in Slack, \
                 the channel's details show it)"
            )));
        }
        let text = text(message)?;
        self.with_token(|token| {
            let text = text.as_str();
            async move { self.post_once(&token, id, channel, text).await }
        })
        .await
    }

    async fn is_posted(&self, id: QuestionId, channel: &str) -> Result<bool, ChatError> {
        self.with_token(|token| async move { self.find(&token, channel, id).await })
            .await
    }
}

/// Sends a request; a read (`repeatable`) is sent once more at once if it failed within [`STALE_RETRY_WINDOW`] on a
/// pooled connection the server had dropped.
async fn send(request: reqwest::RequestBuilder, repeatable: bool) -> Result<Response, reqwest::Error> {
    let again = if repeatable { request.try_clone() } else { None };
    let started = Instant::now();
    match (request.send().await, again) {
        (Err(e), Some(again))
            if e.is_request() && !e.is_timeout() && !e.is_connect() && started.elapsed() < STALE_RETRY_WINDOW =>
        {
            again.send().await
        }
        (result, _) => result,
    }
}

/// Reads a Web API answer: the body when `ok`, else the classified error.
async fn read(channel: &str, response: Response) -> Result<Answer, ChatError> {
    let status = response.status();
    let reset = rate_limit_reset(response.headers());
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ChatError::RateLimited { reset });
    }
    if status.is_server_error() {
        return Err(ChatError::Unavailable(format!("Slack answered HTTP {status}")));
    }
    if !status.is_success() {
        return Err(ChatError::Misconfigured(format!("Slack answered HTTP {status}")));
    }
    let answer: Answer = response
        .json()
        .await
        .map_err(|_| ChatError::Unavailable("Slack's answer could not be read".into()))?;
    if answer.ok {
        Ok(answer)
    } else {
        Err(classify(channel, &answer.error, reset))
    }
}

/// Classifies Slack's `error` codes (chat.postMessage's and conversations.history's "Errors" tables).
fn classify(channel: &str, error: &str, reset: Option<SystemTime>) -> ChatError {
    match error {
        "not_authed"
        | "invalid_auth"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "org_login_required"
        | "enterprise_is_restricted" => ChatError::Unauthorized,
        "ratelimited" | "rate_limited" => ChatError::RateLimited { reset },
        "channel_not_found" => ChatError::Misconfigured(format!(
            "Slack channel {channel} was not found: ROOMS names Slack channels by ID, and a private channel needs the \
             bot invited"
        )),
        "not_in_channel" => ChatError::Misconfigured(format!(
            "the bot is not a member of Slack channel {channel}: invite it (/invite @your-bot)"
        )),
        "is_archived" => ChatError::Misconfigured(format!("Slack channel {channel} is archived")),
        "missing_scope"
        | "no_permission"
        | "not_allowed_token_type"
        | "access_denied"
        | "ekm_access_denied"
        | "team_access_not_granted"
        | "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel"
        | "restricted_action_non_threadable_channel"
        | "cannot_reply_to_message" => ChatError::Misconfigured(format!(
            "Slack refused the bot in channel {channel} ({error}): give the app the chat:write and channels:history \
             (groups:history for private channels) scopes, reinstall it, and check the channel's posting permissions"
        )),
        "msg_too_long"
        | "no_text"
        | "invalid_blocks"
        | "invalid_blocks_format"
        | "invalid_metadata_format"
        | "invalid_metadata_schema"
        | "metadata_too_large"
        | "metadata_must_be_sent_from_app"
        | "invalid_arguments"
        | "invalid_arg_name"
        | "invalid_array_arg"
        | "invalid_charset"
        | "invalid_form_data"
        | "invalid_post_type"
        | "missing_post_type"
        | "too_many_attachments"
        | "duplicate_message_not_found" => ChatError::Rejected(format!("Slack refused the message ({error})")),
        "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" | "team_added_to_org" => {
            ChatError::Unavailable(format!("Slack failed ({error})"))
        }
        other => ChatError::Misconfigured(format!("Slack refused the post ({other})")),
    }
}

fn unavailable(call: &str, e: &reqwest::Error) -> ChatError {
    super::unavailable(&format!("Slack: {call}"), e)
}

#[cfg(test)]
mod tests;
