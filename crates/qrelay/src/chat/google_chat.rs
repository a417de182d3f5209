//! The Google Chat API, as a Chat app with a service account, as an exactly-once [`ChatPoster`].
//!
//! - Credentials: the secret holds the service account's key, `{"service_account": {...}}` (the JSON file Google
//!   hands out). The adapter signs an assertion with the key (RS256, `iss` the account's e-mail, `scope`
//!   `https://www.googleapis.com/auth/chat.bot`, `aud` the key's `token_uri`, valid one hour) and exchanges it at
//!   `token_uri` for an access token (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>). The token is kept until a
//!   minute before it expires, fetched again after a 401, and never logged. The signature is ring's (the crypto
//!   library rustls already brings), the key read by rustls' PEM parser.
//! - A question is created with `POST /v1/{space}/messages?messageId=client-<question id>&requestId=<question id>`
//!   (<https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create>): the message's
//!   name is then `{space}/messages/client-<question id>`, chosen by qrelay. A second create with the same
//!   `messageId` is refused with `409 ALREADY_EXISTS`, and the same `requestId` answers the message already
//!   created: either way the question is in the space once. An ambiguous outcome (a timeout, a lost answer, a 5xx)
//!   is settled with `GET /v1/{space}/messages/client-<question id>`, which is also [`ChatPoster::is_posted`]:
//!   [`Guarantee::ExactlyOnce`].
//! - Channels are spaces, named `spaces/AAAA…` in ROOMS (`rust-101=spaces/AAAAxxxxxxx`; the space's URL shows it).
//! - Text is Google Chat's format ([`Dialect::GoogleChat`]: `<users/all>` and `<url|label>` defused), at most
//!   32,000 bytes. The create method has no switch for link previews: Google Chat previews links only for the apps
//!   and domains a Workspace administrator configured, and a question's links are defused so that none is a link.
//! - Answers: `401` fetches a new token once; `403 PERMISSION_DENIED` (the app is not in the space) and `404` (no
//!   such space) are the instructor's to fix; `429 RESOURCE_EXHAUSTED` waits (`Retry-After` when given); `5xx`
//!   retries; `400` refuses the message for good.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::secret::{ChatSecret, SecretSource, ServiceAccountKey};
use super::{ChatError, ChatMessage, ChatPoster, Delivery, Dialect, Guarantee, rate_limit_reset};
use crate::domain::QuestionId;

/// The Google Chat API's host.
pub const API_BASE: &str = "https://chat.googleapis.com";
/// Google's token endpoint, when the key names none.
pub const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// What a Chat app asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/chat.bot";

/// How long before its expiry a token is replaced.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The message id qrelay gives question `id`: Google wants `client-` and lowercase letters, digits and hyphens.
pub fn message_id(id: QuestionId) -> String {
    format!("client-{id}")
}

/// Posts through the Google Chat API as a Chat app.
pub struct GoogleChat {
    http: reqwest::Client,
    base_url: String,
    secrets: Arc<dyn SecretSource>,
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: String,
    until: Instant,
}

impl std::fmt::Debug for GoogleChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleChat")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

impl GoogleChat {
    /// `base_url` is [`API_BASE`] but in tests. The secret is read on first use.
    pub fn new(http: reqwest::Client, base_url: &str, secrets: Arc<dyn SecretSource>) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secrets,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// An access token: the one held, unless it is about to expire or `fresh` is asked for (after a 401).
    async fn access_token(&self, fresh: bool) -> Result<String, ChatError> {
        let mut held = self.token.lock().await;
        if let (Some(token), false) = (held.as_ref(), fresh) {
            if Instant::now() + TOKEN_MARGIN < token.until {
                return Ok(token.value.clone());
            }
        }
        let secret = self
            .secrets
            .fetch()
            .await
            .map_err(|e| ChatError::Unavailable(format!("{e:#}")))?;
        let ChatSecret::ServiceAccount { service_account } = secret else {
            return Err(ChatError::Misconfigured(
                "the chat secret holds no service_account (it is the secret of another kind of chat)".into(),
            ));
        };
        let token_uri = service_account
            .token_uri
            .clone()
            .unwrap_or_else(|| TOKEN_URI.to_owned());
        let assertion = assertion(&service_account, &token_uri, SystemTime::now())?;
        let response = self
            .http
            .post(&token_uri)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
                .map_err(|e| ChatError::Misconfigured(format!("the token request: {e}")))?,
            )
            .send()
            .await
            .map_err(|e| unavailable("getting an access token", &e))?;
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ChatError::Unavailable(format!(
                "Google's token endpoint answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            // invalid_grant: a deleted or disabled key, a wrong e-mail, a clock far off.
            return Err(ChatError::Misconfigured(format!(
                "Google refused the service account's key (HTTP {status}): check the key in the secret and that the \
                 service account exists"
            )));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|_| ChatError::Unavailable("Google's token answer could not be read".into()))?;
        let lifetime = Duration::from_secs(answer.expires_in.clamp(60, 3600));
        *held = Some(AccessToken {
            value: answer.access_token.clone(),
            until: Instant::now() + lifetime,
        });
        Ok(answer.access_token)
    }

    fn messages_url(&self, space: &str) -> String {
        format!("{}/v1/{space}/messages", self.base_url)
    }

    /// Whether question `id` is in `space`.
    async fn find(&self, token: &str, space: &str, id: QuestionId) -> Result<bool, ChatError> {
        let url = format!("{}/{}", self.messages_url(space), message_id(id));
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| unavailable("reading the message", &e))?;
        match response.status() {
            StatusCode::OK => Ok(true),
            // No such message (an unknown space shows itself on the create that follows).
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(classify(space, response).await),
        }
    }

    async fn create(&self, token: &str, space: &str, id: QuestionId, text: &str) -> Result<Delivery, ChatError> {
        let response = self
            .http
            .post(self.messages_url(space))
            .bearer_auth(token)
            .query(&[("messageId", message_id(id)), ("requestId", id.to_string())])
            .json(&json!({ "text": text }))
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => Ok(Delivery::Posted),
            Ok(response) if response.status() == StatusCode::CONFLICT => Ok(Delivery::AlreadyPosted),
            Ok(response) => match classify(space, response).await {
                // Stored or not: ask.
                e @ ChatError::Unavailable(_) => match self.find(token, space, id).await {
                    Ok(true) => Ok(Delivery::AlreadyPosted),
                    _ => Err(e),
                },
                e => Err(e),
            },
            Err(e) => {
                let failure = unavailable("posting", &e);
                match self.find(token, space, id).await {
                    Ok(true) => Ok(Delivery::AlreadyPosted),
                    _ => Err(failure),
                }
            }
        }
    }

    /// Runs `call` with an access token, and once more with a new one if Google refused it.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ChatError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ChatError>>,
    {
        let token = self.access_token(false).await?;
        match call(token).await {
            Err(ChatError::Unauthorized) => call(self.access_token(true).await?).await,
            other => other,
        }
    }
}

#[async_trait]
impl ChatPoster for GoogleChat {
    fn guarantee(&self) -> Guarantee {
        Guarantee::ExactlyOnce
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        check_space(channel)?;
        let text = message
            .text_for(Dialect::GoogleChat)
            .map_err(|e| ChatError::Rejected(e.to_string()))?;
        self.with_token(|token| {
            let text = text.as_str();
            async move { self.create(&token, channel, id, text).await }
        })
        .await
    }

    async fn is_posted(&self, id: QuestionId, channel: &str) -> Result<bool, ChatError> {
        check_space(channel)?;
        self.with_token(|token| async move { self.find(&token, channel, id).await })
            .await
    }
}

/// A space's resource name: `spaces/` and its id.
fn check_space(channel: &str) -> Result<(), ChatError> {
    let valid = channel
        .strip_prefix("spaces/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if valid {
        Ok(())
    } else {
        Err(ChatError::Misconfigured(format!(
            "{channel:?} is not a Google Chat space: ROOMS names spaces as spaces/<id> (room=spaces/AAAAxxxxxxx; the \
             space's URL in Google Chat shows the id)"
        )))
    }
}

/// The error for a Chat API answer that is not a success.
async fn classify(space: &str, response: reqwest::Response) -> ChatError {
    let status = response.status();
    let reset = rate_limit_reset(response.headers());
    match status {
        StatusCode::UNAUTHORIZED => ChatError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => ChatError::RateLimited { reset },
        StatusCode::FORBIDDEN => ChatError::Misconfigured(format!(
            "Google Chat refused the app in {space} (403): add the Chat app to the space"
        )),
        StatusCode::NOT_FOUND => ChatError::Misconfigured(format!(
            "Google Chat has no space {space} (404), or the app can't see it: check ROOMS"
        )),
        s if s.is_server_error() => ChatError::Unavailable(format!("Google Chat answered HTTP {s}")),
        s => ChatError::Rejected(format!("Google Chat refused the message (HTTP {s})")),
    }
}

/// The signed assertion a service account exchanges for an access token (a JWT, RS256).
fn assertion(key: &ServiceAccountKey, audience: &str, now: SystemTime) -> Result<String, ChatError> {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad_key = || {
        ChatError::Misconfigured(
            "the service account's private_key in the secret is not an RSA key in PEM (PKCS#8) form".into(),
        )
    };
    let der = PrivatePkcs8KeyDer::from_pem_slice(key.private_key.as_bytes()).map_err(|_| bad_key())?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| bad_key())?;
    let iat = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(json!({ "alg": "RS256", "typ": "JWT" }).to_string());
    let claims = b64.encode(
        json!({ "iss": key.client_email, "scope": SCOPE, "aud": audience, "iat": iat, "exp": iat + 3600 }).to_string(),
    );
    let signed = format!("{header}.{claims}");
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| bad_key())?;
    Ok(format!("{signed}.{}", b64.encode(signature)))
}

fn unavailable(call: &str, e: &reqwest::Error) -> ChatError {
    super::unavailable(&format!("Google Chat: {call}"), e)
}

#[cfg(test)]
mod tests;
