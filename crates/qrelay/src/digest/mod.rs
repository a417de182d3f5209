//! After class: the questions a room was asked, as a digest mailed to the instructor (unanswered first, by votes)
//! and as an export (CSV, Markdown) from the console.
//!
//! The questions come from the archive the consumer keeps in the instructor's table (`RETENTION_DAYS`); the
//! class's reception (👍 votes, ✅ or a thread reply as "answered") is read back from the chat where its API can
//! say (Rocket.Chat), and is simply absent where it can't (webhooks). Nothing here names a student: a question is
//! its text, its optional nickname and its times, as in the chat.

mod render;
mod ses;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

pub use render::{CSV_HEADER, ExportFormat, Language};
pub use ses::SesMailer;

use crate::chat::{ChatPoster, Signals};
use crate::control::{Archived, ControlStore, StoreError};
use crate::domain::{RoomName, Rooms};

/// One question in a digest or an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub archived: Archived,
    /// What the chat said about it; `None` when the chat can't be asked or did not answer.
    pub signals: Option<Signals>,
}

impl Entry {
    fn answered(&self) -> bool {
        self.signals.is_some_and(|s| s.answered)
    }

    fn votes(&self) -> u32 {
        self.signals.map_or(0, |s| s.votes)
    }
}

/// Whether the chat's reception could be read for a room's questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalsRead {
    /// Read for every question.
    All,
    /// This chat can't be asked (an incoming webhook): no votes, no answers.
    NotSupported,
    /// The chat did not answer for some questions: they show no votes and count as unanswered.
    Partly { missing: usize },
}

/// A room's questions for a range of days, in digest order: unanswered first by votes (most first), then the
/// answered ones by votes; questions with as many votes in the order they were asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomDigest {
    pub room: RoomName,
    pub entries: Vec<Entry>,
    pub signals: SignalsRead,
}

impl RoomDigest {
    pub fn unanswered(&self) -> usize {
        self.entries.iter().filter(|e| !e.answered()).count()
    }
}

/// The days a digest or an export covers, in the course's time zone: `first` to `last`, both included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Days {
    pub first: Date,
    pub last: Date,
    pub time_zone: TimeZone,
}

/// The longest range an export may ask for: a year, more than any retention.
pub const MAX_DAYS: i32 = 366;

impl Days {
    /// The day `now` falls on.
    pub fn today(now: Timestamp, time_zone: &TimeZone) -> Self {
        let today = now.to_zoned(time_zone.clone()).date();
        Self {
            first: today,
            last: today,
            time_zone: time_zone.clone(),
        }
    }

    /// `first` to `last` (`YYYY-MM-DD`, both included); a clear reason when they aren't dates in order or span
    /// more than [`MAX_DAYS`].
    pub fn parse(first: &str, last: &str, time_zone: &TimeZone) -> Result<Self, String> {
        let date = |name: &str, raw: &str| {
            raw.trim()
                .parse::<Date>()
                .map_err(|_| format!("{name} must be a date as YYYY-MM-DD, not {raw:?}"))
        };
        let (first, last) = (date("from", first)?, date("to", last)?);
        if last < first {
            return Err(format!("from ({first}) is after to ({last})"));
        }
        let span = first.until(last).map_err(|e| e.to_string())?.get_days();
        if span >= MAX_DAYS {
            return Err(format!("ask for at most {MAX_DAYS} days at a time"));
        }
        Ok(Self {
            first,
            last,
            time_zone: time_zone.clone(),
        })
    }

    /// The first instant of `first` and the first instant after `last`.
    fn bounds(&self) -> Result<(Timestamp, Timestamp), DigestError> {
        let start = |day: Date| {
            day.to_zoned(self.time_zone.clone())
                .map(|z| z.timestamp())
                .map_err(|e| DigestError::Days(e.to_string()))
        };
        let after = self.last.tomorrow().map_err(|e| DigestError::Days(e.to_string()))?;
        Ok((start(self.first)?, start(after)?))
    }
}

/// Why a digest or an export could not be made or sent.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the days asked for: {0}")]
    Days(String),
    #[error("the digest could not be mailed: {0}")]
    Mail(String),
    #[error("the digest event: {0}")]
    Event(String),
}

/// Sends a digest.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Mails one message, with a plain-text and an HTML body, to `to`.
    async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), DigestError>;
}

/// Gathers a room's archived questions and the chat's reception of them.
pub struct Digester {
    rooms: Rooms,
    store: Arc<dyn ControlStore>,
    chat: Option<Arc<dyn ChatPoster>>,
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digester")
            .field("rooms", &self.rooms)
            .field("reads_chat", &self.chat.is_some())
            .finish_non_exhaustive()
    }
}

/// How many questions' reactions are read from the chat at once: a class's worth in a few round trips, without
/// looking like a flood to the chat's rate limiter.
const SIGNAL_READS_AT_ONCE: usize = 4;

impl Digester {
    /// `chat` is read for votes and answers; `None` (or a chat that can't be asked) gives a digest without them.
    pub fn new(rooms: Rooms, store: Arc<dyn ControlStore>, chat: Option<Arc<dyn ChatPoster>>) -> Self {
        Self { rooms, store, chat }
    }

    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The room's questions in `days`, in submission order, each with what the chat says of it.
    pub async fn room(&self, room: &RoomName, days: &Days, now: Timestamp) -> Result<RoomDigest, DigestError> {
        let (from, to) = days.bounds()?;
        let archived = self.store.archived(room, from, to, now).await?;
        let channel = self.rooms.get(room.as_ref()).map(|r| r.channel().to_owned());
        let (Some(chat), Some(channel)) = (&self.chat, channel) else {
            let entries = archived.into_iter().map(|archived| Entry {
                archived,
                signals: None,
            });
            return Ok(RoomDigest {
                room: room.clone(),
                entries: entries.collect(),
                signals: SignalsRead::NotSupported,
            });
        };
        let channel = channel.as_str();
        let reads = futures_util::stream::iter(archived.into_iter().map(|archived| async move {
            let signals = chat.signals(archived.question.id, channel).await;
            (archived, signals)
        }))
        .buffered(SIGNAL_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
        let mut missing = 0;
        let mut supported = false;
        let mut entries = Vec::with_capacity(reads.len());
        for (archived, signals) in reads {
            let signals = match signals {
                Ok(Some(signals)) => {
                    supported = true;
                    Some(signals)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, question_id = %archived.question.id, "could not read a question's reactions");
                    supported = true;
                    missing += 1;
                    None
                }
            };
            entries.push(Entry { archived, signals });
        }
        let signals = match (supported, missing) {
            (false, _) if !entries.is_empty() => SignalsRead::NotSupported,
            (_, 0) => SignalsRead::All,
            (_, missing) => SignalsRead::Partly { missing },
        };
        Ok(RoomDigest {
            room: room.clone(),
            entries,
            signals,
        })
    }

    /// Every room's digest for `days`, each in digest order (see [`RoomDigest`]).
    pub async fn digest(&self, rooms: &[RoomName], days: &Days, now: Timestamp) -> Result<Digest, DigestError> {
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            let mut digest = self.room(room, days, now).await?;
            digest_order(&mut digest.entries);
            out.push(digest);
        }
        Ok(Digest {
            days: days.clone(),
            rooms: out,
        })
    }
}

/// Unanswered before answered, then most votes first, then the order they were asked in.
pub fn digest_order(entries: &mut [Entry]) {
    entries.sort_by_key(|e| {
        (
            e.answered(),
            std::cmp::Reverse(e.votes()),
            e.archived.question.submitted_at,
            e.archived.question.id.to_string(),
        )
    });
}

/// The digest of one or more rooms over some days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub days: Days,
    pub rooms: Vec<RoomDigest>,
}

impl Digest {
    pub fn questions(&self) -> usize {
        self.rooms.iter().map(|r| r.entries.len()).sum()
    }

    /// Mails the digest to `to` in `language`.
    pub async fn mail(&self, mailer: &dyn Mailer, to: &str, language: Language) -> Result<(), DigestError> {
        let (subject, text, html) = render::mail(self, language);
        mailer.send(to, &subject, &text, &html).await
    }
}

/// The digest function's handler: the day's digest of every room (or of the event's), mailed when there is a
/// question to mail.
pub struct ScheduledDigest {
    pub digester: Digester,
    pub mailer: Arc<dyn Mailer>,
    pub to: String,
    pub language: Language,
    pub time_zone: TimeZone,
}

impl std::fmt::Debug for ScheduledDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledDigest")
            .field("digester", &self.digester)
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

/// What the schedule (or `cargo lambda invoke`) may ask: `{}` for today's questions of every room, or some rooms
/// and another day.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestEvent {
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    date: Option<String>,
}

impl ScheduledDigest {
    /// Handles one invocation; answers what it mailed. A day without questions mails nothing.
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value, DigestError> {
        self.handle_at(event, Timestamp::now()).await
    }

    pub async fn handle_at(&self, event: serde_json::Value, now: Timestamp) -> Result<serde_json::Value, DigestError> {
        // The console's requests come through SNS: each record's message is a request of its own.
        if let Some(records) = event.get("Records").and_then(serde_json::Value::as_array) {
            let mut answers = Vec::with_capacity(records.len());
            for record in records {
                let message = record["Sns"]["Message"].as_str().unwrap_or_default();
                let request: serde_json::Value = serde_json::from_str(message)
                    .map_err(|e| DigestError::Event(format!("an SNS message that is not a digest request: {e}")))?;
                answers.push(Box::pin(self.handle_at(request, now)).await?);
            }
            return Ok(serde_json::Value::Array(answers));
        }
        // EventBridge Scheduler sends the target's input as it is; `null` or an empty input means `{}`.
        let event: DigestEvent = if event.is_null() {
            DigestEvent::default()
        } else {
            serde_json::from_value(event).map_err(|e| {
                DigestError::Event(format!(
                    "expected {{}} or {{\"rooms\": [...], \"date\": \"YYYY-MM-DD\"}}: {e}"
                ))
            })?
        };
        let rooms = match event.rooms {
            None => self.digester.rooms().iter().map(|r| r.name().clone()).collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    self.digester
                        .rooms()
                        .get(name)
                        .map(|r| r.name().clone())
                        .ok_or_else(|| DigestError::Event(format!("unknown room {name:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let days = match event.date {
            Some(date) => Days::parse(&date, &date, &self.time_zone).map_err(DigestError::Event)?,
            None => Days::today(now, &self.time_zone),
        };
        let digest = self.digester.digest(&rooms, &days, now).await?;
        let questions = digest.questions();
        if questions == 0 {
            tracing::info!(day = %days.first, "no questions that day: no digest mailed");
        } else {
            digest.mail(self.mailer.as_ref(), &self.to, self.language).await?;
            tracing::info!(day = %days.first, questions, "digest mailed");
        }
        Ok(serde_json::json!({ "day": days.first.to_string(), "questions": questions, "mailed": questions > 0 }))
    }
}

/// How the console asks for a digest ("mail me these questions"): deployed, a message to the digest function's
/// request topic (the console never reads the chat or sends mail itself); locally and in tests, in process.
#[async_trait]
pub trait DigestRequests: Send + Sync {
    /// Asks for the digest of `rooms` on `date` (`YYYY-MM-DD`).
    async fn request(&self, rooms: &[RoomName], date: Date) -> Result<DigestRequested, DigestError>;
}

/// What became of a digest request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestRequested {
    /// Made and mailed now, with this many questions.
    Mailed { questions: usize },
    /// Handed to the digest function, which mails it within a minute (or logs why it could not).
    Queued,
}

/// The request as the digest function reads it: the same shape as its schedule's input.
fn request_event(rooms: &[RoomName], date: Date) -> serde_json::Value {
    serde_json::json!({
        "rooms": rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
        "date": date.to_string(),
    })
}

#[async_trait]
impl DigestRequests for ScheduledDigest {
    async fn request(&self, rooms: &[RoomName], date: Date) -> Result<DigestRequested, DigestError> {
        let answer = self.handle_at(request_event(rooms, date), Timestamp::now()).await?;
        Ok(DigestRequested::Mailed {
            questions: answer["questions"].as_u64().unwrap_or_default() as usize,
        })
    }
}

/// Digest requests published to the digest function's SNS topic (`DIGEST_TOPIC_ARN`).
#[derive(Debug)]
pub struct SnsDigestRequests {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsDigestRequests {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl DigestRequests for SnsDigestRequests {
    async fn request(&self, rooms: &[RoomName], date: Date) -> Result<DigestRequested, DigestError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(request_event(rooms, date).to_string())
            .send()
            .await
            .map_err(|e| {
                DigestError::Mail(format!(
                    "SNS Publish to the digest topic: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ))
            })?;
        Ok(DigestRequested::Queued)
    }
}

/// A mailer that keeps what it was given: the local runner's outbox (there is no SES on a laptop) and the tests'.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: std::sync::Mutex<Vec<Mail>>,
}

/// One mail an [`Outbox`] was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Outbox {
    pub fn sent(&self) -> Vec<Mail> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), DigestError> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Mail {
                to: to.to_owned(),
                subject: subject.to_owned(),
                text: text.to_owned(),
                html: html.to_owned(),
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
