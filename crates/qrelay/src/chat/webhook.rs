//! Incoming webhooks as a [`ChatPoster`], for teams that can't create a bot user. Rocket.Chat, Slack and
//! Mattermost accept the same `{"text": ...}` body, plus each target's switch that stops every viewer's client from
//! loading a preview of the links in an anonymous text: `unfurl_links`/`unfurl_media: false` for Slack,
//! `parseUrls: false` for the others (Rocket.Chat reads it; Mattermost has no per-post switch and ignores it).
//!
//! **Webhooks can't deduplicate:** there is no message id to send and nothing to look up, so if the chat stores a
//! message but the answer is lost (a timeout), the retry posts it again. Use the Rocket.Chat REST adapter when
//! exactly-once matters.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::json;

use super::secret::{ChatSecret, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Guarantee, rate_limit_reset};
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

/// Slack reads `<!channel>` and `<@U123>` as mentions: its text must have `&`, `<` and `>` escaped.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The webhook's JSON body for the target `url` points at, with link previews off.
fn body(url: &str, message: &ChatMessage) -> serde_json::Value {
    if url.contains("hooks.slack.com") {
        json!({ "text": slack_escape(message.as_ref()), "unfurl_links": false, "unfurl_media": false })
    } else {
        json!({ "text": message.as_ref(), "parseUrls": false })
    }
}

#[async_trait]
impl ChatPoster for Webhook {
    fn guarantee(&self) -> Guarantee {
        Guarantee::AtLeastOnce
    }

    async fn post(&self, _id: QuestionId, _channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let url = self.url().await?;
        let response = self
            .http
            .post(url)
            .json(&body(url, message))
            .send()
            .await
            .map_err(|e| {
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
            s => Err(ChatError::Misconfigured(format!(
                "webhook answered HTTP {s}; check the webhook URL"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_control_sequences_are_escaped() {
        assert_eq!(slack_escape("<!channel> & <@U1>"), "&lt;!channel&gt; &amp; &lt;@U1&gt;");
    }

    #[test]
    fn every_target_gets_its_switch_for_link_previews() {
        let question = crate::domain::Question {
            id: QuestionId::new_random(),
            room: crate::domain::RoomName::parse("rust-101").expect("room"),
            text: crate::domain::QuestionText::parse("see https://example.com", 100).expect("text"),
            nickname: None,
            submitted_at: "2026-11-22T09:30:00Z".parse().expect("time"),
        };
        let message = ChatMessage::render(&question, &jiff::tz::TimeZone::UTC).expect("fits");
        let slack = body("https://hooks.slack.com/services/T/B/x", &message);
        assert_eq!(
            (slack["unfurl_links"].as_bool(), slack["unfurl_media"].as_bool()),
            (Some(false), Some(false))
        );
        assert!(
            slack.get("parseUrls").is_none(),
            "Slack's schema has no parseUrls: {slack}"
        );
        let rocket = body("https://chat.example/hooks/abc/def", &message);
        assert_eq!(rocket["parseUrls"].as_bool(), Some(false), "{rocket}");
        assert_eq!(rocket["text"].as_str(), Some(message.as_ref()));
    }
}
