//! The instructor's control over a class: room states (open, review, paused), questions held for review, and the
//! flood breaker's counters, in one store (a DynamoDB table when deployed, memory locally and in tests).
//!
//! Nothing here identifies a student: a held question is the question document itself (room, text, nickname,
//! time, id), and the flood breaker counts a room's distinct texts per minute, never who sent them.
//!
//! **Invariant:** a held question is posted only after a decision moved it from `held` to `approved` in one
//! conditional write, and the post goes through the queue with the question's own id, so the chat's idempotency
//! and the consumer's retries apply to it as to any question: approving twice, or while the chat is down, or from
//! two phones at once, still posts it once.

mod cache;
mod dynamo;
mod memory;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

pub use cache::CachedRooms;
pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

use crate::domain::{Question, QuestionId, QuestionMessage, RoomName};

/// Whether a room takes questions, and whether they go to the chat at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomState {
    /// Questions go to the chat (the default for a room never switched).
    #[default]
    Open,
    /// Questions are held until the instructor approves or rejects each.
    Review,
    /// The form refuses questions; nothing is published.
    Paused,
}

impl RoomState {
    pub const ALL: [Self; 3] = [Self::Open, Self::Review, Self::Paused];

    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Review => "review",
            Self::Paused => "paused",
        }
    }
}

impl fmt::Display for RoomState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A room state that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a room state: use open, review or paused")]
pub struct InvalidRoomState(pub String);

impl FromStr for RoomState {
    type Err = InvalidRoomState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.name() == s)
            .ok_or_else(|| InvalidRoomState(s.to_owned()))
    }
}

/// Who or what last switched a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateReason {
    /// An instructor, from the console.
    Instructor,
    /// The flood breaker: too many questions in a minute.
    Flood,
}

impl StateReason {
    fn name(self) -> &'static str {
        match self {
            Self::Instructor => "instructor",
            Self::Flood => "flood",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Instructor, Self::Flood].into_iter().find(|r| r.name() == s)
    }
}

/// A room's state as stored, with why and when it last changed, and the flood notice still owed to its channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomStatus {
    pub state: RoomState,
    pub reason: Option<StateReason>,
    pub changed_at: Option<Timestamp>,
    /// The id of a flood notice the breaker decided to post and nobody has posted yet.
    pub pending_notice: Option<QuestionId>,
}

/// Why a question is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldReason {
    /// Its room is under review.
    Review,
    /// The flood breaker held it.
    Flood,
}

impl HoldReason {
    fn name(self) -> &'static str {
        match self {
            Self::Review => "review",
            Self::Flood => "flood",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Review, Self::Flood].into_iter().find(|r| r.name() == s)
    }
}

/// Where a held question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeldStatus {
    Held,
    Approved,
    Rejected,
}

impl HeldStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// A question the consumer stored instead of posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldQuestion {
    pub question: QuestionMessage,
    pub reason: HoldReason,
    pub status: HeldStatus,
    pub held_at: Timestamp,
    /// When the store forgets it (DynamoDB's TTL); it is treated as gone from then on.
    pub expires_at: Timestamp,
}

/// A question as it reached the chat, kept for the after-class digest and the export until `expires_at`
/// (`RETENTION_DAYS`). Nothing more than the question itself: no sender, no address, no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub question: QuestionMessage,
    /// When the consumer first found it in the chat (posted, or posted by an earlier delivery).
    pub delivered_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The instructor's decision on a held question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// This call made the decision (or, for an approval, took over one whose publish never completed): for an
    /// approval the caller must now publish the question and then call [`ControlStore::mark_published`].
    Now(Box<HeldQuestion>),
    /// Decided before, as this status: nothing to do.
    Already(HeldStatus),
    /// No such held question in that room (never held, or expired).
    Unknown,
}

/// How long an approval may take to publish before another approval of the same question may take it over: an
/// approval whose function died between the decision and the publish is not stuck for good.
pub const APPROVAL_TAKEOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The store could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the control store failed: {0}")]
pub struct StoreError(pub String);

/// Room states, held questions and flood counters.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// The room's state; [`RoomState::Open`] for a room never switched.
    async fn room_status(&self, room: &RoomName) -> Result<RoomStatus, StoreError>;

    /// Sets a room's state (by the instructor), clearing any flood notice still owed.
    async fn set_room_state(&self, room: &RoomName, state: RoomState, now: Timestamp)
    -> Result<RoomStatus, StoreError>;

    /// Counts `question` in its room's minute (by submission time) and returns how many distinct texts that minute
    /// has now. Counting the same text again (a redelivery, or a second copy) does not raise the count.
    async fn count_arrival(&self, question: &Question) -> Result<u32, StoreError>;

    /// Switches an open room to review because of a flood, owing the channel the notice `notice`. True when this
    /// call made the switch; false when the room was not open (switched already, by the breaker or a person).
    async fn trip_flood(&self, room: &RoomName, notice: QuestionId, now: Timestamp) -> Result<bool, StoreError>;

    /// The flood notice `notice` is in the chat: no longer owed.
    async fn notice_posted(&self, room: &RoomName, notice: QuestionId) -> Result<(), StoreError>;

    /// Holds `question` until `expires_at`, unless it is held already: either way answers its status now (an
    /// approved question is then posted, a rejected one dropped).
    async fn hold(
        &self,
        question: &Question,
        reason: HoldReason,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<HeldStatus, StoreError>;

    /// The room's held questions not yet expired, undecided first, oldest first.
    async fn held(&self, room: &RoomName, now: Timestamp) -> Result<Vec<HeldQuestion>, StoreError>;

    /// Decides on held question `id` of `room`, in one conditional write.
    async fn decide(
        &self,
        room: &RoomName,
        id: QuestionId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Decided, StoreError>;

    /// The approved question `id` is published: no later approval publishes it again.
    async fn mark_published(&self, room: &RoomName, id: QuestionId, now: Timestamp) -> Result<(), StoreError>;

    /// Keeps `question`, delivered to the chat at `now`, until `expires_at`. Idempotent: archiving it again (a
    /// redelivery) keeps the first delivery time.
    async fn archive(&self, question: &Question, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError>;

    /// The room's archived questions submitted at or after `from` and before `to`, not expired at `now`, in
    /// submission order.
    async fn archived(
        &self,
        room: &RoomName,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Archived>, StoreError>;
}

/// The sort key of an archived question: its submission time in milliseconds, zero-padded so that the keys sort
/// as the times do, then its id (two questions may share a millisecond).
pub(crate) fn archive_sk(submitted_at: Timestamp, id: Option<QuestionId>) -> String {
    let ms = submitted_at.as_millisecond().max(0);
    match id {
        Some(id) => format!("asked#{ms:015}#{id}"),
        None => format!("asked#{ms:015}"),
    }
}

/// Undecided first, then oldest first: the order the console lists held questions in.
fn sort_held(held: &mut [HeldQuestion]) {
    held.sort_by_key(|h| {
        (
            h.status != HeldStatus::Held,
            h.question.submitted_at,
            h.question.id.to_string(),
        )
    });
}

/// The minute a question counts in for the flood breaker: its submission time, so a backlog delivered after an
/// outage is not mistaken for a flood.
pub(crate) fn flood_minute(question: &Question) -> i64 {
    question.submitted_at.as_second().div_euclid(60)
}

/// The room and the text with case folded and every run of white space made one space, hashed (FNV-1a, stable
/// across processes and builds): what makes two questions "the same text" for the flood breaker.
pub(crate) fn text_key(question: &Question) -> String {
    let mut hash = Fnv::new(0);
    for word in question.text.as_ref().split_whitespace() {
        hash.write(word.to_lowercase().as_bytes());
        hash.write(b" ");
    }
    format!("{:016x}", hash.0)
}

/// The id of the flood notice for `room` in `minute`: the same for every consumer that trips the breaker in that
/// minute, so the chat's idempotency posts it once.
pub fn flood_notice_id(room: &RoomName, minute: i64) -> QuestionId {
    let mut a = Fnv::new(1);
    let mut b = Fnv::new(2);
    for h in [&mut a, &mut b] {
        h.write(b"qrelay flood notice ");
        h.write(room.as_ref().as_bytes());
        h.write(&minute.to_be_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.0.to_be_bytes());
    bytes[8..].copy_from_slice(&b.0.to_be_bytes());
    QuestionId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// 64-bit FNV-1a, seeded.
struct Fnv(u64);

impl Fnv {
    fn new(seed: u64) -> Self {
        Self(0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x100_0000_01b3))
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests;
