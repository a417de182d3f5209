//! Mattermost's REST API v4 as a [`ChatPoster`] that checks before it retries.
//!
//! The bot account's access token goes as `Authorization: Bearer <token>` (<https://developers.mattermost.com/integrate/reference/bot-accounts/>).
//! ROOMS names a Mattermost channel as `team/channel`, both the URL names (`rust-101=engineering/rust-course`, the
//! channel at `https://chat.example.com/engineering/channels/rust-course`); a bare 26-character channel id is taken
//! as is. The name is resolved once per execution environment with "Get a channel by name and team name"
//! (`GET /api/v4/teams/name/{team_name}/channels/name/{channel_name}`) and cached.
//!
//! Each question is sent with "Create a post" (`POST /api/v4/posts`, 201 Created) with `channel_id`, `message` (the
//! question in Mattermost's Markdown, [`Dialect::Mattermost`], at most 16,383 characters) and `props:
//! {"qrelay_id": <question id>}`, which Mattermost stores with the post and returns with it.
//!
//! Mattermost has no idempotency key a client can rely on: `pending_post_id` is deduplicated only for about 30
//! seconds and in one server's memory, and a client-set post `id` is refused. So after an ambiguous outcome, and
//! before posting a question SQS delivers again, the adapter reads the channel's 200 newest posts ("Get posts for a
//! channel", `GET /api/v4/channels/{channel_id}/posts?per_page=200`, the maximum) and looks for `props.qrelay_id`. A
//! question is posted once unless a retry races a first request still in flight, or more than 200 posts were made in
//! the channel in between: [`Guarantee::CheckedRetry`].
//!
//! Statuses: 401 → [`ChatError::Unauthorized`] (the token is read again once); 403 (the bot is not on the team or in
//! the channel) and 404 (no such team or channel) → [`ChatError::Misconfigured`]; 400 and 413 →
//! [`ChatError::Rejected`]; 429 → [`ChatError::RateLimited`] after `Retry-After`, or `X-Ratelimit-Reset`, which
//! Mattermost's limiter (the `throttled` library, `http.go` `setRateLimitHeaders`: `ceil(Reset.Seconds())`) sets to
//! the SECONDS until the reset, not a time (so the shared `rate_limit_reset`, which reads that header as epoch
//! milliseconds for Rocket.Chat, is not used); 5xx → [`ChatError::Unavailable`]. A 400 on the channel lookup is a
//! name Mattermost can't take: [`ChatError::Misconfigured`], not the message's fault.
//!
//! References: <https://developers.mattermost.com/api-documentation/> ("Create a post", "Get a channel by name and
//! team name", <https://docs.mattermost.com/api/reference/get-posts-for-channel>: `page`/`per_page`, posts newest
//! first as `{"order", "posts"}`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::secret::{BotToken, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Dialect, Guarantee, STALE_RETRY_WINDOW};
use crate::domain::QuestionId;

/// The prop every question's post carries its id in.
pub const ID_PROP: &str = "qrelay_id";

/// How many of a channel's newest posts are searched: "Get posts for a channel" returns at most 200 a page.
const HISTORY_LIMIT: usize = 200;

/// Posts through Mattermost's REST API with a bot account's token.
pub struct Mattermost {
    http: reqwest::Client,
    base_url: String,
    token: BotToken,
    /// `team/channel` → channel id.
    channel_ids: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Mattermost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mattermost")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The text of a question (over the size limit: refused for good) in Mattermost's syntax.
fn text(message: &ChatMessage) -> Result<String, ChatError> {
    message
        .text_for(Dialect::Mattermost)
        .map_err(|e| ChatError::Rejected(e.to_string()))
}

/// Whether `s` is a Mattermost id: 26 lowercase letters and digits.
fn is_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A channel or team URL name: lowercase letters, digits, `-` and `_` (no `/`, `?` or `%` to escape).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[derive(Debug, Deserialize)]
struct ChannelObject {
    id: String,
}

#[derive(Debug, Deserialize)]
struct PostList {
    #[serde(default)]
    posts: HashMap<String, PostObject>,
}

#[derive(Debug, Deserialize)]
struct PostObject {
    #[serde(default)]
    props: Value,
}

/// Mattermost's AppError body: `{"id", "message", "status_code", ...}`.
#[derive(Debug, Default, Deserialize)]
struct AppError {
    #[serde(default)]
    id: String,
}

impl Mattermost {
    /// `base_url` is `CHAT_URL` (checked by `config::chat_url`). The secret (`{"bot_token": ...}`) is read on first
    /// use.
    pub fn new(http: reqwest::Client, base_url: &str, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: BotToken::new(secrets),
            channel_ids: Mutex::new(HashMap::new()),
        }
    }

    async fn token(&self, refresh: bool) -> Result<(String, bool), ChatError> {
        self.token.get(refresh).await
    }

    /// The id of the channel ROOMS names `channel` (`team/channel` or an id), resolved once.
    async fn channel_id(&self, token: &str, channel: &str) -> Result<String, ChatError> {
        if is_id(channel) {
            return Ok(channel.to_owned());
        }
        if let Some(id) = self.channel_ids.lock().expect("channel id lock").get(channel) {
            return Ok(id.clone());
        }
        let Some((team, name)) = channel.split_once('/').filter(|(t, n)| is_name(t) && is_name(n)) else {
            return Err(ChatError::Misconfigured(format!(
                "{channel:?} is not a Mattermost channel: ROOMS names Mattermost channels as team/channel, the names \
                 in the channel's URL (room=engineering/rust-course)"
            )));
        };
        let url = format!("{}/api/v4/teams/name/{team}/channels/name/{name}", self.base_url);
        let response = send(self.http.get(url).bearer_auth(token))
            .await
            .map_err(|e| unavailable("looking the channel up", &e))?;
        if response.status() != StatusCode::OK {
            return Err(match classify(channel, response).await {
                // A name Mattermost can't take is ROOMS' mistake, not the message's.
                ChatError::Rejected(why) => ChatError::Misconfigured(why),
                e => e,
            });
        }
        let object: ChannelObject = response
            .json()
            .await
            .map_err(|_| ChatError::Unavailable("Mattermost's channel could not be read".into()))?;
        self.channel_ids
            .lock()
            .expect("channel id lock")
            .insert(channel.to_owned(), object.id.clone());
        Ok(object.id)
    }

    /// Whether a post with question `id` in its props is among the channel's newest posts.
    async fn find(&self, token: &str, channel_id: &str, id: QuestionId) -> Result<bool, ChatError> {
        let url = format!("{}/api/v4/channels/{channel_id}/posts", self.base_url);
        let request = self
            .http
            .get(url)
            .bearer_auth(token)
            .query(&[("per_page", HISTORY_LIMIT)]);
        let response = send(request)
            .await
            .map_err(|e| unavailable("reading the channel", &e))?;
        if response.status() != StatusCode::OK {
            return Err(classify(channel_id, response).await);
        }
        let list: PostList = response
            .json()
            .await
            .map_err(|_| ChatError::Unavailable("the channel's posts could not be read".into()))?;
        let id = id.to_string();
        Ok(list
            .posts
            .values()
            .any(|p| p.props.get(ID_PROP).and_then(Value::as_str) == Some(id.as_str())))
    }

    async fn post_once(&self, token: &str, id: QuestionId, channel: &str, text: &str) -> Result<Delivery, ChatError> {
        let channel_id = self.channel_id(token, channel).await?;
        let body = json!({
            "channel_id": channel_id,
            "message": text,
            "props": { ID_PROP: id.to_string() },
        });
        let request = self
            .http
            .post(format!("{}/api/v4/posts", self.base_url))
            .bearer_auth(token)
            .json(&body);
        let again = request.try_clone();
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // Stored or not: look. A request that failed at once on a connection the server had dropped is sent
                // again once, but only after the channel shows it was not stored.
                let stale =
                    e.is_request() && !e.is_timeout() && !e.is_connect() && started.elapsed() < STALE_RETRY_WINDOW;
                let failure = unavailable("posting", &e);
                return match (self.find(token, &channel_id, id).await, again) {
                    (Ok(true), _) => Ok(Delivery::AlreadyPosted),
                    (Ok(false), Some(again)) if stale => {
                        tracing::debug!("Mattermost dropped a pooled connection; posting again on a new one");
                        let response = again.send().await.map_err(|e| unavailable("posting", &e))?;
                        if response.status().is_success() {
                            Ok(Delivery::Posted)
                        } else {
                            Err(classify(channel, response).await)
                        }
                    }
                    _ => Err(failure),
                };
            }
        };
        if response.status().is_success() {
            return Ok(Delivery::Posted);
        }
        match classify(channel, response).await {
            e @ ChatError::Unavailable(_) => match self.find(token, &channel_id, id).await {
                Ok(true) => Ok(Delivery::AlreadyPosted),
                _ => Err(e),
            },
            e @ ChatError::Misconfigured(_) => {
                // The channel may have been deleted or renamed: look it up again next time.
                self.channel_ids.lock().expect("channel id lock").remove(channel);
                Err(e)
            }
            e => Err(e),
        }
    }

    /// Runs `call` with the token, and once more with the secret read again after a 401.
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
impl ChatPoster for Mattermost {
    fn guarantee(&self) -> Guarantee {
        Guarantee::CheckedRetry
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let text = text(message)?;
        self.with_token(|token| {
            let text = text.as_str();
            async move { self.post_once(&token, id, channel, text).await }
        })
        .await
    }

    async fn is_posted(&self, id: QuestionId, channel: &str) -> Result<bool, ChatError> {
        self.with_token(|token| async move {
            let channel_id = self.channel_id(&token, channel).await?;
            self.find(&token, &channel_id, id).await
        })
        .await
    }
}

/// Sends a read, and once more at once if it failed within [`STALE_RETRY_WINDOW`] on a pooled connection the server
/// had dropped.
async fn send(request: reqwest::RequestBuilder) -> Result<Response, reqwest::Error> {
    let again = request.try_clone();
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

/// When a 429 says to retry: `Retry-After`, else `X-Ratelimit-Reset`, both seconds from now in Mattermost.
fn reset_after(headers: &reqwest::header::HeaderMap) -> Option<SystemTime> {
    ["retry-after", "x-ratelimit-reset"].iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|secs| *secs < 86_400)
            .map(|secs| SystemTime::now() + Duration::from_secs(secs))
    })
}

/// Classifies a failed answer by its status (and Mattermost's error id, for the message).
async fn classify(channel: &str, response: Response) -> ChatError {
    let status = response.status();
    let reset = reset_after(response.headers());
    let body: AppError = response.json().await.unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED => ChatError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => ChatError::RateLimited { reset },
        StatusCode::FORBIDDEN => ChatError::Misconfigured(format!(
            "the bot may not post in Mattermost channel {channel} ({}): add the bot to the team and the channel",
            body.id
        )),
        StatusCode::NOT_FOUND => ChatError::Misconfigured(format!(
            "Mattermost channel {channel} was not found ({}): ROOMS names it team/channel, the names in its URL",
            body.id
        )),
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            ChatError::Rejected(format!("Mattermost refused the message (HTTP {status}, {})", body.id))
        }
        s if s.is_server_error() => ChatError::Unavailable(format!("Mattermost answered HTTP {s}")),
        s => ChatError::Misconfigured(format!("Mattermost answered HTTP {s} ({})", body.id)),
    }
}

fn unavailable(call: &str, e: &reqwest::Error) -> ChatError {
    super::unavailable(&format!("Mattermost: {call}"), e)
}

#[cfg(test)]
mod tests;
