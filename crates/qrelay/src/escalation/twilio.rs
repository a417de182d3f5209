//! Twilio's REST API for the calls (`POST /2010-04-01/Accounts/{sid}/Calls.json` with inline TwiML), and its
//! request signature for the callbacks.
//!
//! The account SID and auth token are in a Secrets Manager secret (`{"account_sid": "AC…", "auth_token": "…"}`),
//! read on first use and kept for the execution environment; they never reach a log.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::Phone;

/// Places a phone call.
#[async_trait]
pub trait Caller: Send + Sync {
    /// Calls `to`, speaking `twiml`; answers the call's id.
    async fn call(&self, to: &Phone, twiml: &str) -> Result<String, CallError>;
}

/// Why a call could not be placed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("Twilio could not be reached: {0}")]
    Unavailable(String),
    #[error("Twilio refused the call: {0}")]
    Refused(String),
    #[error("the Twilio secret: {0}")]
    Secret(String),
}

/// The Twilio account, as the secret holds it.
#[derive(Clone, Deserialize)]
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: String,
}

impl std::fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioCredentials {
    /// Parses the secret's JSON; the error names what is missing, never a value.
    pub fn parse(json: &str) -> Result<Self, CallError> {
        let credentials: Self = serde_json::from_str(json)
            .map_err(|_| CallError::Secret(r#"expected {"account_sid": "AC…", "auth_token": "…"}"#.into()))?;
        if !credentials.account_sid.starts_with("AC") || credentials.auth_token.trim().is_empty() {
            return Err(CallError::Secret(
                "account_sid must start with AC and auth_token must not be empty".into(),
            ));
        }
        Ok(credentials)
    }
}

/// Where the credentials come from: the secret (read once), or given (the local runs and tests).
pub struct TwilioSecret {
    client: Option<(aws_sdk_secretsmanager::Client, String)>,
    cached: tokio::sync::OnceCell<TwilioCredentials>,
}

impl std::fmt::Debug for TwilioSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSecret").finish_non_exhaustive()
    }
}

impl TwilioSecret {
    pub fn secrets_manager(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client: Some((client, secret_id.into())),
            cached: tokio::sync::OnceCell::new(),
        }
    }

    pub fn given(credentials: TwilioCredentials) -> Self {
        Self {
            client: None,
            cached: tokio::sync::OnceCell::new_with(Some(credentials)),
        }
    }

    pub async fn get(&self) -> Result<&TwilioCredentials, CallError> {
        self.cached
            .get_or_try_init(|| async {
                let (client, id) = self
                    .client
                    .as_ref()
                    .ok_or_else(|| CallError::Secret("no credentials".into()))?;
                let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
                    CallError::Secret(format!(
                        "reading {id}: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ))
                })?;
                TwilioCredentials::parse(out.secret_string().unwrap_or_default())
            })
            .await
    }
}

/// Calls through Twilio's REST API from the number `from`.
pub struct TwilioCaller {
    http: reqwest::Client,
    /// `https://api.twilio.com` (a fake's address in tests).
    base_url: String,
    from: Phone,
    secret: Arc<TwilioSecret>,
}

impl std::fmt::Debug for TwilioCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCaller")
            .field("base_url", &self.base_url)
            .field("from", &self.from.masked())
            .finish_non_exhaustive()
    }
}

/// Twilio's API.
pub const API_BASE: &str = "https://api.twilio.com";

impl TwilioCaller {
    pub fn new(http: reqwest::Client, base_url: &str, from: Phone, secret: Arc<TwilioSecret>) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            from,
            secret,
        }
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize, Default)]
struct TwilioErrorBody {
    code: Option<u64>,
}

#[async_trait]
impl Caller for TwilioCaller {
    async fn call(&self, to: &Phone, twiml: &str) -> Result<String, CallError> {
        let credentials = self.secret.get().await?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base_url, credentials.account_sid
        );
        let response = self
            .http
            .post(url)
            .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([("To", to.as_str()), ("From", self.from.as_str()), ("Twiml", twiml)])
                    .map_err(|e| CallError::Refused(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| CallError::Unavailable(if e.is_timeout() { "timed out" } else { "failed" }.into()))?;
        let status = response.status();
        if status.is_success() {
            let created: Created = response
                .json()
                .await
                .map_err(|e| CallError::Unavailable(format!("an unreadable answer: {e}")))?;
            return Ok(created.sid);
        }
        // Twilio's code only: its message may quote the number called, which the logs show masked.
        let body: TwilioErrorBody = response.json().await.unwrap_or_default();
        let detail = match body.code {
            Some(code) => format!("HTTP {status}, Twilio error {code} (https://www.twilio.com/docs/errors/{code})"),
            None => format!("HTTP {status}"),
        };
        if status.is_server_error() || status.as_u16() == 429 {
            Err(CallError::Unavailable(detail))
        } else {
            Err(CallError::Refused(detail))
        }
    }
}

/// Twilio's request signature: HMAC-SHA1 with the auth token over the full URL followed by each POST parameter's
/// name and value, sorted by name, then base64.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = ring::hmac::sign(&key(auth_token), signed_data(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `header` is Twilio's signature of this request, compared in constant time.
pub(super) fn verify(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    ring::hmac::verify(&key(auth_token), signed_data(url, params).as_bytes(), &given).is_ok()
}

fn key(auth_token: &str) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

fn signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    data
}
