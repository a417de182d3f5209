//! The control store in memory: the local runner's default and the tests'. Same rules as the DynamoDB store,
//! each operation atomic under one lock as each DynamoDB conditional write is.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use jiff::Timestamp;

use super::{
    APPROVAL_TAKEOVER_AFTER, Archived, ControlStore, Decided, Decision, HeldQuestion, HeldStatus, HoldReason,
    RoomState, RoomStatus, StateReason, StoreError, archive_sk, flood_minute, text_key,
};
use crate::domain::{Question, QuestionId, QuestionMessage, RoomName};

#[derive(Debug, Default)]
struct Tables {
    rooms: HashMap<RoomName, RoomStatus>,
    held: HashMap<(RoomName, QuestionId), Held>,
    flood: HashMap<(RoomName, i64), HashSet<String>>,
    /// Archiving fails while set (the consumer's tests: a table that can't be written).
    archive_fails: bool,
    /// The escalation's incident and its version.
    incident: Option<(crate::escalation::Incident, u64)>,
    /// Archived questions by room, then by their sort key (submission time, id).
    archive: HashMap<RoomName, std::collections::BTreeMap<String, Archived>>,
}

#[derive(Debug, Clone)]
struct Held {
    question: HeldQuestion,
    decided_at: Option<Timestamp>,
    published: bool,
}

/// Room states, held questions and flood counters in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every `archive` fail (or work again), as an unreachable table would.
    #[cfg(test)]
    pub(crate) fn fail_archiving(&self, fail: bool) {
        self.lock().archive_fails = fail;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ControlStore for MemoryStore {
    async fn room_status(&self, room: &RoomName) -> Result<RoomStatus, StoreError> {
        Ok(self.lock().rooms.get(room).cloned().unwrap_or_default())
    }

    async fn set_room_state(
        &self,
        room: &RoomName,
        state: RoomState,
        now: Timestamp,
    ) -> Result<RoomStatus, StoreError> {
        let status = RoomStatus {
            state,
            reason: Some(StateReason::Instructor),
            changed_at: Some(now),
            pending_notice: None,
        };
        self.lock().rooms.insert(room.clone(), status.clone());
        Ok(status)
    }

    async fn count_arrival(&self, question: &Question) -> Result<u32, StoreError> {
        let mut tables = self.lock();
        let minute = flood_minute(question);
        // Old minutes are of no further use (DynamoDB's TTL drops them there).
        tables.flood.retain(|(_, m), _| *m >= minute - 2);
        let texts = tables.flood.entry((question.room.clone(), minute)).or_default();
        texts.insert(text_key(question));
        Ok(texts.len() as u32)
    }

    async fn trip_flood(&self, room: &RoomName, notice: QuestionId, now: Timestamp) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let status = tables.rooms.entry(room.clone()).or_default();
        if status.state != RoomState::Open {
            return Ok(false);
        }
        *status = RoomStatus {
            state: RoomState::Review,
            reason: Some(StateReason::Flood),
            changed_at: Some(now),
            pending_notice: Some(notice),
        };
        Ok(true)
    }

    async fn notice_posted(&self, room: &RoomName, notice: QuestionId) -> Result<(), StoreError> {
        if let Some(status) = self.lock().rooms.get_mut(room) {
            if status.pending_notice == Some(notice) {
                status.pending_notice = None;
            }
        }
        Ok(())
    }

    async fn hold(
        &self,
        question: &Question,
        reason: HoldReason,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<HeldStatus, StoreError> {
        let mut tables = self.lock();
        let key = (question.room.clone(), question.id);
        let held = tables.held.entry(key).or_insert_with(|| Held {
            question: HeldQuestion {
                question: QuestionMessage::from(question),
                reason,
                status: HeldStatus::Held,
                held_at: now,
                expires_at,
            },
            decided_at: None,
            published: false,
        });
        Ok(held.question.status)
    }

    async fn held(&self, room: &RoomName, now: Timestamp) -> Result<Vec<HeldQuestion>, StoreError> {
        let mut tables = self.lock();
        tables.held.retain(|_, held| held.question.expires_at > now);
        let mut out: Vec<HeldQuestion> = tables
            .held
            .iter()
            .filter(|((r, _), _)| r == room)
            .map(|(_, held)| held.question.clone())
            .collect();
        super::sort_held(&mut out);
        Ok(out)
    }

    async fn decide(
        &self,
        room: &RoomName,
        id: QuestionId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Decided, StoreError> {
        let mut tables = self.lock();
        let Some(held) = tables
            .held
            .get_mut(&(room.clone(), id))
            .filter(|held| held.question.expires_at > now)
        else {
            return Ok(Decided::Unknown);
        };
        let status = held.question.status;
        let stale = held
            .decided_at
            .is_some_and(|at| now.duration_since(at).unsigned_abs() >= APPROVAL_TAKEOVER_AFTER);
        let decide_now = match (decision, status) {
            (_, HeldStatus::Held) => true,
            (Decision::Approve, HeldStatus::Approved) => !held.published && stale,
            _ => false,
        };
        if !decide_now {
            return Ok(Decided::Already(status));
        }
        held.question.status = match decision {
            Decision::Approve => HeldStatus::Approved,
            Decision::Reject => HeldStatus::Rejected,
        };
        held.decided_at = Some(now);
        Ok(Decided::Now(Box::new(held.question.clone())))
    }

    async fn mark_published(&self, room: &RoomName, id: QuestionId, _now: Timestamp) -> Result<(), StoreError> {
        if let Some(held) = self.lock().held.get_mut(&(room.clone(), id)) {
            held.published = true;
        }
        Ok(())
    }

    async fn archive(&self, question: &Question, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        let key = archive_sk(question.submitted_at, Some(question.id));
        let mut tables = self.lock();
        if tables.archive_fails {
            return Err(StoreError("the archive can't be written (a test's switch)".into()));
        }
        tables
            .archive
            .entry(question.room.clone())
            .or_default()
            .entry(key)
            .or_insert_with(|| Archived {
                question: QuestionMessage::from(question),
                delivered_at: now,
                expires_at,
            });
        Ok(())
    }

    async fn archived(
        &self,
        room: &RoomName,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Archived>, StoreError> {
        let tables = self.lock();
        let Some(archive) = tables.archive.get(room) else {
            return Ok(Vec::new());
        };
        Ok(archive
            .range(archive_sk(from, None)..archive_sk(to, None))
            .map(|(_, a)| a)
            .filter(|a| a.expires_at > now)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl crate::escalation::EscalationStore for MemoryStore {
    async fn incident(&self) -> Result<crate::escalation::Versioned<crate::escalation::Incident>, StoreError> {
        let (value, version) = self.lock().incident.clone().unwrap_or_default();
        Ok(crate::escalation::Versioned { value, version })
    }

    async fn save_incident(&self, incident: &crate::escalation::Incident, read: u64) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let current = tables.incident.as_ref().map_or(0, |(_, v)| *v);
        if current != read {
            return Ok(false);
        }
        tables.incident = Some((incident.clone(), read + 1));
        Ok(true)
    }
}
