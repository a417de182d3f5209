//! Incoming webhooks as a [`ChatPoster`], for teams that can't create a bot user. The target is read from the
//! webhook URL, and each gets its own body, in its own syntax ([`Dialect`]), with link previews off where the API
//! allows:
//! - Slack (`https://hooks.slack.com/…`): `{"text", "unfurl_links": false, "unfurl_media": false}`, mrkdwn.
//! - Discord (`https://discord.com/api/webhooks/{id}/{token}`, also `discordapp.com`, `ptb.`/`canary.`): sent with
//!   `?wait=true` so Discord answers only once the message is stored (200 and the message, not an early 204:
//!   "when `false` a message that is not saved does not return an error", Discord's "Execute Webhook");
//!   `{"content", "allowed_mentions": {"parse": []}, "flags": 4}` (`SUPPRESS_EMBEDS`), 2000 characters at most.
//! - Google Chat (`https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…`): `{"text"}` in Google Chat's
//!   text format (it has no per-message switch for previews in a webhook).
//! - Rocket.Chat and Mattermost (anything else): `{"text", "parseUrls": false}` in Rocket.Chat's Markdown
//!   (Rocket.Chat reads `parseUrls`; Mattermost has no per-post switch and ignores it).
//!
//! **Webhooks can't deduplicate:** there is no message id to send and nothing to look up, so if the chat stores a
//! message but the answer is lost (a timeout), the retry posts it again: [`Guarantee::AtLeastOnce`]. The webhook
//! URL embeds its token: it is never logged nor put in an error.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::json;

use super::secret::{ChatSecret, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Dialect, Guarantee, rate_limit_reset};
use crate::domain::QuestionId;

/// Posts to one incoming webhook, whose URL (it embeds a token) is read from the chat secret on first use.
pub struct Webhook {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    url: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            secrets,
            url: tokio::sync::OnceCell::new(),
        }
    }

    async fn url(&self) -> Result<&str, ChatError> {
        let url = self
            .url
            .get_or_try_init(|| async {
                match self.secrets.fetch().await {
                    Ok(ChatSecret::Webhook { webhook_url }) => Ok(webhook_url),
                    Ok(_) => Err(ChatError::Misconfigured(
                        "the chat secret holds no webhook_url (it is the secret of another kind of chat)".into(),
                    )),
                    Err(e) => Err(ChatError::Unavailable(format!("{e:#}"))),
                }
            })
            .await?;
        Ok(url)
    }
}

/// Which chat an incoming webhook URL belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Slack,
    Discord,
    GoogleChat,
    /// Rocket.Chat or Mattermost: the same body.
    RocketChat,
}

impl Target {
    fn of(url: &str) -> Self {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let path = reqwest::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        // Discord's webhook path, `/api/webhooks/{numeric id}/{token}`, is its own on any host (a proxy, a fake).
        let mut segments = path.trim_start_matches('/').split('/');
        let discord_path = segments.next() == Some("api")
            && segments.next() == Some("webhooks")
            && segments
                .next()
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            && segments.next().is_some_and(|token| !token.is_empty());
        if host == "hooks.slack.com" {
            Self::Slack
        } else if discord_path {
            Self::Discord
        } else if host == "chat.googleapis.com" {
            Self::GoogleChat
        } else {
            Self::RocketChat
        }
    }
}

/// Discord's limit on a webhook message's `content`, in characters.
const DISCORD_MAX_CHARS: usize = 2000;

/// The URL to post to: Discord's with `wait=true`, so a 2xx means the message was stored.
fn post_url(url: &str) -> String {
    if Target::of(url) != Target::Discord {
        return url.to_owned();
    }
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let others: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "wait")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair("wait", "true");
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The webhook's JSON body for the target `url` points at, in its syntax, with link previews off.
fn body(url: &str, message: &ChatMessage) -> Result<serde_json::Value, ChatError> {
    let text = |dialect| super::discord::text_in(message, dialect);
    Ok(match Target::of(url) {
        Target::Slack => {
            json!({ "text": text(Dialect::Slack)?, "unfurl_links": false, "unfurl_media": false })
        }
        Target::Discord => {
            let content = text(Dialect::Discord)?;
            let chars = content.chars().count();
            if chars > DISCORD_MAX_CHARS {
                return Err(ChatError::Rejected(format!(
                    "the message is {chars} characters, over Discord's limit of {DISCORD_MAX_CHARS}"
                )));
            }
            json!({
                "content": content,
                "allowed_mentions": { "parse": [] },
                "flags": super::discord::SUPPRESS_EMBEDS,
            })
        }
        Target::GoogleChat => json!({ "text": text(Dialect::GoogleChat)? }),
        Target::RocketChat => json!({ "text": message.as_ref(), "parseUrls": false }),
    })
}

#[async_trait]
impl ChatPoster for Webhook {
    fn guarantee(&self) -> Guarantee {
        Guarantee::AtLeastOnce
    }

    async fn post(&self, _id: QuestionId, _channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let url = self.url().await?;
        let body = body(url, message)?;
        let response = self.http.post(post_url(url)).json(&body).send().await.map_err(|e| {
            ChatError::Unavailable(if e.is_timeout() {
                "webhook timed out".into()
            } else {
                "webhook failed".into()
            })
        })?;
        match response.status() {
            s if s.is_success() => Ok(Delivery::Posted),
            StatusCode::TOO_MANY_REQUESTS => Err(ChatError::RateLimited {
                reset: rate_limit_reset(response.headers()),
            }),
            s if s.is_server_error() => Err(ChatError::Unavailable(format!("webhook answered HTTP {s}"))),
            // Discord's 400 is Invalid Form Body (code 50035): this message will never be taken. Other chats' 400
            // may be a setting the instructor can fix, so those wait.
            StatusCode::BAD_REQUEST if Target::of(url) == Target::Discord => Err(ChatError::Rejected(
                "the Discord webhook refused the message (HTTP 400)".into(),
            )),
            s => Err(ChatError::Misconfigured(format!(
                "webhook answered HTTP {s}; check the webhook URL"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
