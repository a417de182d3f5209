//! The chat stand-ins of the local runner: a board that shows delivered questions (so the demo needs no chat
//! server), and a switch in front of any chat that simulates an outage from the instructor page.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use qrelay::chat::{ChatError, ChatMessage, ChatPoster, Delivery};
use qrelay::domain::QuestionId;
use serde::Serialize;

/// A chat that keeps its messages in memory and shows them on `/board`. Idempotent, like Rocket.Chat with
/// message ids: a question already on the board is not added again.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<BoardState>,
}

#[derive(Debug, Default)]
struct BoardState {
    messages: Vec<BoardMessage>,
    ids: HashSet<QuestionId>,
}

/// One message on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardMessage {
    /// Position on the board, from 1.
    pub seq: usize,
    pub id: String,
    pub channel: String,
    /// The message exactly as it would be posted to the chat (header and neutralised text).
    pub text: String,
    pub posted_at: jiff::Timestamp,
}

impl Board {
    /// Messages after position `after` (0 for all).
    pub fn messages_after(&self, after: usize) -> Vec<BoardMessage> {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.messages.iter().skip(after).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .messages
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ChatPoster for Board {
    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        });
        Ok(Delivery::Posted)
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
    async fn post(&self, id: QuestionId, channel: &str, message: &ChatMessage) -> Result<Delivery, ChatError> {
        if self.is_down() {
            return Err(ChatError::Unavailable(
                "simulated outage (switched on from the instructor page)".into(),
            ));
        }
        self.inner.post(id, channel, message).await
    }
}
