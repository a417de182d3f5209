//! What the fake Rocket.Chat knows: rooms, webhooks, messages, the valid token, its failure mode and the requests it
//! received.
//!
//! It is one plain struct behind one mutex, so that every HTTP handler checks and updates it in a single critical
//! section: that is what makes two concurrent posts with the same `_id` store exactly one message, as Mongo's unique
//! `_id` index does on the real server.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::text::IdGenerator;
use crate::{Mode, RecordedRequest, StoredMessage, TOKEN};

pub(crate) struct State {
    pub(crate) mode: Mode,
    /// The only `X-Auth-Token` accepted.
    pub(crate) token: String,
    pub(crate) rate_limited_until: Option<SystemTime>,
    rooms: Vec<Room>,
    hooks: Vec<Hook>,
    messages: Vec<Record>,
    /// Position in `messages` by `_id`, the primary key.
    by_id: HashMap<String, usize>,
    /// Each request with a sequence number, so that its status can be filled in once answered even if
    /// `clear_requests` ran in between.
    requests: Vec<(u64, RecordedRequest)>,
    next_request: u64,
    ids: IdGenerator,
}

pub(crate) struct Room {
    pub(crate) id: String,
    pub(crate) name: String,
}

struct Hook {
    integration_id: String,
    token: String,
    channel: String,
}

/// A stored message and the server-side fields that tests do not need in [`StoredMessage`].
pub(crate) struct Record {
    pub(crate) message: StoredMessage,
    pub(crate) ts: SystemTime,
    /// Emoji shortcode (`:+1:`) → the usernames who reacted with it, as `chat.getMessage` shows them.
    pub(crate) reactions: std::collections::BTreeMap<String, Vec<String>>,
    /// The user ids who replied in the message's thread, once each, as `replies` shows them.
    pub(crate) replies: Vec<String>,
    /// How many thread replies there are (`tcount`).
    pub(crate) thread_count: u32,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            mode: Mode::Up,
            token: TOKEN.to_owned(),
            rate_limited_until: None,
            rooms: Vec::new(),
            hooks: Vec::new(),
            messages: Vec::new(),
            by_id: HashMap::new(),
            requests: Vec::new(),
            next_request: 0,
            ids: IdGenerator::new(),
        }
    }

    pub(crate) fn add_channel(&mut self, name: &str) -> String {
        let name = room_name(name);
        if let Some(room) = self.room_by_name(name) {
            return room.id.clone();
        }
        let id = self.ids.meteor_id();
        self.rooms.push(Room {
            id: id.clone(),
            name: name.to_owned(),
        });
        id
    }

    pub(crate) fn room_by_name(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.name == name)
    }

    pub(crate) fn room_by_id(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }

    /// Registers a webhook posting to `channel` and returns its integration id and token.
    pub(crate) fn add_webhook(&mut self, channel: &str) -> (String, String) {
        self.add_channel(channel);
        let integration_id = self.ids.meteor_id();
        let token = self.ids.webhook_token();
        let channel = room_name(channel).to_owned();
        self.hooks.push(Hook {
            integration_id: integration_id.clone(),
            token: token.clone(),
            channel,
        });
        (integration_id, token)
    }

    /// The room a webhook posts to, if `integration_id` and `token` name one.
    pub(crate) fn webhook_room(&self, integration_id: &str, token: &str) -> Option<&Room> {
        let hook = self
            .hooks
            .iter()
            .find(|h| h.integration_id == integration_id && h.token == token)?;
        self.room_by_name(&hook.channel)
    }

    pub(crate) fn new_message_id(&mut self) -> String {
        self.ids.meteor_id()
    }

    pub(crate) fn message(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).map(|&i| &self.messages[i])
    }

    /// Stores a message whose `_id` the caller checked to be new, under the same lock.
    pub(crate) fn store(&mut self, message: StoredMessage) -> &Record {
        debug_assert!(
            !self.by_id.contains_key(&message.id),
            "duplicate _id {} must be refused before",
            message.id
        );
        self.by_id.insert(message.id.clone(), self.messages.len());
        self.messages.push(Record {
            message,
            ts: SystemTime::now(),
            reactions: std::collections::BTreeMap::new(),
            replies: Vec::new(),
            thread_count: 0,
        });
        &self.messages[self.messages.len() - 1]
    }

    pub(crate) fn message_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.by_id.get(id).map(|&i| &mut self.messages[i])
    }

    pub(crate) fn messages(&self) -> impl Iterator<Item = &StoredMessage> {
        self.messages.iter().map(|r| &r.message)
    }

    /// Records a request as it arrives, and returns the number to give [`Self::record_status`].
    pub(crate) fn record_arrival(&mut self, method: &str, path: &str) -> u64 {
        let seq = self.next_request;
        self.next_request += 1;
        let request = RecordedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            status: 0,
            at: SystemTime::now(),
        };
        self.requests.push((seq, request));
        seq
    }

    pub(crate) fn record_status(&mut self, seq: u64, status: u16) {
        // Answers mostly come in arrival order, so the request is near the end.
        if let Some((_, request)) = self.requests.iter_mut().rev().find(|(s, _)| *s == seq) {
            request.status = status;
        }
    }

    pub(crate) fn requests(&self) -> impl Iterator<Item = &RecordedRequest> {
        self.requests.iter().map(|(_, r)| r)
    }

    pub(crate) fn clear_requests(&mut self) {
        self.requests.clear();
    }
}

/// A room name as Rocket.Chat stores it: `#` is how people write a channel, not part of its name.
pub(crate) fn room_name(name: &str) -> &str {
    name.strip_prefix('#').unwrap_or(name)
}
