//! The consumer function: takes batches of questions from the SQS queue and posts each to its room's chat
//! channel exactly once, riding out chat outages with a backoff that spans hours.
//!
//! **Invariant:** a record is left out of `batchItemFailures` (and so deleted by Lambda) only when its question
//! is in the chat, when the same text was posted in its room moments before, or when a copy of it is safely in
//! the dead-letter queue.
//! **Invariant:** the consumer never posts a question without its idempotency key (the question id).
//! **Invariant:** with a control store, a question of a room under review (or caught by the flood breaker) is
//! stored as held before its record is deleted, and posted only once the instructor approved it.

mod backoff;
mod duplicates;
mod metrics;
mod queue;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use jiff::tz::TimeZone;
use tracing::{Instrument, info, info_span, warn};

pub use backoff::Backoff;
use metrics::BatchMetrics;
pub use queue::{QueueControl, SqsQueueControl};

use crate::chat::{ChatError, ChatMessage, ChatPoster, Delivery};
use crate::control::{
    CachedRooms, HeldStatus, HoldReason, RoomState, StateReason, StoreError, flood_minute, flood_notice_id,
};
use crate::domain::{InvalidMessage, Question, QuestionId, Rooms};
use duplicates::{DUPLICATE_WINDOW, RecentTexts};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Posted to the chat now.
    Posted,
    /// Already in the chat from an earlier delivery; not posted again.
    AlreadyPosted,
    /// Not delivered; hidden for `delay` and reported as failed so SQS delivers it again.
    RetryLater { delay: Duration, reason: String },
    /// Can never be delivered; copied to the dead-letter queue and deleted from the main queue.
    DeadLettered { reason: String },
    /// The same text in the same room was posted moments ago (as question `of`): not posted again.
    Duplicate { of: QuestionId },
    /// Stored for the instructor's review (its room is under review, or the flood breaker caught it).
    Held,
    /// Held before, and the instructor rejected it: never posted.
    Rejected,
}

/// The instructor's control over the rooms, when the consumer has a control store.
#[derive(Clone)]
pub struct Control {
    /// Room states, cached a few seconds, and the store behind them.
    pub rooms: Arc<CachedRooms>,
    /// More distinct questions than this in a room in one minute trip the flood breaker (`FLOOD_THRESHOLD`).
    pub flood_threshold: u32,
    /// How long a held question waits for a decision before it is forgotten (`HELD_DAYS`).
    pub held_for: Duration,
    /// How long a delivered question is kept for the digest and the export (`RETENTION_DAYS`); `None` keeps
    /// nothing.
    pub keep_delivered_for: Option<Duration>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("flood_threshold", &self.flood_threshold)
            .field("held_for", &self.held_for)
            .field("keep_delivered_for", &self.keep_delivered_for)
            .finish_non_exhaustive()
    }
}

/// The consumer's handler with what it needs, built once per execution environment.
pub struct Consumer {
    rooms: Rooms,
    time_zone: TimeZone,
    backoff: Backoff,
    chat: Arc<dyn ChatPoster>,
    queue: Arc<dyn QueueControl>,
    /// When the chat last told us to wait until; kept across warm invocations so a new batch doesn't knock.
    rate_limited_until: Mutex<Option<SystemTime>>,
    /// Whether each batch prints its embedded-metric-format line on standard output (Lambda's log capture).
    emit_metrics: bool,
    /// The texts posted lately, so a flood of one text in a room is posted once.
    recent: RecentTexts,
    /// The time a record may need at worst (a post and the look-up that settles it, each up to the chat's
    /// timeout): no record is started with less than this left before the invocation's deadline.
    reserve: Duration,
    /// Room states, held questions and the flood breaker; without it every room is open and nothing is held.
    control: Option<Control>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("rooms", &self.rooms)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

/// How long a record the invocation had no time left for stays hidden: short, since nothing is wrong with it or
/// the chat, but not zero, so the next poll does not take it back before this invocation has even answered.
pub(crate) const OUT_OF_TIME_DELAY: Duration = Duration::from_secs(2);

/// What the lanes of one batch share.
struct Batch {
    /// Set by the first failure that concerns the whole chat: the rest of the batch is not attempted.
    blocked: Mutex<Option<ChatBlocked>>,
    metrics: Mutex<BatchMetrics>,
    /// When the invocation must have answered, less nothing: Lambda kills it at its deadline.
    deadline: Instant,
}

/// Why the rest of a batch is not attempted.
struct ChatBlocked {
    reason: String,
    until: Option<SystemTime>,
}

impl Consumer {
    pub fn new(
        rooms: Rooms,
        time_zone: TimeZone,
        backoff: Backoff,
        chat: Arc<dyn ChatPoster>,
        queue: Arc<dyn QueueControl>,
    ) -> Self {
        Self {
            rooms,
            time_zone,
            backoff,
            chat,
            queue,
            rate_limited_until: Mutex::new(None),
            emit_metrics: true,
            reserve: 2 * crate::chat::REQUEST_TIMEOUT + crate::chat::STALE_RETRY_WINDOW,
            recent: RecentTexts::new(DUPLICATE_WINDOW),
            control: None,
        }
    }

    /// Gives the consumer the instructor's control: rooms under review hold their questions, and the flood breaker
    /// holds a room's questions past the threshold.
    pub fn with_control(self, control: Control) -> Self {
        Self {
            control: Some(control),
            ..self
        }
    }

    /// Sets the chat's per-request timeout (`CHAT_TIMEOUT_MS`), from which the time kept in reserve before the
    /// deadline follows: twice the timeout, a post and the look-up that settles it, and the time a request may
    /// spend failing on a dropped connection before it is sent again (`chat::STALE_RETRY_WINDOW`).
    pub fn with_chat_timeout(self, timeout: Duration) -> Self {
        Self {
            reserve: 2 * timeout + crate::chat::STALE_RETRY_WINDOW,
            ..self
        }
    }

    /// A consumer that prints no metrics: for a process whose standard output is not a Lambda log (a benchmark
    /// running thousands of batches, say).
    pub fn without_metrics(self) -> Self {
        Self {
            emit_metrics: false,
            ..self
        }
    }

    /// Handles one batch and reports the records that must be delivered again, answering before `deadline` (the
    /// invocation's: Lambda kills it then, and every record of the batch would come back and burn a receive).
    /// A record is started only while more than the reserve (twice the chat timeout) is left; the rest are
    /// reported failed with a short delay, so a slow chat makes the batch partial instead of the invocation lost.
    ///
    /// Records are grouped by room into lanes: within a lane they are posted one at a time, in queue order, so
    /// each channel shows its questions in the order they were asked; lanes run concurrently, so a batch spread
    /// over several rooms takes about as long as its busiest room instead of the sum of all.
    pub async fn handle(&self, event: SqsEvent, deadline: SystemTime) -> SqsBatchResponse {
        // An Instant, so the clock can't jump under us.
        let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
        let batch = Batch {
            blocked: Mutex::new(self.still_rate_limited()),
            metrics: Mutex::default(),
            deadline: Instant::now() + left,
        };
        // Each record is parsed once: its room picks its lane, and its question is delivered.
        let questions: Vec<Result<Question, InvalidMessage>> = event
            .records
            .iter()
            .map(|r| Question::from_queue_body(r.body.as_deref().unwrap_or_default()))
            .collect();
        let mut lanes: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, question) in questions.iter().enumerate() {
            // A record that is not a question gets a lane of its own; it is dead-lettered without waiting.
            let lane = question
                .as_ref()
                .map(|q| q.room.to_string())
                .unwrap_or_else(|_| format!("\0{index}"));
            match lanes.iter_mut().find(|(room, _)| *room == lane) {
                Some((_, indexes)) => indexes.push(index),
                None => lanes.push((lane, vec![index])),
            }
        }
        let (records, questions, shared) = (&event.records, &questions, &batch);
        let lane_outcomes = futures_util::future::join_all(lanes.iter().map(|(_, indexes)| async move {
            let mut outcomes = Vec::with_capacity(indexes.len());
            for &index in indexes {
                let record = &records[index];
                let message_id = record.message_id.as_deref().unwrap_or_default();
                let span = info_span!(
                    "record",
                    message_id = %message_id,
                    question_id = tracing::field::Empty,
                    room = tracing::field::Empty,
                    chat_latency_ms = tracing::field::Empty
                );
                let handled = self.handle_record(record, &questions[index], shared);
                outcomes.push((index, handled.instrument(span).await));
            }
            outcomes
        }))
        .await;
        let mut outcomes: Vec<(usize, Outcome)> = lane_outcomes.into_iter().flatten().collect();
        outcomes.sort_by_key(|(index, _)| *index);
        let mut response = SqsBatchResponse::default();
        let mut metrics = batch
            .metrics
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (index, outcome) in outcomes {
            match outcome {
                Outcome::Posted => metrics.posted += 1,
                Outcome::AlreadyPosted => metrics.already_posted += 1,
                Outcome::DeadLettered { .. } => metrics.dead_lettered += 1,
                Outcome::Duplicate { .. } => metrics.duplicates += 1,
                Outcome::Held => metrics.held += 1,
                Outcome::Rejected => metrics.rejected += 1,
                Outcome::RetryLater { .. } => {
                    metrics.retried += 1;
                    response.add_failure(event.records[index].message_id.clone().unwrap_or_default());
                }
            }
        }
        if self.emit_metrics {
            metrics.emit();
        }
        response
    }

    fn still_rate_limited(&self) -> Option<ChatBlocked> {
        let until = (*self.rate_limited_until.lock().expect("rate limit lock"))?;
        (until > SystemTime::now()).then(|| ChatBlocked {
            reason: "the chat is rate limiting us".into(),
            until: Some(until),
        })
    }

    async fn handle_record(
        &self,
        record: &SqsMessage,
        question: &Result<Question, InvalidMessage>,
        batch: &Batch,
    ) -> Outcome {
        let attempt = receive_count(record);
        let span = tracing::Span::current();
        let outcome = match self.deliver(question, attempt, batch, &span).await {
            Ok(delivery) => delivery,
            Err(Undeliverable(reason)) => {
                let body = record.body.as_deref().unwrap_or_default();
                match self.queue.dead_letter(body, &record.message_attributes, &reason).await {
                    Ok(()) => Outcome::DeadLettered { reason },
                    Err(e) => {
                        warn!(
                            error = format!("{e:#}"),
                            "could not dead-letter an undeliverable message; it will be retried"
                        );
                        Outcome::RetryLater {
                            delay: self.backoff.delay(attempt),
                            reason,
                        }
                    }
                }
            }
        };
        if let Outcome::RetryLater { delay, .. } = &outcome {
            let receipt_handle = record.receipt_handle.as_deref().unwrap_or_default();
            if let Err(e) = self.queue.retry_after(receipt_handle, *delay).await {
                // The message still comes back, after the queue's own visibility timeout.
                warn!(error = format!("{e:#}"), "could not set the retry delay");
            }
        }
        match &outcome {
            Outcome::Posted | Outcome::AlreadyPosted => info!(outcome = outcome.name(), attempt, "delivered"),
            Outcome::Duplicate { of } => {
                info!(outcome = outcome.name(), attempt, duplicate_of = %of, "same text in the same room just now: not posted")
            }
            Outcome::RetryLater { delay, reason } => {
                info!(outcome = outcome.name(), attempt, retry_in_s = delay.as_secs(), reason = %reason, "will retry")
            }
            Outcome::DeadLettered { reason } => {
                warn!(outcome = outcome.name(), attempt, reason = %reason, "dead-lettered")
            }
            Outcome::Held => info!(outcome = outcome.name(), attempt, "held for the instructor's review"),
            Outcome::Rejected => info!(
                outcome = outcome.name(),
                attempt, "rejected by the instructor: not posted"
            ),
        }
        outcome
    }

    async fn deliver(
        &self,
        question: &Result<Question, InvalidMessage>,
        attempt: u32,
        batch: &Batch,
        span: &tracing::Span,
    ) -> Result<Outcome, Undeliverable> {
        let question = question.as_ref().map_err(|e| Undeliverable(e.to_string()))?;
        span.record("question_id", tracing::field::display(question.id));
        span.record("room", tracing::field::display(&question.room));
        let room = self.rooms.get(question.room.as_ref()).ok_or_else(|| {
            Undeliverable(format!(
                "room {:?} is not configured for the consumer",
                question.room.as_ref()
            ))
        })?;
        let message = ChatMessage::render(question, &self.time_zone).map_err(|e| Undeliverable(e.to_string()))?;
        if let Some(control) = &self.control {
            match self.review(control, question, room.channel(), attempt, batch).await {
                Ok(None) => {}
                Ok(Some(outcome)) => return Ok(outcome),
                Err(e) => return Ok(self.retry(attempt, None, e.to_string())),
            }
        }
        if let Some(blocked) = batch.blocked.lock().expect("batch lock").as_ref() {
            return Ok(self.retry(attempt, blocked.until, blocked.reason.clone()));
        }
        if let Some(of) = self.recent.duplicate_of(question) {
            return Ok(Outcome::Duplicate { of });
        }
        if let Some(outcome) = self.out_of_time(batch) {
            return Ok(outcome);
        }
        let started = Instant::now();
        // A question SQS delivers again may be in the chat already: an earlier invocation posted it and was stopped
        // before it could answer. Asking first settles that in one read instead of a post the chat refuses.
        let result = if attempt > 1 {
            match self.chat.is_posted(question.id, room.channel()).await {
                Ok(true) => Ok(Delivery::AlreadyPosted),
                Ok(false) => match self.out_of_time(batch) {
                    Some(outcome) => return Ok(outcome),
                    None => self.chat.post(question.id, room.channel(), &message).await,
                },
                Err(e) => Err(e),
            }
        } else {
            self.chat.post(question.id, room.channel(), &message).await
        };
        let latency = started.elapsed();
        batch.metrics.lock().expect("batch lock").record_latency(latency);
        span.record("chat_latency_ms", latency.as_millis() as u64);
        match result {
            Ok(delivery) => {
                self.recent.posted(question);
                if let Err(e) = self.archive(question).await {
                    // In the chat, but not kept for the digest: the record comes back, finds the question posted
                    // and archives it then.
                    warn!(error = %e, "posted, but not archived; will retry");
                    return Ok(self.retry(attempt, None, e.to_string()));
                }
                Ok(match delivery {
                    Delivery::Posted => Outcome::Posted,
                    Delivery::AlreadyPosted => Outcome::AlreadyPosted,
                })
            }
            Err(ChatError::Rejected(reason)) => Err(Undeliverable(format!("the chat rejected it: {reason}"))),
            Err(e) => Ok(self.chat_failed(&e, attempt, batch)),
        }
    }

    /// The retry for a record whose chat request failed (not refused for good): a failure that concerns the whole
    /// chat stops the rest of the batch, and a rate limit is remembered across invocations.
    fn chat_failed(&self, e: &ChatError, attempt: u32, batch: &Batch) -> Outcome {
        let until = e.retry_at();
        if let Some(until) = until {
            *self.rate_limited_until.lock().expect("rate limit lock") = Some(until);
        }
        if e.affects_whole_chat() {
            *batch.blocked.lock().expect("batch lock") = Some(ChatBlocked {
                reason: e.to_string(),
                until,
            });
        }
        self.retry(attempt, until, e.to_string())
    }

    /// What the instructor's control says about `question`: `None` to post it now (its room is open and not
    /// flooded, or the instructor approved it), or the outcome instead: held, or rejected.
    ///
    /// The flood breaker counts the room's distinct texts per minute of submission; past the threshold it holds
    /// the question, switches the room to review (one consumer wins that switch) and posts one notice to the
    /// channel, with an id derived from the room and minute so that every consumer posting it posts the same one.
    async fn review(
        &self,
        control: &Control,
        question: &Question,
        channel: &str,
        attempt: u32,
        batch: &Batch,
    ) -> Result<Option<Outcome>, StoreError> {
        let store = control.rooms.store();
        let mut status = control.rooms.status(&question.room).await?;
        let reason = match status.state {
            RoomState::Review if status.reason == Some(StateReason::Flood) => HoldReason::Flood,
            RoomState::Review => HoldReason::Review,
            // A paused room's form takes nothing new; what it took before the pause is delivered.
            RoomState::Open | RoomState::Paused => {
                let count = store.count_arrival(question).await?;
                if count <= control.flood_threshold {
                    return Ok(None);
                }
                HoldReason::Flood
            }
        };
        let now = jiff::Timestamp::now();
        let expires_at = now
            .checked_add(control.held_for)
            .map_err(|e| StoreError(format!("the held questions' expiry: {e}")))?;
        match store.hold(question, reason, now, expires_at).await? {
            HeldStatus::Approved => return Ok(None),
            HeldStatus::Rejected => return Ok(Some(Outcome::Rejected)),
            HeldStatus::Held => {}
        }
        if status.state != RoomState::Review {
            let notice = flood_notice_id(&question.room, flood_minute(question));
            if store.trip_flood(&question.room, notice, now).await? {
                warn!(
                    threshold = control.flood_threshold,
                    "flood breaker: more questions in a minute than the threshold; the room is now under review"
                );
            }
            status = store.room_status(&question.room).await?;
            control.rooms.remember(&question.room, status.clone());
        }
        if let Some(notice) = status.pending_notice {
            // The notice is owed until it is in the chat: this record comes back until then.
            if let Some(blocked) = batch.blocked.lock().expect("batch lock").as_ref() {
                return Ok(Some(self.retry(attempt, blocked.until, blocked.reason.clone())));
            }
            let message = ChatMessage::flood_notice();
            let posted = match self.chat.is_posted(notice, channel).await {
                Ok(true) => Ok(Delivery::AlreadyPosted),
                Ok(false) => self.chat.post(notice, channel, &message).await,
                Err(e) => Err(e),
            };
            match posted {
                Ok(_) => {
                    info!(notice_id = %notice, "flood notice posted");
                    store.notice_posted(&question.room, notice).await?;
                    status.pending_notice = None;
                    control.rooms.remember(&question.room, status);
                }
                Err(ChatError::Rejected(reason)) => {
                    // Refused for good (the bot can't post there?): the questions are held all the same, and
                    // the console shows the room under review; a notice is not worth losing them over.
                    warn!(notice_id = %notice, reason = %reason, "the chat refused the flood notice; not posted");
                    store.notice_posted(&question.room, notice).await?;
                }
                Err(e) => return Ok(Some(self.chat_failed(&e, attempt, batch))),
            }
        }
        Ok(Some(Outcome::Held))
    }

    /// Keeps a question that is in the chat for the digest and the export, when the consumer keeps any.
    async fn archive(&self, question: &Question) -> Result<(), StoreError> {
        let Some((control, keep)) = self
            .control
            .as_ref()
            .and_then(|c| c.keep_delivered_for.map(|keep| (c, keep)))
        else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let expires_at = now
            .checked_add(keep)
            .map_err(|e| StoreError(format!("the archive's expiry: {e}")))?;
        control.rooms.store().archive(question, now, expires_at).await
    }

    /// A short retry when less than the reserve is left before the invocation's deadline: the record is not
    /// started, so Lambda can't kill the invocation in the middle of it.
    fn out_of_time(&self, batch: &Batch) -> Option<Outcome> {
        (Instant::now() + self.reserve > batch.deadline).then(|| Outcome::RetryLater {
            delay: OUT_OF_TIME_DELAY,
            reason: "not started: too little of the invocation's time was left for a chat request".into(),
        })
    }

    /// The retry outcome: after the chat's reset time when it gave one, otherwise on the backoff schedule.
    fn retry(&self, attempt: u32, until: Option<SystemTime>, reason: String) -> Outcome {
        let backoff = self.backoff.jittered(attempt, fastrand::f64());
        let delay = match until {
            // A little jitter after the reset keeps a burst of retries from all knocking at the same millisecond.
            Some(until) => {
                until.duration_since(SystemTime::now()).unwrap_or_default()
                    + Duration::from_secs(1)
                    + Duration::from_millis(fastrand::u64(0..2000))
            }
            None => backoff,
        };
        // Visibility timeouts are whole seconds; round up so that a reset time is never undershot.
        let delay = Duration::from_secs(delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
        Outcome::RetryLater { delay, reason }
    }
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::AlreadyPosted => "already_posted",
            Self::RetryLater { .. } => "retry_later",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::Duplicate { .. } => "duplicate",
            Self::Held => "held",
            Self::Rejected => "rejected",
        }
    }
}

/// A record that can never become a chat message.
struct Undeliverable(String);

/// How many times SQS has delivered this record (1 on its first delivery).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests;
