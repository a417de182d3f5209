//! The chat's credentials, kept in AWS Secrets Manager and never in an environment variable, the template or a
//! log line.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use serde::Deserialize;

/// What the chat secret holds, one JSON shape per kind of chat.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ChatSecret {
    /// `{"user_id": ..., "token": ...}`: a Rocket.Chat bot user and its personal access token.
    RocketChat { user_id: String, token: String },
    /// `{"webhook_url": ...}`: an incoming webhook (or a Teams workflow), whose URL embeds its token.
    Webhook { webhook_url: String },
    /// `{"bot_token": ...}`: a bot's token for Slack's Web API, Mattermost's REST API or Discord's bot API.
    BotToken { bot_token: String },
    /// `{"service_account": {...}}`: a Google Cloud service account's key, the JSON file Google hands out, for a
    /// Google Chat app.
    ServiceAccount { service_account: ServiceAccountKey },
}

/// The fields of a Google service account key that qrelay uses; the others are ignored.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// PEM, PKCS#8.
    pub private_key: String,
    /// Where to exchange a signed assertion for an access token; Google's own when absent.
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .finish()
    }
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
            Self::BotToken { .. } => f.debug_struct("BotToken").field("bot_token", &"<redacted>").finish(),
            Self::ServiceAccount { service_account } => f
                .debug_struct("ServiceAccount")
                .field("service_account", service_account)
                .finish(),
        }
    }
}

impl ChatSecret {
    /// Parses the secret's JSON text. The error never quotes the text.
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        serde_json::from_str(json).map_err(|_| {
            anyhow::anyhow!(
                "the chat secret must be JSON {{\"user_id\": ..., \"token\": ...}}, {{\"webhook_url\": ...}}, \
                 {{\"bot_token\": ...}} or {{\"service_account\": {{...}}}}"
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

/// A bot's token (`{"bot_token": ...}`), read from the secret on first use and again after a refusal, since it may
/// have been rotated: what the Slack, Mattermost and Discord adapters share.
pub(crate) struct BotToken {
    secrets: std::sync::Arc<dyn SecretSource>,
    current: tokio::sync::Mutex<Option<String>>,
}

impl BotToken {
    pub(crate) fn new(secrets: std::sync::Arc<dyn SecretSource>) -> Self {
        Self {
            secrets,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The token, read on first use, or again when `refresh` is set. Returns whether it changed.
    pub(crate) async fn get(&self, refresh: bool) -> Result<(String, bool), super::ChatError> {
        let mut current = self.current.lock().await;
        if let (Some(t), false) = (current.as_ref(), refresh) {
            return Ok((t.clone(), false));
        }
        let secret = self
            .secrets
            .fetch()
            .await
            .map_err(|e| super::ChatError::Unavailable(format!("{e:#}")))?;
        let ChatSecret::BotToken { bot_token } = secret else {
            return Err(super::ChatError::Misconfigured(
                "the chat secret holds no bot_token (it is the secret of another kind of chat)".into(),
            ));
        };
        let changed = current.as_deref() != Some(bot_token.as_str());
        *current = Some(bot_token.clone());
        Ok((bot_token, changed))
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
    fn every_secret_shape_parses() {
        assert_eq!(
            ChatSecret::parse(r#"{"bot_token":"xoxb-1"}"#).expect("bot"),
            ChatSecret::BotToken {
                bot_token: "xoxb-1".into()
            }
        );
        let google = r#"{"service_account":{"type":"service_account","client_email":"q@p.iam.gserviceaccount.com",
            "private_key":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n","project_id":"p"}}"#;
        let ChatSecret::ServiceAccount { service_account } = ChatSecret::parse(google).expect("google") else {
            panic!("a service account key");
        };
        assert_eq!(service_account.client_email, "q@p.iam.gserviceaccount.com");
        assert_eq!(service_account.token_uri, None);
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
        let bot = ChatSecret::BotToken {
            bot_token: "xoxb-s3cr3t".into(),
        };
        let google = ChatSecret::ServiceAccount {
            service_account: ServiceAccountKey {
                client_email: "q@p.iam.gserviceaccount.com".into(),
                private_key: "-----BEGIN PRIVATE KEY-----s3cr3t".into(),
                token_uri: None,
            },
        };
        for secret in [rest, hook, bot, google] {
            assert!(!format!("{secret:?}").contains("s3cr3t"), "{secret:?}");
        }
        let err = ChatSecret::parse(r#"{"token":"s3cr3t"}"#).expect_err("incomplete");
        assert!(
            !format!("{err:#}").contains("s3cr3t"),
            "the error does not quote the secret: {err:#}"
        );
    }
}
