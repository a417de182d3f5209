//! The chat's credentials, kept in AWS Secrets Manager and never in an environment variable, the template or a
//! log line.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use serde::Deserialize;

/// What the chat secret holds: `{"user_id": ..., "token": ...}` for Rocket.Chat's REST API, or
/// `{"webhook_url": ...}` for an incoming webhook.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ChatSecret {
    RocketChat { user_id: String, token: String },
    Webhook { webhook_url: String },
}

// Hand-written so that a token or a webhook URL (which embeds its token) can never reach a log through `{:?}`.
impl fmt::Debug for ChatSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RocketChat { user_id, .. } => f
                .debug_struct("RocketChat")
                .field("user_id", user_id)
                .field("token", &"<redacted>")
                .finish(),
            Self::Webhook { .. } => f.debug_struct("Webhook").field("webhook_url", &"<redacted>").finish(),
        }
    }
}

impl ChatSecret {
    /// Parses the secret's JSON text. The error never quotes the text.
    fn parse(json: &str) -> anyhow::Result<Self> {
        serde_json::from_str(json).map_err(|_| {
            anyhow::anyhow!(
                "the chat secret must be JSON {{\"user_id\": ..., \"token\": ...}} or {{\"webhook_url\": ...}}"
            )
        })
    }
}

/// Where the chat secret is read from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self) -> anyhow::Result<ChatSecret>;
}

/// Reads the secret from AWS Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> anyhow::Result<ChatSecret> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .with_context(|| format!("reading the chat secret {}", self.secret_id))?;
        let text = output.secret_string().context("the chat secret has no string value")?;
        ChatSecret::parse(text)
    }
}

/// A secret held in memory: for tests and the local runner.
#[derive(Debug, Clone)]
pub struct StaticSecret(pub ChatSecret);

#[async_trait]
impl SecretSource for StaticSecret {
    async fn fetch(&self) -> anyhow::Result<ChatSecret> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_secret_shapes_parse() {
        assert_eq!(
            ChatSecret::parse(r#"{"user_id":"u1","token":"t1"}"#).expect("rest"),
            ChatSecret::RocketChat {
                user_id: "u1".into(),
                token: "t1".into()
            }
        );
        assert_eq!(
            ChatSecret::parse(r#"{"webhook_url":"https://chat/hooks/a/b+c/d="}"#).expect("webhook"),
            ChatSecret::Webhook {
                webhook_url: "https://chat/hooks/a/b+c/d=".into()
            }
        );
    }

    #[test]
    fn secrets_never_print() {
        let rest = ChatSecret::RocketChat {
            user_id: "u1".into(),
            token: "s3cr3t-token".into(),
        };
        let hook = ChatSecret::Webhook {
            webhook_url: "https://chat/hooks/id/s3cr3t".into(),
        };
        for secret in [rest, hook] {
            assert!(!format!("{secret:?}").contains("s3cr3t"), "{secret:?}");
        }
        let err = ChatSecret::parse(r#"{"token":"s3cr3t"}"#).expect_err("incomplete");
        assert!(
            !format!("{err:#}").contains("s3cr3t"),
            "the error does not quote the secret: {err:#}"
        );
    }
}
