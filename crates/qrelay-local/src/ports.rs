//! qrelay's ports implemented over the in-process queues, so the real intake, consumer and redrive code runs
//! unchanged on one machine: publishing puts the question document on the queue (as SNS raw delivery would),
//! the consumer's retry delays and dead-lettering act on it, and the redrive moves dead letters back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessageAttribute;
use qrelay::consumer::QueueControl;
use qrelay::domain::QuestionMessage;
use qrelay::publish::QuestionPublisher;
use qrelay::redrive::{DeadLetterMover, DeadLetterQueue, DeadLetterReport, MoveTask, Moved};
use qrelay::sqs::DEAD_LETTER_REASON;

use crate::memq::MemQueue;

/// The topic and its one subscribed queue.
#[derive(Debug, Clone)]
pub struct MemTopic(pub Arc<MemQueue>);

#[async_trait]
impl QuestionPublisher for MemTopic {
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String> {
        let mut room = SqsMessageAttribute::default();
        room.data_type = Some("String".into());
        room.string_value = Some(question.room.clone());
        Ok(self
            .0
            .send(question.to_json(), HashMap::from([("room".to_owned(), room)])))
    }
}

/// The main queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct MemQueues {
    pub queue: Arc<MemQueue>,
    pub dead_letters: Arc<MemQueue>,
}

#[async_trait]
impl QueueControl for MemQueues {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.queue.change_visibility(receipt_handle, delay),
            "unknown or stale receipt handle"
        );
        Ok(())
    }

    async fn dead_letter(
        &self,
        body: &str,
        attributes: &HashMap<String, SqsMessageAttribute>,
        reason: &str,
    ) -> anyhow::Result<()> {
        let mut attributes = attributes.clone();
        let mut why = SqsMessageAttribute::default();
        why.data_type = Some("String".into());
        why.string_value = Some(reason.to_owned());
        attributes.insert(DEAD_LETTER_REASON.to_owned(), why);
        self.dead_letters.send(body.to_owned(), attributes);
        Ok(())
    }
}

#[async_trait]
impl DeadLetterQueue for MemQueues {
    async fn depth(&self) -> anyhow::Result<u64> {
        Ok(self.dead_letters.depth().total() as u64)
    }

    async fn inspect(&self, _stop_at: Instant) -> anyhow::Result<DeadLetterReport> {
        let mut report = DeadLetterReport::default();
        for body in self.dead_letters.bodies() {
            report.add(&body);
        }
        Ok(report)
    }
}

#[async_trait]
impl DeadLetterMover for MemQueues {
    async fn move_back(&self, limit: Option<u32>, _stop_at: Instant) -> anyhow::Result<Moved> {
        let limit = limit.map_or(usize::MAX, |l| l as usize);
        let taken = self.dead_letters.take(limit);
        let moved = taken.len() as u32;
        for (body, mut attributes) in taken {
            attributes.remove(DEAD_LETTER_REASON);
            self.queue.send(body, attributes);
        }
        Ok(Moved {
            moved,
            stopped_early: self.dead_letters.depth().total() > 0,
            ..Moved::default()
        })
    }

    async fn status(&self) -> anyhow::Result<Vec<MoveTask>> {
        Ok(Vec::new())
    }
}

/// The native mover needs AWS; locally it explains that instead of pretending.
#[derive(Debug, Clone, Copy)]
pub struct NoNativeMover;

#[async_trait]
impl DeadLetterMover for NoNativeMover {
    async fn move_back(&self, _limit: Option<u32>, _stop_at: Instant) -> anyhow::Result<Moved> {
        anyhow::bail!("\"mode\": \"native\" (SQS StartMessageMoveTask) needs AWS; the local runner moves by copy")
    }

    async fn status(&self) -> anyhow::Result<Vec<MoveTask>> {
        Ok(Vec::new())
    }
}
