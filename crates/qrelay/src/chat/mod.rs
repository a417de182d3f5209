//! The port to the team chat, and its adapters: Rocket.Chat's REST API (idempotent) and incoming webhooks
//! (Rocket.Chat, Slack, Mattermost; not idempotent).

pub mod discord;
pub mod google_chat;
pub mod mattermost;
mod render;
pub mod rocketchat;
pub mod secret;
pub mod slack;
pub mod teams;
pub mod webhook;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use render::{ChatMessage, Dialect, MessageTooLong};

use crate::domain::QuestionId;
use secret::SecretSource;

/// Which kind of chat questions are posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatKind {
    /// Rocket.Chat's REST API at `url`, with a bot user's token: idempotent.
    RocketChat { url: String },
    /// An incoming webhook whose URL is in the secret: simplest, not idempotent.
    Webhook,
    /// Discord's bot API with a bot token; channels named by id: checked retry.
    Discord,
    /// A Microsoft Teams Workflows webhook whose URL is in the secret: at least once, delivery not confirmed.
    Teams,
    /// Slack's Web API with a bot token (`xoxb-…`); channels named by ID: checked retry.
    Slack,
    /// Mattermost's REST API at `url` with a bot account's token; channels named `team/channel`: checked retry.
    Mattermost { url: String },
    /// The Google Chat API as a Chat app with a service account; channels are spaces (`spaces/…`): exactly once.
    GoogleChat,
}

impl ChatKind {
    /// How the chat is named to people (the local runner's banner, logs).
    pub fn label(&self) -> &'static str {
        match self {
            Self::RocketChat { .. } => "Rocket.Chat",
            Self::Webhook => "webhook",
            Self::Discord => "Discord",
            Self::Teams => "Microsoft Teams (Workflows webhook)",
            Self::Slack => "Slack",
            Self::Mattermost { .. } => "Mattermost",
            Self::GoogleChat => "Google Chat",
        }
    }
}

impl ChatKind {
    /// What the kind's adapter promises, without building it (the console shows it). A test checks it against
    /// each adapter's own [`ChatPoster::guarantee`].
    pub fn guarantee(&self) -> Guarantee {
        match self {
            Self::RocketChat { .. } | Self::GoogleChat => Guarantee::ExactlyOnce,
            Self::Slack | Self::Mattermost { .. } | Self::Discord => Guarantee::CheckedRetry,
            Self::Webhook => Guarantee::AtLeastOnce,
            Self::Teams => Guarantee::AtLeastOnceUnconfirmed,
        }
    }
}

/// The one place a [`ChatPoster`] is built from its kind: the consumer Lambda and the local runner both call it,
/// so they can't build the adapters differently.
pub fn poster(kind: &ChatKind, http: reqwest::Client, secrets: Arc<dyn SecretSource>) -> Arc<dyn ChatPoster> {
    match kind {
        ChatKind::RocketChat { url } => Arc::new(rocketchat::RocketChat::new(http, url, secrets)),
        ChatKind::Webhook => Arc::new(webhook::Webhook::new(http, secrets)),
        ChatKind::Discord => Arc::new(discord::Discord::new(http, discord::API_BASE, secrets)),
        ChatKind::Teams => Arc::new(teams::Teams::new(http, secrets)),
        ChatKind::Slack => Arc::new(slack::Slack::new(http, slack::API_BASE, secrets)),
        ChatKind::Mattermost { url } => Arc::new(mattermost::Mattermost::new(http, url, secrets)),
        ChatKind::GoogleChat => Arc::new(google_chat::GoogleChat::new(http, google_chat::API_BASE, secrets)),
    }
}

/// What a chat target can promise about each question, as the README and the instructor's console state it.
/// An adapter declares the most it can keep, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guarantee {
    /// Each question appears once: the chat stores our id for the message and refuses or reports a second one,
    /// and an ambiguous outcome is settled by asking for that id.
    ExactlyOnce,
    /// Before a retry, the chat is searched for the question: it appears once, unless a retry races a first
    /// request still in flight.
    CheckedRetry,
    /// A retry after a lost answer posts the question a second time.
    AtLeastOnce,
    /// As [`Self::AtLeastOnce`], and the chat's acceptance does not even confirm delivery: the post may still fail
    /// later, out of qrelay's sight.
    AtLeastOnceUnconfirmed,
}

impl Guarantee {
    /// The guarantee in a few words, for logs, the README and the console.
    pub fn label(self) -> &'static str {
        match self {
            Self::ExactlyOnce => "exactly once",
            Self::CheckedRetry => "checked retry (once, unless a retry races a request in flight)",
            Self::AtLeastOnce => "at least once (a lost answer means a second post)",
            Self::AtLeastOnceUnconfirmed => "at least once, delivery not confirmed",
        }
    }
}

/// Posts questions to the chat.
#[async_trait]
pub trait ChatPoster: Send + Sync {
    /// What this chat can promise. The default claims the least.
    fn guarantee(&self) -> Guarantee {
        Guarantee::AtLeastOnce
    }

    /// Posts `message` for question `id` to `channel`. An idempotent poster returns
    /// [`Delivery::AlreadyPosted`] when the question is already in the chat, and never posts it twice.
    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError>;

    /// Whether question `id` is in `channel` already: asked before posting a question SQS delivers again, since an
    /// earlier invocation may have posted it and been stopped before it could say so. A chat that can't be asked
    /// (an incoming webhook) answers `false`, and the post decides.
    async fn is_posted(&self, _id: QuestionId, _channel: &str) -> Result<bool, ChatError> {
        Ok(false)
    }

    /// What the class made of question `id` in the chat, for the after-class digest: `None` when this chat can't
    /// be asked (an incoming webhook), or when the question is not (or no longer) there.
    async fn signals(&self, _id: QuestionId, _channel: &str) -> Result<Option<Signals>, ChatError> {
        Ok(None)
    }
}

/// A question's reception in the chat, read back after class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// People who reacted 👍 to it.
    pub votes: u32,
    /// Someone reacted ✅ or replied in its thread (anyone but qrelay's own bot).
    pub answered: bool,
}

/// A successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Posted now.
    Posted,
    /// Found already in the chat (an earlier delivery of the same question succeeded); nothing was posted.
    AlreadyPosted,
}

/// Why a question could not be posted, classified by what the consumer should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// The chat is down, slow or failing (connection refused, timeout, 5xx): retry later with backoff.
    #[error("the chat is unavailable: {0}")]
    Unavailable(String),
    /// The chat asked us to slow down: retry no earlier than `reset` (when it said).
    #[error("the chat is rate limiting us")]
    RateLimited { reset: Option<SystemTime> },
    /// The credentials were refused, even after re-reading the secret: retry later (the instructor can fix it).
    #[error("the chat refused our credentials (HTTP 401); check the chat secret")]
    Unauthorized,
    /// The chat refused the post for a reason the instructor can fix (unknown channel, bot not a member): retry
    /// later, so the question waits for the fix rather than being lost.
    #[error("the chat refused the post: {0}")]
    Misconfigured(String),
    /// The chat will never accept this message as it is: send it to the dead-letter queue now.
    #[error("the chat rejected the message for good: {0}")]
    Rejected(String),
}

impl ChatError {
    /// How long to wait before trying again, if the chat said.
    pub(crate) fn retry_at(&self) -> Option<SystemTime> {
        match self {
            Self::RateLimited { reset } => *reset,
            _ => None,
        }
    }

    /// Whether the rest of a batch should not even be attempted: the chat as a whole is unreachable or refusing
    /// us, so trying every other message would only spend the Lambda's time and the chat's patience.
    pub(crate) fn affects_whole_chat(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::RateLimited { .. } | Self::Unauthorized
        )
    }
}

/// Per-request timeout for chat calls: short enough that a batch of ten stays well inside the consumer's
/// timeout even when every call times out (the batch stops at the first such failure anyway).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// How long an idle connection to the chat stays in the pool. Servers close idle keep-alive connections on their
/// side (Node, which Rocket.Chat runs on, after 5 s; nginx after 75 s; load balancers drop them silently, often
/// without telling either end), and Lambda freezes the process between invocations, so it never sees them go.
/// Below the shortest of those, a connection is only reused within a burst of posts, when it is surely alive.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A request that failed this soon, neither timing out nor failing to connect, failed on a connection the chat
/// had already dropped: it is sent again at once, once. Bounded so that a retry can't push the consumer past the
/// time it keeps in reserve before its deadline by more than this.
pub const STALE_RETRY_WINDOW: Duration = Duration::from_secs(1);

/// Builds the HTTP client used for the chat, once per execution environment: the TLS configuration of
/// [`crate::tls`], so it fails only on an unusable `SSL_CERT_FILE`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, crate::tls::TlsSetupError> {
    let tls = crate::tls::client_config()?;
    reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("qrelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| crate::tls::TlsSetupError::Client(e.to_string()))
}

/// A chat request that got no answer, as the consumer logs it: what was being done (`call`) and how it failed,
/// never the URL (reqwest's errors carry it, and a webhook's URL holds its token).
pub(crate) fn unavailable(call: &str, e: &reqwest::Error) -> ChatError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    ChatError::Unavailable(format!("{call} {kind}"))
}

/// Reads Discord's `X-RateLimit-Reset-After` (seconds from now, a float: Discord's own `X-RateLimit-Reset` is epoch
/// seconds, not milliseconds, so it is read first), Rocket.Chat's `X-RateLimit-Reset` (epoch milliseconds) or a
/// `Retry-After` in seconds (Slack).
pub(crate) fn rate_limit_reset(headers: &reqwest::header::HeaderMap) -> Option<SystemTime> {
    let reset_after = headers
        .get("x-ratelimit-reset-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < 86_400.0);
    if let Some(secs) = reset_after {
        return Some(SystemTime::now() + Duration::from_secs_f64(secs));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(ms) = header("x-ratelimit-reset") {
        return Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    }
    header("retry-after").map(|secs| SystemTime::now() + Duration::from_secs(secs))
}
