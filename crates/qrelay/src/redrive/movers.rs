//! The ports the redrive function works through, and their SQS adapters: looking into the dead-letter queue,
//! and two ways of moving its messages back (copying them ourselves, or SQS's own message move task).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, SendMessageBatchRequestEntry,
};
use serde::Serialize;

use super::{DeadLetterReport, Failure};
use crate::sqs::DEAD_LETTER_REASON;

/// Looks into the dead-letter queue without moving anything.
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    /// Messages in the queue, visible or in flight (approximate, as SQS counts).
    async fn depth(&self) -> anyhow::Result<u64>;
    /// Reads every message once (until `stop_at`) and summarises them, then makes them visible again.
    async fn inspect(&self, stop_at: Instant) -> anyhow::Result<DeadLetterReport>;
}

/// Moves dead letters back to the queue they came from.
#[async_trait]
pub trait DeadLetterMover: Send + Sync {
    /// Moves up to `limit` messages (all when `None`), stopping in time for `stop_at`.
    async fn move_back(&self, limit: Option<u32>, stop_at: Instant) -> anyhow::Result<Moved>;
    /// Move tasks running or recently finished (none for a mover that works only while invoked).
    async fn status(&self) -> anyhow::Result<Vec<MoveTask>>;
}

/// What a move did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    pub moved: u32,
    pub failed: Vec<Failure>,
    /// Whether it stopped because of the limit or the deadline rather than an empty queue.
    pub stopped_early: bool,
    /// Tasks started (native mode).
    pub tasks: Vec<MoveTask>,
}

/// An SQS message move task, as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MoveTask {
    pub(crate) task_handle: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) moved: Option<i64>,
    pub(crate) to_move: Option<i64>,
    pub(crate) failure_reason: Option<String>,
}

/// The SQS queues the redrive works on.
#[derive(Debug, Clone)]
pub struct Queues {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
}

/// How long a received dead letter stays hidden while it is being copied or inspected: long enough for a batch
/// to be sent and deleted, short enough that an interrupted run gives it back soon.
const IN_FLIGHT: i32 = 60;

impl Queues {
    async fn receive(&self, max: i32, wait_seconds: i32) -> anyhow::Result<Vec<Message>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.dead_letter_queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .visibility_timeout(IN_FLIGHT)
            .wait_time_seconds(wait_seconds)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the dead-letter queue")?;
        Ok(output.messages.unwrap_or_default())
    }
}

#[async_trait]
impl DeadLetterQueue for Queues {
    async fn depth(&self) -> anyhow::Result<u64> {
        Ok(crate::sqs::depth(&self.client, &self.dead_letter_queue_url)
            .await?
            .total())
    }

    async fn inspect(&self, stop_at: Instant) -> anyhow::Result<DeadLetterReport> {
        let mut report = DeadLetterReport::default();
        // Receiving from an empty queue waits out the long poll; the depth answers at once.
        if self.depth().await? == 0 {
            return Ok(report);
        }
        let mut held: Vec<String> = Vec::new();
        // Every message stays hidden until the end so none is counted twice; then all are released at once.
        let result = async {
            while Instant::now() < stop_at {
                let batch = self.receive(10, 1).await?;
                if batch.is_empty() {
                    break;
                }
                for message in batch {
                    report.add(message.body.as_deref().unwrap_or_default());
                    held.extend(message.receipt_handle);
                }
            }
            anyhow::Ok(())
        }
        .await;
        for chunk in held.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
            });
            let entries: Result<Vec<_>, _> = entries.collect();
            let _ = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries.context("building visibility entries")?))
                .send()
                .await;
        }
        result.map(|()| report)
    }
}

/// Moves dead letters by copying: receive from the DLQ, `SendMessageBatch` to the source queue with body and
/// attributes, then `DeleteMessageBatch` only what was sent. Works everywhere, moto included.
#[derive(Debug, Clone)]
pub struct CopyMover(pub Queues);

#[async_trait]
impl DeadLetterMover for CopyMover {
    async fn move_back(&self, limit: Option<u32>, stop_at: Instant) -> anyhow::Result<Moved> {
        let queues = &self.0;
        let mut result = Moved::default();
        if queues.depth().await? == 0 {
            return Ok(result);
        }
        let mut attempted: u32 = 0;
        // At least one batch per invocation, however late: the deadline margin covers it, and an instructor who
        // invokes again always makes progress.
        loop {
            let left = limit.map_or(10, |l| l.saturating_sub(attempted).min(10));
            if left == 0 {
                result.stopped_early = true;
                break;
            }
            let batch = queues.receive(left as i32, 1).await?;
            if batch.is_empty() {
                break;
            }
            attempted += batch.len() as u32;
            let sent = send_batch(queues, &batch, &mut result.failed).await?;
            let deleted = delete_batch(queues, &batch, &sent, &mut result.failed).await?;
            result.moved += deleted;
            if Instant::now() >= stop_at {
                result.stopped_early = true;
                break;
            }
        }
        Ok(result)
    }

    async fn status(&self) -> anyhow::Result<Vec<MoveTask>> {
        Ok(Vec::new())
    }
}

/// Sends copies of `batch` to the source queue; returns the indexes that were accepted.
async fn send_batch(queues: &Queues, batch: &[Message], failed: &mut Vec<Failure>) -> anyhow::Result<Vec<usize>> {
    let mut entries = Vec::with_capacity(batch.len());
    for (i, message) in batch.iter().enumerate() {
        // The consumer's own note on why it dead-lettered a message is stale once the message goes back.
        let attributes: HashMap<_, _> = message
            .message_attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| name != DEAD_LETTER_REASON)
            .collect();
        let entry = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(message.body.clone().unwrap_or_default())
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            .build()
            .context("building a send entry")?;
        entries.push(entry);
    }
    let output = queues
        .client
        .send_message_batch()
        .queue_url(&queues.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .context("sending dead letters back to the queue")?;
    for failure in output.failed {
        let message_id = failure
            .id
            .parse::<usize>()
            .ok()
            .and_then(|i| batch[i].message_id.clone())
            .unwrap_or_default();
        failed.push(Failure {
            message_id,
            reason: format!("not sent: {}", failure.message.unwrap_or(failure.code)),
        });
    }
    Ok(output.successful.iter().filter_map(|s| s.id.parse().ok()).collect())
}

/// Deletes from the DLQ the messages whose copies were accepted; returns how many were deleted.
async fn delete_batch(
    queues: &Queues,
    batch: &[Message],
    sent: &[usize],
    failed: &mut Vec<Failure>,
) -> anyhow::Result<u32> {
    if sent.is_empty() {
        return Ok(0);
    }
    let entries: Result<Vec<_>, _> = sent
        .iter()
        .map(|&i| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(batch[i].receipt_handle.clone().unwrap_or_default())
                .build()
        })
        .collect();
    let output = queues
        .client
        .delete_message_batch()
        .queue_url(&queues.dead_letter_queue_url)
        .set_entries(Some(entries.context("building delete entries")?))
        .send()
        .await
        .context("deleting moved messages from the dead-letter queue")?;
    for failure in &output.failed {
        let message_id = failure
            .id
            .parse::<usize>()
            .ok()
            .and_then(|i| batch[i].message_id.clone())
            .unwrap_or_default();
        // Its copy is in the source queue already; if it comes back here, a later redrive copies it again and
        // the consumer recognises the question.
        failed.push(Failure {
            message_id,
            reason: "copied back but not deleted from the dead-letter queue".into(),
        });
    }
    Ok(output.successful.len() as u32)
}

/// Moves dead letters with SQS's own `StartMessageMoveTask` (AWS only; moto does not implement it).
#[derive(Debug, Clone)]
pub struct NativeMover(pub Queues);

#[async_trait]
impl DeadLetterMover for NativeMover {
    async fn move_back(&self, _limit: Option<u32>, _stop_at: Instant) -> anyhow::Result<Moved> {
        let queues = &self.0;
        let output = queues
            .client
            .start_message_move_task()
            .source_arn(&queues.dead_letter_queue_arn)
            .destination_arn(&queues.queue_arn)
            .send()
            .await
            .context("starting an SQS message move task (is one already running? try {\"action\": \"status\"})")?;
        let task = MoveTask {
            task_handle: output.task_handle,
            status: Some("RUNNING".into()),
            ..MoveTask::default()
        };
        Ok(Moved {
            tasks: vec![task],
            ..Moved::default()
        })
    }

    async fn status(&self) -> anyhow::Result<Vec<MoveTask>> {
        let output = self
            .0
            .client
            .list_message_move_tasks()
            .source_arn(&self.0.dead_letter_queue_arn)
            .max_results(10)
            .send()
            .await
            .context("listing SQS message move tasks")?;
        Ok(output
            .results
            .unwrap_or_default()
            .into_iter()
            .map(|t| MoveTask {
                task_handle: t.task_handle,
                status: t.status,
                moved: Some(t.approximate_number_of_messages_moved),
                to_move: t.approximate_number_of_messages_to_move,
                failure_reason: t.failure_reason,
            })
            .collect())
    }
}
