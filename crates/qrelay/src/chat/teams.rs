//! A Microsoft Teams "Workflows" webhook as a [`ChatPoster`]: a Power Automate flow ("Post to a channel when a
//! webhook request is received") whose URL, with its `sig` token, is the chat secret's `webhook_url`.
//!
//! The body is a message with one Adaptive Card attachment, the shape the flow's "Post card in a chat or channel"
//! action reads: `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
//! "content": {"type": "AdaptiveCard", "version": "1.4", "body": [TextBlock…]}}]}`. Version 1.4 because Workflows
//! refuses cards above it (notify-microsoft-teams issue #107). The card's text is [`Dialect::Teams`].
//!
//! **Delivery is not confirmed:** the trigger answers 202 Accepted as soon as the run is queued, and the flow posts
//! the card later; a run that fails (a card Teams refuses, a flow turned off, its owner's licence gone) does so out
//! of qrelay's sight. There is no message id and nothing to look up, so a retry after a lost answer posts twice:
//! [`Guarantee::AtLeastOnceUnconfirmed`].
//!
//! Statuses: 2xx → posted; 400 (the body does not fit the trigger) → [`ChatError::Rejected`]; 401 (a wrong `sig`:
//! the URL is read again once) → [`ChatError::Unauthorized`]; 403, 404 (flow deleted) → [`ChatError::Misconfigured`];
//! 429 → [`ChatError::RateLimited`] (`Retry-After`); 5xx → [`ChatError::Unavailable`].

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::json;

use super::secret::{ChatSecret, SecretSource};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Dialect, Guarantee, rate_limit_reset};
use crate::domain::QuestionId;

/// Teams' limit on a message with its card: 28 KB ("Message size limit: 28 KB", Teams' bot and webhook limits).
pub const MAX_BODY_BYTES: usize = 28 * 1024;

/// Posts to one Workflows webhook, whose URL (it embeds its signature) is read from the chat secret on first use.
pub struct Teams {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    url: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams")
            .field("url", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The webhook's body: the message with its Adaptive Card, or why it is too large for Teams.
pub(crate) fn body(message: &ChatMessage) -> Result<String, ChatError> {
    let text = super::discord::text_in(message, Dialect::Teams)?;
    let blocks: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .enumerate()
        .map(|(i, block)| {
            let mut b = json!({ "type": "TextBlock", "text": block, "wrap": true });
            if i > 0 {
                b["spacing"] = json!("Small");
            }
            b
        })
        .collect();
    let body = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": blocks,
                "msteams": { "width": "Full" },
            },
        }],
    })
    .to_string();
    if body.len() > MAX_BODY_BYTES {
        return Err(ChatError::Rejected(format!(
            "the card is {} bytes, over Teams' limit of {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    Ok(body)
}

impl Teams {
    pub fn new(http: reqwest::Client, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            secrets,
            url: tokio::sync::Mutex::new(None),
        }
    }

    /// The webhook URL, read on first use or again after a 401. Returns whether it changed.
    async fn url(&self, refresh: bool) -> Result<(String, bool), ChatError> {
        let mut current = self.url.lock().await;
        if let (Some(url), false) = (current.as_ref(), refresh) {
            return Ok((url.clone(), false));
        }
        let secret = self
            .secrets
            .fetch()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{e:#}")))?;
        let ChatSecret::Webhook { webhook_url } = secret else {
            return Err(ChatError::Misconfigured(
                "the chat secret holds no webhook_url (it is the secret of another kind of chat)".into(),
            ));
        };
        let changed = current.as_deref() != Some(webhook_url.as_str());
        *current = Some(webhook_url.clone());
        Ok((webhook_url, changed))
    }

    async fn post_once(&self, url: &str, body: &str) -> Result<Delivery, ChatError> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            // reqwest's error would quote the URL, and with it the signature: say only what happened.
            .map_err(|e| {
                ChatError::Unavailable(if e.is_timeout() {
                    "the Teams workflow timed out".into()
                } else if e.is_connect() {
                    "could not connect to the Teams workflow".into()
                } else {
                    "the Teams workflow request failed".into()
                })
            })?;
        match response.status() {
            s if s.is_success() => Ok(Delivery::Posted),
            StatusCode::UNAUTHORIZED => Err(ChatError::Unauthorized),
            StatusCode::TOO_MANY_REQUESTS => Err(ChatError::RateLimited {
                reset: rate_limit_reset(response.headers()),
            }),
            StatusCode::BAD_REQUEST => Err(ChatError::Rejected(
                "the Teams workflow refused the card (HTTP 400)".into(),
            )),
            s @ (StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) => Err(ChatError::Misconfigured(format!(
                "the Teams workflow answered HTTP {s}; check that the flow exists, is on, and that webhook_url is its \
                 current URL"
            ))),
            s if s.is_server_error() => Err(ChatError::Unavailable(format!("the Teams workflow answered HTTP {s}"))),
            s => Err(ChatError::Misconfigured(format!(
                "the Teams workflow answered HTTP {s}"
            ))),
        }
    }
}

#[async_trait]
impl ChatPoster for Teams {
    fn guarantee(&self) -> Guarantee {
        Guarantee::AtLeastOnceUnconfirmed
    }

    async fn post(&self, _id: QuestionId, _channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let body = body(message)?;
        let (url, _) = self.url(false).await?;
        match self.post_once(&url, &body).await {
            Err(ChatError::Unauthorized) => match self.url(true).await? {
                (fresh, true) => self.post_once(&fresh, &body).await,
                (_, false) => Err(ChatError::Unauthorized),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
