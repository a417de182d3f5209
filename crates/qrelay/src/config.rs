//! Configuration read once at cold start from environment variables, with the variable's name in every error so
//! that a misconfigured deployment fails its first start with a message that says what to fix.

use std::str::FromStr;

use crate::chat::ChatKind;
use crate::consumer::Backoff;
use crate::domain::{Limits, Nickname, QuestionText, Rooms};
use crate::redrive::RedriveMode;

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where configuration values come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }
}

/// Reads a required variable.
pub fn required(src: &dyn Source, name: &'static str) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing(name))
}

/// Reads and parses an optional variable, falling back to `default`.
pub fn parsed_or<T: FromStr>(src: &dyn Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// Reads a whole number within `1..=max`.
fn bounded(src: &dyn Source, name: &'static str, default: usize, max: usize) -> Result<usize, ConfigError> {
    let value = parsed_or(src, name, default)?;
    if value == 0 || value > max {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is not between 1 and {max}"),
        });
    }
    Ok(value)
}

/// The configured rooms (`ROOMS`), shared by intake and consumer.
pub fn rooms(src: &dyn Source) -> Result<Rooms, ConfigError> {
    Rooms::parse(&required(src, "ROOMS")?).map_err(|e| ConfigError::Invalid {
        name: "ROOMS",
        reason: e.to_string(),
    })
}

/// `MAX_QUESTION_CHARS` (default 1000, at most 1800) and `MAX_NICKNAME_CHARS` (default 40, at most 100).
pub fn limits(src: &dyn Source) -> Result<Limits, ConfigError> {
    Ok(Limits {
        question_chars: bounded(
            src,
            "MAX_QUESTION_CHARS",
            QuestionText::DEFAULT_MAX_CHARS,
            QuestionText::MAX_CHARS_LIMIT,
        )?,
        nickname_chars: bounded(
            src,
            "MAX_NICKNAME_CHARS",
            Nickname::DEFAULT_MAX_CHARS,
            Nickname::MAX_CHARS_LIMIT,
        )?,
    })
}

/// `CHAT_KIND` (`rocketchat`, the default, `webhook`, `discord`, `teams`, `slack`, `mattermost` or `googlechat`) and what the
/// kind needs beside its secret: `CHAT_URL` for Rocket.Chat and Mattermost.
pub fn chat_kind(src: &dyn Source) -> Result<ChatKind, ConfigError> {
    Ok(match src.get("CHAT_KIND").as_deref().map(str::trim) {
        None | Some("rocketchat") => ChatKind::RocketChat { url: chat_url(src)? },
        Some("webhook") => ChatKind::Webhook,
        Some("discord") => ChatKind::Discord,
        Some("teams") => ChatKind::Teams,
        Some("slack") => ChatKind::Slack,
        Some("mattermost") => ChatKind::Mattermost { url: chat_url(src)? },
        Some("googlechat") => ChatKind::GoogleChat,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "CHAT_KIND",
                reason: format!(
                    "{other:?} is not one of rocketchat, webhook, discord, teams, slack, mattermost, googlechat"
                ),
            });
        }
    })
}

/// A `MAX_QUESTION_CHARS` above what the chat can show, lowered so that every accepted question fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionCap {
    pub configured: usize,
    pub cap: usize,
    /// The `CHAT_KIND` that imposes it.
    pub chat_kind: String,
}

impl std::fmt::Display for QuestionCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MAX_QUESTION_CHARS {} lowered to {}: the longest question a {} message always has room for",
            self.configured, self.cap, self.chat_kind
        )
    }
}

/// [`limits`], with the question limit lowered to what `CHAT_KIND` (default `rocketchat`) can show, so that the
/// intake refuses, with a clear error, a question the chat could not take rather than accept it and dead-letter
/// it. A `webhook` may lead to any of five chats and its URL is in the secret, which the intake can't read: it
/// gets the strictest of them, Discord's.
pub fn limits_for_chat(src: &dyn Source) -> Result<(Limits, Option<QuestionCap>), ConfigError> {
    use crate::chat::Dialect;
    let limits = limits(src)?;
    let kind = src.get("CHAT_KIND").map(|k| k.trim().to_owned());
    let dialects: &[Dialect] = match kind.as_deref() {
        None | Some("rocketchat") => &[Dialect::RocketChat],
        Some("mattermost") => &[Dialect::Mattermost],
        Some("slack") => &[Dialect::Slack],
        Some("discord") => &[Dialect::Discord],
        Some("teams") => &[Dialect::Teams],
        Some("googlechat") => &[Dialect::GoogleChat],
        Some("webhook") => &[
            Dialect::RocketChat,
            Dialect::Mattermost,
            Dialect::Slack,
            Dialect::Discord,
            Dialect::GoogleChat,
        ],
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "CHAT_KIND",
                reason: format!("{other:?} is not a kind of chat qrelay posts to"),
            });
        }
    };
    let cap = dialects
        .iter()
        .map(|d| d.max_question_chars())
        .min()
        .unwrap_or(QuestionText::MAX_CHARS_LIMIT);
    if limits.question_chars <= cap {
        return Ok((limits, None));
    }
    let notice = QuestionCap {
        configured: limits.question_chars,
        cap,
        chat_kind: kind.unwrap_or_else(|| "rocketchat".to_owned()),
    };
    Ok((
        Limits {
            question_chars: cap,
            ..limits
        },
        Some(notice),
    ))
}

/// `CHAT_URL`: the Rocket.Chat server, which must be `https://`. The bot's token goes with every request to it, so
/// over plain HTTP anyone on the way could read it. A loopback address (`http://127.0.0.1`, `http://localhost`,
/// `http://[::1]`, any port) is the exception: the local runner and the tests' fake chat listen there, and nothing
/// sent to it leaves the machine. `template.yaml`'s `ChatUrl` pattern accepts the same URLs.
pub fn chat_url(src: &dyn Source) -> Result<String, ConfigError> {
    let name = ConsumerConfig::REQUIRED_FOR_ROCKETCHAT;
    let raw = required(src, name)?;
    let invalid = |why: &str| ConfigError::Invalid {
        name,
        reason: format!(
            "{raw:?} {why}: it must be an https:// URL such as https://chat.example.com, since the bot's token goes \
             with every request (plain http:// only for a loopback address: 127.0.0.1, localhost, [::1])"
        ),
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(raw),
        "http" if loopback => Ok(raw),
        "http" => Err(invalid("is plain HTTP to a host that is not loopback")),
        _ => Err(invalid("is not an HTTP URL")),
    }
}

/// An `https://` URL from `name` (plain `http://` only to a loopback address, as for [`chat_url`]).
fn secure_url(src: &dyn Source, name: &'static str, default: Option<&str>) -> Result<String, ConfigError> {
    let raw = match (src.get(name), default) {
        (Some(raw), _) => raw.trim().to_owned(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => return Err(ConfigError::Missing(name)),
    };
    let invalid = |why: &str| ConfigError::Invalid {
        name,
        reason: format!("{raw:?} {why}: it must be an https:// URL (plain http:// only for a loopback address)"),
    };
    let url = reqwest::Url::parse(&raw).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(raw),
        "http" if loopback => Ok(raw),
        _ => Err(invalid("is not https")),
    }
}

/// The escalation function's configuration.
#[derive(Debug, Clone)]
pub struct EscalationConfig {
    /// `CONTROL_TABLE`: where the incident is kept.
    pub control_table: String,
    /// `ESCALATION_PHONES` (comma-separated, E.164), `ESCALATE_AFTER_MINUTES` (default 10, 1 to 240),
    /// `ACK_WAIT_MINUTES` (default 3, 1 to 30), `ESCALATION_ALARMS` (the chat-down alarms' names, comma-separated),
    /// `ESCALATION_CALLBACK_URL`, `ESCALATION_LANGUAGE` (`ja`, the default, or `en`) and `ESCALATION_ROUNDS`
    /// (default 3, 1 to 10).
    pub rotation: crate::escalation::Rotation,
    /// `TWILIO_SECRET_ID`: the secret with the account SID and auth token.
    pub twilio_secret_id: String,
    /// `TWILIO_FROM`: the Twilio number calls come from (E.164).
    pub twilio_from: crate::escalation::Phone,
    /// `TWILIO_API_URL`: Twilio's API (default `https://api.twilio.com`; a fake's address in tests).
    pub twilio_api_url: String,
}

impl EscalationConfig {
    pub const REQUIRED: &'static [&'static str] = &[
        "CONTROL_TABLE",
        "ESCALATION_PHONES",
        "ESCALATION_ALARMS",
        "ESCALATION_CALLBACK_URL",
        "TWILIO_SECRET_ID",
        "TWILIO_FROM",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        use crate::escalation::{Phone, Rotation, Voice};
        let phone =
            |name: &'static str, raw: &str| Phone::parse(raw).map_err(|reason| ConfigError::Invalid { name, reason });
        let phones = required(src, "ESCALATION_PHONES")?
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| phone("ESCALATION_PHONES", p))
            .collect::<Result<Vec<_>, _>>()?;
        if phones.is_empty() {
            return Err(ConfigError::Invalid {
                name: "ESCALATION_PHONES",
                reason: "no phone number given".into(),
            });
        }
        let alarms: std::collections::BTreeSet<String> = required(src, "ESCALATION_ALARMS")?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let minutes = |name, default, min, max| -> Result<std::time::Duration, ConfigError> {
            Ok(std::time::Duration::from_secs(
                bounded_from(src, name, default, min, max)? as u64 * 60,
            ))
        };
        let voice = match src.get("ESCALATION_LANGUAGE").as_deref().map(str::trim) {
            None | Some("ja") => Voice::Ja,
            Some("en") => Voice::En,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "ESCALATION_LANGUAGE",
                    reason: format!("{other:?} is not ja or en"),
                });
            }
        };
        Ok(Self {
            control_table: required(src, "CONTROL_TABLE")?.trim().to_owned(),
            rotation: Rotation {
                phones,
                after: minutes("ESCALATE_AFTER_MINUTES", 10, 1, 240)?,
                ack_wait: minutes("ACK_WAIT_MINUTES", 3, 1, 30)?,
                alarms,
                callback_url: secure_url(src, "ESCALATION_CALLBACK_URL", None)?,
                voice,
                rounds: bounded_from(src, "ESCALATION_ROUNDS", 3, 1, 10)? as u32,
            },
            twilio_secret_id: required(src, "TWILIO_SECRET_ID")?.trim().to_owned(),
            twilio_from: phone("TWILIO_FROM", &required(src, "TWILIO_FROM")?)?,
            twilio_api_url: secure_url(src, "TWILIO_API_URL", Some(crate::escalation::TWILIO_API))?,
        })
    }
}

/// The intake function's configuration.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `TOPIC_ARN`: the SNS topic questions are published to.
    pub topic_arn: String,
    /// `ROOMS`: see [`Rooms::parse`].
    pub rooms: Rooms,
    /// `MAX_QUESTION_CHARS` and `MAX_NICKNAME_CHARS`, the question's lowered to what `CHAT_KIND` can show.
    pub limits: Limits,
    /// Set when `MAX_QUESTION_CHARS` was lowered for the chat: worth a warning at start.
    pub question_cap: Option<QuestionCap>,
    /// `CONTROL_TABLE`: the instructor's table (room states); without it every room is open.
    pub control_table: Option<String>,
    /// `COGNITO_REGION` and `COGNITO_CLIENT_ID`: where the console page (`GET /instructor`) signs instructors in;
    /// without them the intake serves no console page.
    pub console_page: Option<crate::console::PageAuth>,
}

impl IntakeConfig {
    /// The variables without which the intake function can't start. The template test checks that the SAM
    /// template sets each of them.
    pub const REQUIRED: &'static [&'static str] = &["TOPIC_ARN", "ROOMS"];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let (limits, question_cap) = limits_for_chat(src)?;
        let console_page = match (src.get("COGNITO_REGION"), src.get("COGNITO_CLIENT_ID")) {
            (Some(region), Some(client_id)) => {
                let (region, client_id) = (region.trim(), client_id.trim());
                // Both end up in the page and its Content-Security-Policy: nothing but what AWS uses in them.
                let plain = |s: &str, extra: fn(char) -> bool| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra(c))
                };
                if !plain(region, |c| c == '-') {
                    return Err(ConfigError::Invalid {
                        name: "COGNITO_REGION",
                        reason: format!("{region:?} is not an AWS region name"),
                    });
                }
                if !plain(client_id, |c| c.is_ascii_uppercase()) {
                    return Err(ConfigError::Invalid {
                        name: "COGNITO_CLIENT_ID",
                        reason: "is not a Cognito app client id (letters and digits)".into(),
                    });
                }
                Some(crate::console::PageAuth::Cognito {
                    region: region.to_owned(),
                    client_id: client_id.to_owned(),
                })
            }
            (None, None) => None,
            (None, Some(_)) => return Err(ConfigError::Missing("COGNITO_REGION")),
            (Some(_), None) => return Err(ConfigError::Missing("COGNITO_CLIENT_ID")),
        };
        Ok(Self {
            topic_arn: required(src, "TOPIC_ARN")?,
            rooms: rooms(src)?,
            limits,
            question_cap,
            control_table: src.get("CONTROL_TABLE").map(|t| t.trim().to_owned()),
            console_page,
        })
    }
}

/// The consumer function's configuration.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `ROOMS`: the same list the intake function has.
    pub rooms: Rooms,
    /// `CHAT_KIND` (`rocketchat`, the default, `webhook`, `discord`, `teams`, `slack` or `mattermost`) and, for
    /// Rocket.Chat and Mattermost, `CHAT_URL`.
    pub chat: ChatKind,
    /// `CHAT_SECRET_ID`: name or ARN of the Secrets Manager secret with the chat credentials.
    pub chat_secret_id: String,
    /// `TIME_ZONE`: how submission times are shown in the chat (IANA name, default `Asia/Tokyo`).
    pub time_zone: jiff::tz::TimeZone,
    /// `QUEUE_URL`: the queue the consumer reads (to set retry delays).
    pub queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL`: where undeliverable messages go at once.
    pub dead_letter_queue_url: String,
    /// `BACKOFF_BASE_SECONDS` (default 10) and `BACKOFF_MAX_SECONDS` (default 900).
    pub backoff: Backoff,
    /// `CHAT_TIMEOUT_MS`: per-request timeout for chat calls (default 4000).
    pub chat_timeout: std::time::Duration,
    /// `CONTROL_TABLE`, `FLOOD_THRESHOLD` and `HELD_DAYS`: the instructor's control; without the table every room
    /// is open and nothing is held.
    pub control: Option<ControlConfig>,
}

/// The consumer's side of the instructor's control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// `CONTROL_TABLE`: the DynamoDB table.
    pub table: String,
    /// `FLOOD_THRESHOLD` (default 20, 2 to 10000): more distinct questions than this in a room in one minute trip
    /// the flood breaker.
    pub flood_threshold: u32,
    /// `HELD_DAYS` (default 14, 1 to 365): how long a held question waits for a decision.
    pub held_for: std::time::Duration,
    /// `RETENTION_DAYS` (default 30, 0 to 365): how long a delivered question is kept for the digest and the
    /// export; 0 keeps none.
    pub keep_delivered_for: Option<std::time::Duration>,
}

impl ControlConfig {
    fn from_source(src: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let Some(table) = src.get("CONTROL_TABLE") else {
            return Ok(None);
        };
        Ok(Some(Self {
            table: table.trim().to_owned(),
            flood_threshold: flood_threshold(src)?,
            held_for: std::time::Duration::from_secs(bounded_from(src, "HELD_DAYS", 14, 1, 365)? as u64 * 86_400),
            keep_delivered_for: retention(src)?,
        }))
    }
}

/// `TIME_ZONE`: the course's time zone (IANA name, default `Asia/Tokyo`).
pub fn time_zone(src: &dyn Source) -> Result<jiff::tz::TimeZone, ConfigError> {
    let name = src.get("TIME_ZONE").unwrap_or_else(|| "Asia/Tokyo".to_owned());
    jiff::tz::TimeZone::get(name.trim()).map_err(|e| ConfigError::Invalid {
        name: "TIME_ZONE",
        reason: e.to_string(),
    })
}

/// After class, for the console and the digest function: the archive, the chat's reactions, the digest's mail.
#[derive(Debug, Clone)]
pub struct AfterClassConfig {
    /// `TIME_ZONE`: what "today" means.
    pub time_zone: jiff::tz::TimeZone,
    /// `RETENTION_DAYS`: `None` (0) when the consumer keeps nothing, so there is nothing to export or mail.
    pub keep_delivered_for: Option<std::time::Duration>,
    /// `CHAT_SECRET_ID`, with `CHAT_KIND` and `CHAT_URL`: the chat read for votes and answers; without the
    /// secret, the digest has none.
    pub chat: Option<(ChatKind, String)>,
    /// `CHAT_TIMEOUT_MS` (default 4000).
    pub chat_timeout: std::time::Duration,
    /// `DIGEST_EMAIL`: where the digest goes; without it there is no digest (the export stays).
    pub digest_email: Option<String>,
    /// `DIGEST_FROM`: the SES identity it is sent from (default: `DIGEST_EMAIL` itself).
    pub digest_from: Option<String>,
    /// `DIGEST_LANGUAGE`: `ja` (default) or `en`.
    pub language: crate::digest::Language,
    /// `DIGEST_TOPIC_ARN`: where the console sends "mail me these questions" (the digest function's topic).
    pub digest_topic_arn: Option<String>,
}

impl AfterClassConfig {
    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let chat = match src
            .get("CHAT_SECRET_ID")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
        {
            Some(secret) => Some((chat_kind(src)?, secret)),
            None => None,
        };
        let digest_email = src
            .get("DIGEST_EMAIL")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if let Some(email) = &digest_email {
            if !email_like(email) {
                return Err(ConfigError::Invalid {
                    name: "DIGEST_EMAIL",
                    reason: format!("{email:?} is not an e-mail address"),
                });
            }
        }
        let digest_from = src
            .get("DIGEST_FROM")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| digest_email.clone());
        let language = match src.get("DIGEST_LANGUAGE") {
            Some(raw) => raw.parse().map_err(|reason| ConfigError::Invalid {
                name: "DIGEST_LANGUAGE",
                reason,
            })?,
            None => crate::digest::Language::default(),
        };
        Ok(Self {
            time_zone: time_zone(src)?,
            keep_delivered_for: retention(src)?,
            chat,
            chat_timeout: std::time::Duration::from_millis(bounded(src, "CHAT_TIMEOUT_MS", 4000, 60_000)? as u64),
            digest_email,
            digest_from,
            language,
            digest_topic_arn: src
                .get("DIGEST_TOPIC_ARN")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// One `@` with something on both sides and no white space: what SES would take as an address.
fn email_like(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.contains('@') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The digest function's configuration.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// `ROOMS`: the same list the intake function has.
    pub rooms: Rooms,
    /// `CONTROL_TABLE`: the instructor's table, where the consumer archives delivered questions.
    pub control_table: String,
    pub after_class: AfterClassConfig,
}

impl DigestConfig {
    pub const REQUIRED: &'static [&'static str] = &["ROOMS", "CONTROL_TABLE", "DIGEST_EMAIL"];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        required(src, "DIGEST_EMAIL")?;
        Ok(Self {
            rooms: rooms(src)?,
            control_table: required(src, "CONTROL_TABLE")?.trim().to_owned(),
            after_class: AfterClassConfig::from_source(src)?,
        })
    }
}

/// `RETENTION_DAYS` (default 30, 0 to 365; 0 keeps nothing).
pub fn retention(src: &dyn Source) -> Result<Option<std::time::Duration>, ConfigError> {
    let days = bounded_from(src, "RETENTION_DAYS", 30, 0, 365)? as u64;
    Ok((days > 0).then(|| std::time::Duration::from_secs(days * 86_400)))
}

/// `FLOOD_THRESHOLD` (default 20, 2 to 10000).
fn flood_threshold(src: &dyn Source) -> Result<u32, ConfigError> {
    Ok(bounded_from(src, "FLOOD_THRESHOLD", 20, 2, 10_000)? as u32)
}

/// A whole number from `min` to `max`, `default` when unset.
fn bounded_from(
    src: &dyn Source,
    name: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let value = parsed_or(src, name, default)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is not between {min} and {max}"),
        })
    }
}

impl ConsumerConfig {
    /// The variables without which the consumer can't start, whatever the chat.
    pub const REQUIRED: &'static [&'static str] = &["ROOMS", "CHAT_SECRET_ID", "QUEUE_URL", "DEAD_LETTER_QUEUE_URL"];
    /// Required too when `CHAT_KIND` is `rocketchat` (the default) or `mattermost`.
    pub(crate) const REQUIRED_FOR_ROCKETCHAT: &'static str = "CHAT_URL";

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let chat = chat_kind(src)?;
        let time_zone = time_zone(src)?;
        let default = Backoff::default();
        let base = bounded(src, "BACKOFF_BASE_SECONDS", default.base.as_secs() as usize, 43_200)?;
        let cap = bounded(src, "BACKOFF_MAX_SECONDS", default.cap.as_secs() as usize, 43_200)?;
        let timeout_ms = bounded(src, "CHAT_TIMEOUT_MS", 4000, 60_000)?;
        Ok(Self {
            rooms: rooms(src)?,
            chat,
            chat_secret_id: required(src, "CHAT_SECRET_ID")?,
            time_zone,
            queue_url: required(src, "QUEUE_URL")?,
            dead_letter_queue_url: required(src, "DEAD_LETTER_QUEUE_URL")?,
            backoff: Backoff {
                base: std::time::Duration::from_secs(base as u64),
                cap: std::time::Duration::from_secs(cap as u64),
            },
            chat_timeout: std::time::Duration::from_millis(timeout_ms as u64),
            control: ControlConfig::from_source(src)?,
        })
    }
}

/// The console function's configuration.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `ROOMS`: the same list the intake function has.
    pub rooms: Rooms,
    /// `CHAT_KIND` (and `CHAT_URL`): shown on the console with what the chat promises.
    pub chat: ChatKind,
    /// `CONTROL_TABLE`: the instructor's table.
    pub control_table: String,
    /// `TOPIC_ARN`: where an approved question is published again.
    pub topic_arn: String,
    /// The queues, as the redrive function has them.
    pub redrive: RedriveConfig,
    /// `FLOOD_THRESHOLD`: shown on the console.
    pub flood_threshold: u32,
    /// `COGNITO_ISSUER`: the user pool's issuer URL; a token's `iss` must equal it.
    pub issuer: String,
    /// `COGNITO_CLIENT_ID`: the console's app client; a token's `aud` must equal it.
    pub client_id: String,
    /// The export and the digest on demand.
    pub after_class: AfterClassConfig,
}

impl ConsoleConfig {
    pub const REQUIRED: &'static [&'static str] = &[
        "ROOMS",
        "CONTROL_TABLE",
        "TOPIC_ARN",
        "QUEUE_URL",
        "QUEUE_ARN",
        "DEAD_LETTER_QUEUE_URL",
        "DEAD_LETTER_QUEUE_ARN",
        "COGNITO_ISSUER",
        "COGNITO_CLIENT_ID",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            rooms: rooms(src)?,
            chat: chat_kind(src)?,
            control_table: required(src, "CONTROL_TABLE")?.trim().to_owned(),
            topic_arn: required(src, "TOPIC_ARN")?,
            redrive: RedriveConfig::from_source(src)?,
            flood_threshold: flood_threshold(src)?,
            issuer: required(src, "COGNITO_ISSUER")?.trim().to_owned(),
            client_id: required(src, "COGNITO_CLIENT_ID")?.trim().to_owned(),
            after_class: AfterClassConfig::from_source(src)?,
        })
    }
}

/// The redrive function's configuration.
#[derive(Debug, Clone)]
pub struct RedriveConfig {
    /// `QUEUE_URL` and `QUEUE_ARN`: the consumer's queue, where dead letters go back to.
    pub queue_url: String,
    pub queue_arn: String,
    /// `DEAD_LETTER_QUEUE_URL` and `DEAD_LETTER_QUEUE_ARN`.
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
    /// `REDRIVE_MODE`: the default mode (`copy` unless set); an event may ask for the other.
    pub default_mode: RedriveMode,
}

impl RedriveConfig {
    pub const REQUIRED: &'static [&'static str] = &[
        "QUEUE_URL",
        "QUEUE_ARN",
        "DEAD_LETTER_QUEUE_URL",
        "DEAD_LETTER_QUEUE_ARN",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub(crate) fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            queue_url: required(src, "QUEUE_URL")?,
            queue_arn: required(src, "QUEUE_ARN")?,
            dead_letter_queue_url: required(src, "DEAD_LETTER_QUEUE_URL")?,
            dead_letter_queue_arn: required(src, "DEAD_LETTER_QUEUE_ARN")?,
            default_mode: parsed_or(src, "REDRIVE_MODE", RedriveMode::Copy)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_settings_come_in_pairs_and_are_plain() {
        let base = [("TOPIC_ARN", "arn:t"), ("ROOMS", "a")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            IntakeConfig::from_source(&vars)
        };
        assert!(with(&[]).expect("no console").console_page.is_none());
        let config = with(&[("COGNITO_REGION", "ap-northeast-1"), ("COGNITO_CLIENT_ID", "4abc0def")]).expect("ok");
        assert!(config.console_page.is_some());
        for (vars, name) in [
            (&[("COGNITO_REGION", "ap-northeast-1")][..], "COGNITO_CLIENT_ID"),
            (&[("COGNITO_CLIENT_ID", "4abc")][..], "COGNITO_REGION"),
            (
                &[("COGNITO_REGION", "x; script-src *"), ("COGNITO_CLIENT_ID", "4abc")][..],
                "COGNITO_REGION",
            ),
            (
                &[("COGNITO_REGION", "us-east-1"), ("COGNITO_CLIENT_ID", "a\"b")][..],
                "COGNITO_CLIENT_ID",
            ),
        ] {
            let err = with(vars).expect_err("refused");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_consumers_control_settings_are_bounded() {
        let base = [
            ("ROOMS", "a"),
            ("CHAT_SECRET_ID", "s"),
            ("QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "d"),
            ("CHAT_URL", "https://chat.example"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            ConsumerConfig::from_source(&vars)
        };
        assert_eq!(with(&[]).expect("ok").control, None, "no table: no control");
        let control = with(&[("CONTROL_TABLE", "t")]).expect("ok").control.expect("control");
        assert_eq!((control.flood_threshold, control.held_for.as_secs()), (20, 14 * 86_400));
        for (name, bad) in [
            ("FLOOD_THRESHOLD", "1"),
            ("FLOOD_THRESHOLD", "x"),
            ("HELD_DAYS", "0"),
            ("HELD_DAYS", "366"),
        ] {
            let err = with(&[("CONTROL_TABLE", "t"), (name, bad)]).expect_err("refused");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = IntakeConfig::from_source(&[("ROOMS", "general")]).expect_err("TOPIC_ARN is missing");
        assert_eq!(
            err.to_string(),
            "environment variable TOPIC_ARN is required but not set"
        );
        let err = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t")]).expect_err("ROOMS is missing");
        assert!(err.to_string().contains("ROOMS"), "{err}");
    }

    #[test]
    fn the_consumer_needs_its_queues_secret_and_chat() {
        let full = [
            ("ROOMS", "general"),
            ("CHAT_URL", "https://chat.example.com"),
            ("CHAT_SECRET_ID", "qrelay/chat"),
            ("QUEUE_URL", "https://sqs/q"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq"),
        ];
        let config = ConsumerConfig::from_source(&full).expect("complete");
        assert_eq!(
            config.chat,
            ChatKind::RocketChat {
                url: "https://chat.example.com".into()
            }
        );
        assert_eq!(config.time_zone.iana_name(), Some("Asia/Tokyo"), "default time zone");
        for (missing, _) in full {
            let partial: Vec<(&str, &str)> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
            let src: [(&str, &str); 4] = partial.try_into().expect("four left");
            let err = ConsumerConfig::from_source(&src).expect_err(missing);
            assert!(err.to_string().contains(missing), "{missing}: {err}");
        }
        let webhook = [
            ("CHAT_KIND", "webhook"),
            ("ROOMS", "a"),
            ("CHAT_SECRET_ID", "s"),
            ("QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "d"),
        ];
        assert_eq!(
            ConsumerConfig::from_source(&webhook)
                .expect("webhook needs no CHAT_URL")
                .chat,
            ChatKind::Webhook
        );
        for (kind, expected) in [
            ("discord", ChatKind::Discord),
            ("teams", ChatKind::Teams),
            ("slack", ChatKind::Slack),
        ] {
            let mut src = webhook.to_vec();
            src[0] = ("CHAT_KIND", kind);
            let config = ConsumerConfig::from_source(&src).unwrap_or_else(|e| panic!("{kind} needs no CHAT_URL: {e}"));
            assert_eq!(config.chat, expected, "{kind}");
        }
        let mut mattermost = webhook.to_vec();
        mattermost[0] = ("CHAT_KIND", "mattermost");
        let err = ConsumerConfig::from_source(&mattermost).expect_err("mattermost needs CHAT_URL");
        assert!(err.to_string().contains("CHAT_URL"), "{err}");
        mattermost.push(("CHAT_URL", "http://mattermost.example.com"));
        let err = ConsumerConfig::from_source(&mattermost).expect_err("plain http to a remote host");
        assert!(err.to_string().contains("https"), "{err}");
        mattermost.pop();
        mattermost.push(("CHAT_URL", "https://mattermost.example.com"));
        assert_eq!(
            ConsumerConfig::from_source(&mattermost).expect("mattermost").chat,
            ChatKind::Mattermost {
                url: "https://mattermost.example.com".into()
            }
        );
        let bad_tz = [
            ("TIME_ZONE", "Mars/Olympus"),
            ("CHAT_KIND", "webhook"),
            ("ROOMS", "a"),
            ("CHAT_SECRET_ID", "s"),
            ("QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "d"),
        ];
        assert!(
            ConsumerConfig::from_source(&bad_tz)
                .expect_err("bad tz")
                .to_string()
                .contains("TIME_ZONE")
        );
    }

    impl Source for Vec<(&str, &str)> {
        fn get(&self, name: &str) -> Option<String> {
            self.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        }
    }

    /// The variables without which `from_source` fails as "required but not set", found by leaving out each
    /// variable of a complete configuration in turn. A required variable missing from `complete` fails the test
    /// too, naming it.
    fn required_by<T>(
        from_source: fn(&dyn Source) -> Result<T, ConfigError>,
        complete: &[(&'static str, &'static str)],
    ) -> Vec<&'static str> {
        if let Err(e) = from_source(&complete.to_vec()) {
            panic!("the complete configuration is refused ({e}): add the variable to REQUIRED and to this test");
        }
        let mut required: Vec<&'static str> = complete
            .iter()
            .filter(|(name, _)| {
                let without: Vec<(&str, &str)> = complete.iter().copied().filter(|(n, _)| n != name).collect();
                matches!(from_source(&without), Err(ConfigError::Missing(missing)) if missing == *name)
            })
            .map(|(name, _)| *name)
            .collect();
        required.sort_unstable();
        required
    }

    fn sorted(names: &[&'static str]) -> Vec<&'static str> {
        let mut names = names.to_vec();
        names.sort_unstable();
        names
    }

    #[test]
    fn the_digest_and_escalation_lists_are_what_their_configs_require() {
        let digest = [
            ("ROOMS", "general"),
            ("CONTROL_TABLE", "qrelay-control"),
            ("DIGEST_EMAIL", "teacher@example.com"),
            ("RETENTION_DAYS", "30"),
        ];
        assert_eq!(
            required_by(DigestConfig::from_source, &digest),
            sorted(DigestConfig::REQUIRED)
        );
        let escalation = [
            ("CONTROL_TABLE", "qrelay-control"),
            ("ESCALATION_PHONES", "+819011110001,+819011110002"),
            ("ESCALATION_ALARMS", "a,b"),
            (
                "ESCALATION_CALLBACK_URL",
                "https://abc.execute-api.ap-northeast-1.amazonaws.com/escalation/twilio",
            ),
            ("TWILIO_SECRET_ID", "qrelay-twilio"),
            ("TWILIO_FROM", "+15005550006"),
        ];
        assert_eq!(
            required_by(EscalationConfig::from_source, &escalation),
            sorted(EscalationConfig::REQUIRED)
        );
        let config = EscalationConfig::from_source(&escalation.to_vec()).expect("ok");
        assert_eq!(config.rotation.phones.len(), 2);
        assert_eq!(config.rotation.after, std::time::Duration::from_secs(600));
        assert_eq!(config.twilio_api_url, "https://api.twilio.com");
    }

    #[test]
    fn bad_digest_and_escalation_settings_are_refused_by_name() {
        let digest = |extra: (&'static str, &'static str)| {
            let mut vars = vec![
                ("ROOMS", "general"),
                ("CONTROL_TABLE", "t"),
                ("DIGEST_EMAIL", "teacher@example.com"),
            ];
            vars.retain(|(k, _)| *k != extra.0);
            vars.push(extra);
            DigestConfig::from_source(&vars)
        };
        for (name, bad) in [
            ("DIGEST_EMAIL", "not an address"),
            ("DIGEST_LANGUAGE", "fr"),
            ("RETENTION_DAYS", "366"),
            ("TIME_ZONE", "Mars/Olympus"),
        ] {
            let err = digest((name, bad)).expect_err("refused");
            assert!(err.to_string().contains(name), "{name}={bad}: {err}");
        }
        assert_eq!(
            digest(("RETENTION_DAYS", "0"))
                .expect("ok")
                .after_class
                .keep_delivered_for,
            None
        );
        let escalation = |extra: (&'static str, &'static str)| {
            let mut vars = vec![
                ("CONTROL_TABLE", "t"),
                ("ESCALATION_PHONES", "+819011110001"),
                ("ESCALATION_ALARMS", "a"),
                ("ESCALATION_CALLBACK_URL", "https://x.example/escalation/twilio"),
                ("TWILIO_SECRET_ID", "s"),
                ("TWILIO_FROM", "+15005550006"),
            ];
            vars.retain(|(k, _)| *k != extra.0);
            vars.push(extra);
            EscalationConfig::from_source(&vars)
        };
        for (name, bad) in [
            ("ESCALATION_PHONES", "090-1234-5678"),
            ("ESCALATION_PHONES", "+819011110001,+81 90"),
            ("TWILIO_FROM", "15005550006"),
            ("ESCALATE_AFTER_MINUTES", "0"),
            ("ACK_WAIT_MINUTES", "31"),
            ("ESCALATION_CALLBACK_URL", "http://x.example/escalation/twilio"),
            ("TWILIO_API_URL", "http://api.twilio.com"),
            ("ESCALATION_LANGUAGE", "de"),
        ] {
            let err = escalation((name, bad)).expect_err("refused");
            assert!(err.to_string().contains(name), "{name}={bad}: {err}");
        }
    }

    /// Ties each `REQUIRED` list, which the template test checks against `template.yaml`, to what `from_source`
    /// really requires: a new required variable left off its list would otherwise fail only the first cold start.
    #[test]
    fn each_required_list_is_what_its_config_requires() {
        let intake = [
            ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:questions"),
            ("ROOMS", "general"),
            ("MAX_QUESTION_CHARS", "500"),
            ("MAX_NICKNAME_CHARS", "20"),
        ];
        assert_eq!(
            required_by(IntakeConfig::from_source, &intake),
            sorted(IntakeConfig::REQUIRED)
        );

        let webhook = [
            ("CHAT_KIND", "webhook"),
            ("ROOMS", "general"),
            ("CHAT_SECRET_ID", "qrelay/chat"),
            ("TIME_ZONE", "UTC"),
            ("QUEUE_URL", "https://sqs/q"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq"),
            ("BACKOFF_BASE_SECONDS", "5"),
            ("BACKOFF_MAX_SECONDS", "600"),
            ("CHAT_TIMEOUT_MS", "3000"),
        ];
        assert_eq!(
            required_by(ConsumerConfig::from_source, &webhook),
            sorted(ConsumerConfig::REQUIRED)
        );
        for kind in ["discord", "teams", "slack"] {
            let mut src = webhook.to_vec();
            src[0] = ("CHAT_KIND", kind);
            assert_eq!(
                required_by(ConsumerConfig::from_source, &src),
                sorted(ConsumerConfig::REQUIRED),
                "{kind}"
            );
        }
        let mut rocketchat = webhook.to_vec();
        rocketchat[0] = ("CHAT_KIND", "rocketchat");
        rocketchat.push(("CHAT_URL", "https://chat.example.com"));
        let mut expected = ConsumerConfig::REQUIRED.to_vec();
        expected.push(ConsumerConfig::REQUIRED_FOR_ROCKETCHAT);
        assert_eq!(required_by(ConsumerConfig::from_source, &rocketchat), sorted(&expected));
        let mut mattermost = rocketchat.clone();
        mattermost[0] = ("CHAT_KIND", "mattermost");
        assert_eq!(required_by(ConsumerConfig::from_source, &mattermost), sorted(&expected));

        let redrive = [
            ("QUEUE_URL", "https://sqs/q"),
            ("QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:q"),
            ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq"),
            ("DEAD_LETTER_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:dlq"),
            ("REDRIVE_MODE", "native"),
        ];
        assert_eq!(
            required_by(RedriveConfig::from_source, &redrive),
            sorted(RedriveConfig::REQUIRED)
        );

        let mut console = redrive.to_vec();
        console.extend([
            ("ROOMS", "general"),
            ("CHAT_KIND", "webhook"),
            ("CONTROL_TABLE", "qrelay-control"),
            ("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:questions"),
            ("FLOOD_THRESHOLD", "30"),
            (
                "COGNITO_ISSUER",
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
            ),
            ("COGNITO_CLIENT_ID", "abc"),
        ]);
        assert_eq!(
            required_by(ConsoleConfig::from_source, &console),
            sorted(ConsoleConfig::REQUIRED)
        );
    }

    /// The bot's token goes with every request to the chat: over plain HTTP anyone on the way could read it.
    /// Loopback is the exception, for the local runner and the tests' fake chat: it never leaves the machine.
    #[test]
    fn the_chat_url_must_be_https_except_on_loopback() {
        let with_url = |url: &'static str| {
            [
                ("ROOMS", "general"),
                ("CHAT_URL", url),
                ("CHAT_SECRET_ID", "qrelay/chat"),
                ("QUEUE_URL", "https://sqs/q"),
                ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq"),
            ]
        };
        for (url, accepted) in [
            ("https://chat.example.com", true),
            ("https://chat.example.com:8443/rocket", true),
            ("http://127.0.0.1:3000", true),
            ("http://localhost:3000", true),
            ("http://localhost", true),
            ("http://[::1]:8080", true),
            ("http://chat.example.com", false),
            ("http://10.0.0.5:3000", false),
            ("http://localhost.example.com", false),
            ("http://localhost@chat.example.com", false),
            ("http://127.0.0.1:80@chat.example.com/", false),
            ("ftp://chat.example.com", false),
            ("chat.example.com", false),
            ("https://", false),
        ] {
            let result = ConsumerConfig::from_source(&with_url(url));
            match (result, accepted) {
                (Ok(config), true) => assert_eq!(config.chat, ChatKind::RocketChat { url: url.into() }, "{url}"),
                (Err(e), false) => {
                    let message = e.to_string();
                    assert!(
                        message.contains("CHAT_URL") && message.contains("https://"),
                        "{url}: the error names the variable and the fix: {message}"
                    );
                }
                (Ok(_), false) => panic!("{url} is accepted, but the token would travel in cleartext"),
                (Err(e), true) => panic!("{url} is refused: {e}"),
            }
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        let config = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t"), ("ROOMS", "a")]).expect("valid");
        assert_eq!(config.limits, Limits::default());
        for bad in ["0", "1801", "many", "-1"] {
            let err = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t"), ("ROOMS", "a"), ("MAX_QUESTION_CHARS", bad)])
                .expect_err("out of range");
            assert!(err.to_string().contains("MAX_QUESTION_CHARS"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_question_limit_is_lowered_to_what_the_chat_can_show() {
        let intake = |kind: Option<&str>, max: &str| {
            let mut vars = vec![("TOPIC_ARN", "arn:t"), ("ROOMS", "a"), ("MAX_QUESTION_CHARS", max)];
            vars.extend(kind.map(|k| ("CHAT_KIND", k)));
            IntakeConfig::from_source(&vars).expect("valid")
        };
        let discord = crate::chat::Dialect::Discord.max_question_chars();
        assert!(
            discord < 1000,
            "Discord's 2000-character messages bind below the default"
        );
        for (kind, max, expected, lowered) in [
            (None, "1800", 1800, false),
            (Some("rocketchat"), "1000", 1000, false),
            (Some("slack"), "1800", 1800, false),
            (Some("discord"), "1000", discord, true),
            (Some("discord"), "500", 500, false),
            (Some("webhook"), "1000", discord, true),
        ] {
            let config = intake(kind, max);
            assert_eq!(config.limits.question_chars, expected, "{kind:?} {max}");
            assert_eq!(config.question_cap.is_some(), lowered, "{kind:?} {max}");
        }
        let notice = intake(Some("discord"), "1000")
            .question_cap
            .expect("lowered")
            .to_string();
        assert_eq!(
            notice,
            format!(
                "MAX_QUESTION_CHARS 1000 lowered to {discord}: the longest question a discord message always has room for"
            )
        );
        let err = IntakeConfig::from_source(&[("TOPIC_ARN", "arn:t"), ("ROOMS", "a"), ("CHAT_KIND", "irc")])
            .expect_err("unknown kind");
        assert!(err.to_string().contains("CHAT_KIND"), "{err}");
    }
}
