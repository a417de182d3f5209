//! The chat stand-ins of the local runner: a board that shows delivered questions (so the demo needs no chat
//! server), and a switch in front of any chat that simulates an outage from the instructor page.
//!
//! The chat message carries the time of asking to the minute only, and retries and outages deliver questions out
//! of order; so the board learns each question's exact submission time from the intake side
//! ([`SubmissionClock`]) and shows each channel's questions in the order they were asked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use qrelay::chat::{ChatError, ChatMessage, ChatPoster, Delivery, Guarantee};
use qrelay::domain::{QuestionId, QuestionMessage, Rooms};
use qrelay::publish::QuestionPublisher;
use serde::Serialize;

/// A chat that keeps its messages in memory and shows them on `/board`. Idempotent, like Rocket.Chat with
/// message ids: a question already on the board is not added again.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<BoardState>,
    clock: SubmissionClock,
}

#[derive(Debug, Default)]
struct BoardState {
    messages: Vec<BoardMessage>,
    ids: HashSet<QuestionId>,
}

/// One message on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardMessage {
    /// Position on the board, from 1: the order of delivery.
    pub seq: usize,
    pub id: String,
    pub channel: String,
    /// The message exactly as it would be posted to the chat (header and neutralised text).
    pub text: String,
    pub posted_at: jiff::Timestamp,
    /// When the student sent it, if the question went through this runner's intake (`None` for a question
    /// published by another process, such as `cargo lambda invoke intake`).
    pub submitted_at: Option<jiff::Timestamp>,
}

impl BoardMessage {
    /// When the question was asked, as best known: its submission time, or else its delivery time.
    pub fn asked_at(&self) -> jiff::Timestamp {
        self.submitted_at.unwrap_or(self.posted_at)
    }
}

/// One chat channel's messages, in the order they were asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub messages: Vec<BoardMessage>,
}

impl Board {
    /// Messages after position `after` (0 for all), in the order they were delivered.
    pub fn messages_after(&self, after: usize) -> Vec<BoardMessage> {
        let state = self.lock();
        state.messages.iter().skip(after).cloned().collect()
    }

    /// The board as the chat shows it: a channel per room (in the rooms' order, channels that received nothing
    /// left out), each channel's messages in the order they were asked (delivery order between equal times).
    pub fn channels(&self, rooms: &Rooms) -> Vec<Channel> {
        let mut channels: Vec<Channel> = Vec::new();
        for room in rooms.iter() {
            if !channels.iter().any(|c| c.name == room.channel()) {
                channels.push(Channel {
                    name: room.channel().to_owned(),
                    messages: Vec::new(),
                });
            }
        }
        for message in self.messages_after(0) {
            match channels.iter_mut().find(|c| c.name == message.channel) {
                Some(channel) => channel.messages.push(message),
                None => channels.push(Channel {
                    name: message.channel.clone(),
                    messages: vec![message],
                }),
            }
        }
        channels.retain(|c| !c.messages.is_empty());
        for channel in &mut channels {
            channel.messages.sort_by_key(|m| (m.asked_at(), m.seq));
        }
        channels
    }

    /// Where the intake side records submission times for this board.
    pub fn clock(&self) -> &SubmissionClock {
        &self.clock
    }

    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ChatPoster for Board {
    /// The board keeps each question's id, like Rocket.Chat's message `_id`.
    fn guarantee(&self) -> Guarantee {
        Guarantee::ExactlyOnce
    }

    async fn is_posted(&self, id: QuestionId, _channel: &str) -> Result<bool, ChatError> {
        Ok(self.lock().ids.contains(&id))
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let submitted_at = self.clock.take(id);
        let mut state = self.lock();
        if !state.ids.insert(id) {
            return Ok(Delivery::AlreadyPosted);
        }
        let seq = state.messages.len() + 1;
        state.messages.push(BoardMessage {
            seq,
            id: id.to_string(),
            channel: channel.to_owned(),
            text: message.as_ref().to_owned(),
            posted_at: jiff::Timestamp::now(),
            submitted_at,
        });
        Ok(Delivery::Posted)
    }
}

/// Submission times of questions published but not yet on the board, by id. A student's retry of the same
/// question keeps the first time, as the consumer keeps the first post.
#[derive(Debug, Default)]
pub struct SubmissionClock {
    times: Mutex<HashMap<QuestionId, jiff::Timestamp>>,
}

impl SubmissionClock {
    /// Records `question`'s submission time, read from its published document (the field is the document's, not
    /// the library's to hand out).
    pub fn record(&self, question: &QuestionMessage) {
        let document: serde_json::Value = serde_json::from_str(&question.to_json()).unwrap_or_default();
        let Some(at) = document["submitted_at"]
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        else {
            return;
        };
        self.lock().entry(question.id).or_insert(at);
    }

    fn take(&self, id: QuestionId) -> Option<jiff::Timestamp> {
        self.lock().remove(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QuestionId, jiff::Timestamp>> {
        self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A publisher that tells the board when each question was asked, then publishes it as `inner` does.
pub struct ClockedPublisher {
    pub inner: Arc<dyn QuestionPublisher>,
    pub board: Arc<Board>,
}

impl std::fmt::Debug for ClockedPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockedPublisher").finish_non_exhaustive()
    }
}

#[async_trait]
impl QuestionPublisher for ClockedPublisher {
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String> {
        // Before publishing: the consumer may post the question before `publish` returns.
        self.board.clock().record(question);
        self.inner.publish(question).await
    }
}

/// Puts any chat behind a switch: while "down", every post fails as if the chat server were unreachable.
pub struct OutageSwitch {
    inner: Arc<dyn ChatPoster>,
    down: AtomicBool,
}

impl std::fmt::Debug for OutageSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutageSwitch")
            .field("down", &self.is_down())
            .finish_non_exhaustive()
    }
}

impl OutageSwitch {
    pub fn new(inner: Arc<dyn ChatPoster>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ChatPoster for OutageSwitch {
    fn guarantee(&self) -> Guarantee {
        self.inner.guarantee()
    }

    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        self.check()?;
        self.inner.post(id, channel, message).await
    }

    async fn is_posted(&self, id: QuestionId, channel: &str) -> Result<bool, ChatError> {
        self.check()?;
        self.inner.is_posted(id, channel).await
    }

    async fn signals(&self, id: QuestionId, channel: &str) -> Result<Option<qrelay::chat::Signals>, ChatError> {
        self.check()?;
        self.inner.signals(id, channel).await
    }
}

impl OutageSwitch {
    fn check(&self) -> Result<(), ChatError> {
        if self.is_down() {
            return Err(ChatError::Unavailable(
                "simulated outage (switched on from the instructor page)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(id: &str, room: &str, text: &str, at: &str) -> QuestionMessage {
        QuestionMessage::from_json(
            &serde_json::json!({"v": 1, "id": id, "room": room, "text": text, "nickname": null, "submitted_at": at})
                .to_string(),
        )
        .expect("a valid document")
    }

    async fn deliver(board: &Board, question: &QuestionMessage, channel: &str) {
        let message = ChatMessage::render(
            &qrelay::domain::Question::try_from(question.clone()).expect("valid question"),
            &jiff::tz::TimeZone::UTC,
        )
        .expect("fits");
        board.post(question.id, channel, &message).await.expect("posted");
    }

    const IDS: [&str; 4] = [
        "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e51",
        "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e52",
        "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e53",
        "6f1f3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e54",
    ];

    #[tokio::test]
    async fn the_outage_switch_passes_the_look_up_and_the_guarantee_through_and_blocks_both_when_down() {
        let board = Arc::new(Board::default());
        let switch = OutageSwitch::new(board.clone());
        let asked = question(IDS[0], "general", "q", "2026-11-22T09:30:00Z");
        assert_eq!(switch.guarantee(), Guarantee::ExactlyOnce, "the board's own guarantee");
        assert!(
            !switch.is_posted(asked.id, "general").await.expect("up"),
            "not posted yet"
        );
        deliver(&board, &asked, "general").await;
        assert!(
            switch.is_posted(asked.id, "general").await.expect("up"),
            "a redelivered question is found, not posted again"
        );
        switch.set_down(true);
        assert!(
            matches!(
                switch.is_posted(asked.id, "general").await,
                Err(ChatError::Unavailable(_))
            ),
            "while down, the look-up fails like the post"
        );
    }

    #[tokio::test]
    async fn each_channel_shows_its_questions_in_the_order_they_were_asked() {
        let board = Board::default();
        let rooms = Rooms::parse("general,rust-101").expect("rooms");
        // Asked in this order; delivered in another, as after an outage with jittered retries.
        let asked = [
            question(IDS[0], "rust-101", "first", "2026-11-22T09:30:00.100Z"),
            question(IDS[1], "general", "other room", "2026-11-22T09:30:00.200Z"),
            question(IDS[2], "rust-101", "second", "2026-11-22T09:30:00.300Z"),
            question(IDS[3], "rust-101", "third", "2026-11-22T09:30:00.400Z"),
        ];
        for q in &asked {
            board.clock().record(q);
        }
        for index in [3, 2, 1, 0] {
            deliver(&board, &asked[index], &asked[index].room).await;
        }

        let channels = board.channels(&rooms);
        let shown: Vec<(&str, Vec<&str>)> = channels
            .iter()
            .map(|c| {
                let texts = c
                    .messages
                    .iter()
                    .map(|m| m.text.rsplit("> ").next().unwrap_or_default())
                    .collect();
                (c.name.as_str(), texts)
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("general", vec!["other room"]),
                ("rust-101", vec!["first", "second", "third"])
            ],
            "channels in the rooms' order, questions in the order asked"
        );
        let seqs: Vec<usize> = board.messages_after(0).iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "messages_after keeps delivery order for the bench");
        assert_eq!(board.messages_after(0)[0].text.rsplit("> ").next(), Some("third"));
    }

    #[tokio::test]
    async fn a_question_from_elsewhere_is_placed_by_its_delivery_time_and_a_retry_keeps_the_first_time() {
        let board = Board::default();
        let rooms = Rooms::parse("general").expect("rooms");
        let first = question(IDS[0], "general", "a", "2026-11-22T09:30:00Z");
        board.clock().record(&first);
        board
            .clock()
            .record(&question(IDS[0], "general", "a", "2026-11-22T09:31:00Z"));
        let unknown = question(IDS[1], "general", "b", "2026-11-22T09:29:00Z");
        deliver(&board, &unknown, "general").await;
        deliver(&board, &first, "general").await;

        let messages = &board.channels(&rooms)[0].messages;
        assert_eq!(messages[0].id, IDS[0], "asked at 09:30, before b's delivery just now");
        assert_eq!(
            messages[0].submitted_at,
            Some("2026-11-22T09:30:00Z".parse().expect("time"))
        );
        assert_eq!(messages[1].submitted_at, None, "not published through this runner");
    }
}
