//! The control store in one DynamoDB table (`CONTROL_TABLE`): keys `pk` and `sk`, TTL on `expires_at`.
//!
//! | item | `pk` | `sk` |
//! | --- | --- | --- |
//! | a room's state | `room#<room>` | `state` |
//! | a held question | `room#<room>` | `held#<question id>` |
//! | a room's distinct texts in one minute | `room#<room>` | `flood#<minute>` |
//! | the escalation's chat-down incident | `escalation` | `incident` |
//! | a question delivered to the chat | `room#<room>` | `asked#<submission time in ms, 15 digits>#<question id>` |
//!
//! Every decision is one conditional write, so two instructors (or two consumers) racing get one winner.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use jiff::Timestamp;

use super::{
    APPROVAL_TAKEOVER_AFTER, Archived, ControlStore, Decided, Decision, HeldQuestion, HeldStatus, HoldReason,
    RoomState, RoomStatus, StateReason, StoreError, archive_sk, flood_minute, text_key,
};
use crate::domain::{Question, QuestionId, QuestionMessage, RoomName};

/// How long a flood counter is kept: long past its minute, short enough to cost nothing.
const FLOOD_COUNTER_TTL_S: i64 = 3600;

type Item = HashMap<String, AttributeValue>;

/// Room states, held questions and flood counters in a DynamoDB table.
#[derive(Debug)]
pub struct DynamoStore {
    client: tokio::sync::OnceCell<aws_sdk_dynamodb::Client>,
    table: String,
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new_with(Some(client)),
            table: table.into(),
        }
    }

    /// A store that loads the AWS configuration and builds its client on first use, not at cold start (the intake's
    /// first request is usually a student opening the form, which needs no table).
    pub fn lazy(table: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new(),
            table: table.into(),
        }
    }

    async fn db(&self) -> &aws_sdk_dynamodb::Client {
        self.client
            .get_or_init(|| async { aws_sdk_dynamodb::Client::new(crate::aws::shared().await) })
            .await
    }

    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .db()
            .await
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem"))?;
        Ok(out.item)
    }
}

impl DynamoStore {
    /// Every item a key condition matches, page after page.
    async fn query_all(
        &self,
        condition: &str,
        values: impl IntoIterator<Item = (&'static str, AttributeValue)>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let values: HashMap<String, AttributeValue> = values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .db()
                .await
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(consistent)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(failed("Query"))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn room_pk(room: &RoomName) -> String {
    format!("room#{}", room.as_ref())
}

fn held_sk(id: QuestionId) -> String {
    format!("held#{id}")
}

/// The error as the logs and the console show it: the operation and the SDK's whole error chain.
fn failed<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    operation: &'static str,
) -> impl Fn(SdkError<E, R>) -> StoreError {
    move |e| {
        StoreError(format!(
            "DynamoDB {operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        ))
    }
}

/// Whether the error is DynamoDB refusing a conditional write because its condition was false.
fn condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn time(item: &Item, name: &str) -> Option<Timestamp> {
    number(item, name).and_then(|s| Timestamp::from_second(s).ok())
}

fn room_status(item: &Item) -> Result<RoomStatus, StoreError> {
    let state = text(item, "state").unwrap_or("open");
    Ok(RoomStatus {
        state: state
            .parse::<RoomState>()
            .map_err(|e| StoreError(format!("a room state item: {e}")))?,
        reason: text(item, "reason").and_then(StateReason::parse),
        changed_at: time(item, "changed_at"),
        pending_notice: text(item, "pending_notice").and_then(QuestionId::parse),
    })
}

fn held_question(item: &Item) -> Result<HeldQuestion, StoreError> {
    let bad = |what: &str| StoreError(format!("a held question item has no valid {what}"));
    Ok(HeldQuestion {
        question: text(item, "question")
            .and_then(|json| QuestionMessage::from_json(json).ok())
            .ok_or_else(|| bad("question"))?,
        reason: text(item, "hold_reason")
            .and_then(HoldReason::parse)
            .ok_or_else(|| bad("hold_reason"))?,
        status: text(item, "status")
            .and_then(HeldStatus::parse)
            .ok_or_else(|| bad("status"))?,
        held_at: time(item, "held_at").ok_or_else(|| bad("held_at"))?,
        expires_at: time(item, "expires_at").ok_or_else(|| bad("expires_at"))?,
    })
}

fn archived(item: &Item) -> Result<Archived, StoreError> {
    let bad = |what: &str| StoreError(format!("an archived question item has no valid {what}"));
    Ok(Archived {
        question: text(item, "question")
            .and_then(|json| QuestionMessage::from_json(json).ok())
            .ok_or_else(|| bad("question"))?,
        delivered_at: time(item, "delivered_at").ok_or_else(|| bad("delivered_at"))?,
        expires_at: time(item, "expires_at").ok_or_else(|| bad("expires_at"))?,
    })
}

#[async_trait]
impl ControlStore for DynamoStore {
    async fn room_status(&self, room: &RoomName) -> Result<RoomStatus, StoreError> {
        match self.get(room_pk(room), "state".into()).await? {
            Some(item) => room_status(&item),
            None => Ok(RoomStatus::default()),
        }
    }

    async fn set_room_state(
        &self,
        room: &RoomName,
        state: RoomState,
        now: Timestamp,
    ) -> Result<RoomStatus, StoreError> {
        self.db()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", s(room_pk(room)))
            .item("sk", s("state"))
            .item("state", s(state.name()))
            .item("reason", s(StateReason::Instructor.name()))
            .item("changed_at", n(now.as_second()))
            .send()
            .await
            .map_err(failed("PutItem"))?;
        Ok(RoomStatus {
            state,
            reason: Some(StateReason::Instructor),
            changed_at: Some(now),
            pending_notice: None,
        })
    }

    async fn count_arrival(&self, question: &Question) -> Result<u32, StoreError> {
        let minute = flood_minute(question);
        let out = self
            .db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(&question.room)))
            .key("sk", s(format!("flood#{minute}")))
            .update_expression("ADD #texts :text SET #exp = if_not_exists(#exp, :exp)")
            .expression_attribute_names("#texts", "texts")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":text", AttributeValue::Ss(vec![text_key(question)]))
            .expression_attribute_values(":exp", n(minute * 60 + FLOOD_COUNTER_TTL_S))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        let count = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("texts"))
            .and_then(|v| v.as_ss().ok())
            .map_or(1, Vec::len);
        Ok(count as u32)
    }

    async fn trip_flood(&self, room: &RoomName, notice: QuestionId, now: Timestamp) -> Result<bool, StoreError> {
        let result = self
            .db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(room)))
            .key("sk", s("state"))
            .update_expression("SET #state = :review, #reason = :flood, #changed = :now, #notice = :notice")
            .condition_expression("attribute_not_exists(#state) OR #state = :open")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#reason", "reason")
            .expression_attribute_names("#changed", "changed_at")
            .expression_attribute_names("#notice", "pending_notice")
            .expression_attribute_values(":review", s(RoomState::Review.name()))
            .expression_attribute_values(":open", s(RoomState::Open.name()))
            .expression_attribute_values(":flood", s(StateReason::Flood.name()))
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":notice", s(notice.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed("UpdateItem")(e)),
        }
    }

    async fn notice_posted(&self, room: &RoomName, notice: QuestionId) -> Result<(), StoreError> {
        let result = self
            .db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(room)))
            .key("sk", s("state"))
            .update_expression("REMOVE #notice")
            .condition_expression("#notice = :notice")
            .expression_attribute_names("#notice", "pending_notice")
            .expression_attribute_values(":notice", s(notice.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone else cleared it, or the instructor switched the room since.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failed("UpdateItem")(e)),
        }
    }

    async fn hold(
        &self,
        question: &Question,
        reason: HoldReason,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<HeldStatus, StoreError> {
        let result = self
            .db()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", s(room_pk(&question.room)))
            .item("sk", s(held_sk(question.id)))
            .item("question", s(QuestionMessage::from(question).to_json()))
            .item("hold_reason", s(reason.name()))
            .item("status", s(HeldStatus::Held.name()))
            .item("held_at", n(now.as_second()))
            .item("expires_at", n(expires_at.as_second()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(HeldStatus::Held),
            Err(e) if condition_failed(&e) => {
                let item = self
                    .get(room_pk(&question.room), held_sk(question.id))
                    .await?
                    .ok_or_else(|| StoreError("a held question vanished while being read".into()))?;
                Ok(held_question(&item)?.status)
            }
            Err(e) => Err(failed("PutItem")(e)),
        }
    }

    async fn held(&self, room: &RoomName, now: Timestamp) -> Result<Vec<HeldQuestion>, StoreError> {
        let items = self
            .query_all(
                "pk = :pk AND begins_with(sk, :held)",
                [(":pk", s(room_pk(room))), (":held", s("held#"))],
                true,
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let held = held_question(item)?;
            // DynamoDB deletes expired items within a day or two, not at once.
            if held.expires_at > now {
                out.push(held);
            }
        }
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
        let (status, condition) = match decision {
            Decision::Approve => (
                HeldStatus::Approved,
                // Undecided, or approved by a call that never got to publish it and is long gone.
                "attribute_exists(pk) AND #exp > :now AND (#status = :held OR (#status = :approved AND \
                 attribute_not_exists(#published) AND #decided <= :stale))",
            ),
            Decision::Reject => (
                HeldStatus::Rejected,
                "attribute_exists(pk) AND #exp > :now AND #status = :held",
            ),
        };
        let stale = now.as_second() - APPROVAL_TAKEOVER_AFTER.as_secs() as i64;
        let mut update = self
            .db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(room)))
            .key("sk", s(held_sk(id)))
            .update_expression("SET #status = :status, #decided = :now")
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#decided", "decided_at")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":status", s(status.name()))
            .expression_attribute_values(":held", s(HeldStatus::Held.name()))
            .expression_attribute_values(":now", n(now.as_second()))
            .return_values(ReturnValue::AllNew);
        if decision == Decision::Approve {
            update = update
                .expression_attribute_names("#published", "published_at")
                .expression_attribute_values(":approved", s(HeldStatus::Approved.name()))
                .expression_attribute_values(":stale", n(stale));
        }
        match update.send().await {
            Ok(out) => {
                let item = out
                    .attributes
                    .ok_or_else(|| StoreError("UpdateItem returned no attributes".into()))?;
                Ok(Decided::Now(Box::new(held_question(&item)?)))
            }
            Err(e) if condition_failed(&e) => match self.get(room_pk(room), held_sk(id)).await? {
                None => Ok(Decided::Unknown),
                Some(item) => {
                    let held = held_question(&item)?;
                    if held.expires_at <= now {
                        Ok(Decided::Unknown)
                    } else {
                        Ok(Decided::Already(held.status))
                    }
                }
            },
            Err(e) => Err(failed("UpdateItem")(e)),
        }
    }

    async fn mark_published(&self, room: &RoomName, id: QuestionId, now: Timestamp) -> Result<(), StoreError> {
        self.db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(room)))
            .key("sk", s(held_sk(id)))
            .update_expression("SET #published = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#published", "published_at")
            .expression_attribute_values(":now", n(now.as_second()))
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        Ok(())
    }

    async fn archive(&self, question: &Question, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        // One write whatever came before: the document is the same on every delivery, and the first delivery
        // time and expiry stay as they were.
        self.db()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(room_pk(&question.room)))
            .key("sk", s(archive_sk(question.submitted_at, Some(question.id))))
            .update_expression(
                "SET #question = :question, #delivered = if_not_exists(#delivered, :now), \
                 #exp = if_not_exists(#exp, :exp)",
            )
            .expression_attribute_names("#question", "question")
            .expression_attribute_names("#delivered", "delivered_at")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":question", s(QuestionMessage::from(question).to_json()))
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":exp", n(expires_at.as_second()))
            .send()
            .await
            .map_err(failed("UpdateItem"))?;
        Ok(())
    }

    async fn archived(
        &self,
        room: &RoomName,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Archived>, StoreError> {
        // `asked#<to>` sorts before every key of a question submitted at `to` (their ids follow), so BETWEEN ends
        // just before `to`.
        let items = self
            .query_all(
                "pk = :pk AND sk BETWEEN :from AND :to",
                [
                    (":pk", s(room_pk(room))),
                    (":from", s(archive_sk(from, None))),
                    (":to", s(archive_sk(to, None))),
                ],
                false,
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let archived = archived(item)?;
            if archived.expires_at > now {
                out.push(archived);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl crate::escalation::EscalationStore for DynamoStore {
    async fn incident(&self) -> Result<crate::escalation::Versioned<crate::escalation::Incident>, StoreError> {
        let Some(item) = self.get("escalation".into(), "incident".into()).await? else {
            return Ok(crate::escalation::Versioned {
                value: crate::escalation::Incident::default(),
                version: 0,
            });
        };
        let value = text(&item, "incident")
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| StoreError("the escalation item has no valid incident".into()))?;
        let version = number(&item, "version").unwrap_or(0).max(0) as u64;
        Ok(crate::escalation::Versioned { value, version })
    }

    async fn save_incident(&self, incident: &crate::escalation::Incident, read: u64) -> Result<bool, StoreError> {
        let json = serde_json::to_string(incident).map_err(|e| StoreError(e.to_string()))?;
        let mut put = self
            .db()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", s("escalation"))
            .item("sk", s("incident"))
            .item("incident", s(json))
            .item("version", n(read as i64 + 1));
        put = if read == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#version = :read")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", n(read as i64))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failed("PutItem")(e)),
        }
    }
}
