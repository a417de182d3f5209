//! The local runner's consumer loop: it plays Lambda's event-source mapping over the in-process queue or SQS,
//! and at shutdown makes a last delivery attempt and reports what is still waiting.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::system::{Backend, System};

impl System {
    /// One turn of the event-source mapping; returns how many records it handled.
    pub async fn poll_once(&self) -> anyhow::Result<usize> {
        match &self.backend {
            Backend::Memory(queues) => {
                let records = queues.queue.receive(10, Duration::from_secs(30));
                if records.is_empty() {
                    return Ok(0);
                }
                let received = records.len();
                let mut event = SqsEvent::default();
                event.records = records;
                let deadline = std::time::SystemTime::now() + qrelay_testkit::event_source::FUNCTION_TIMEOUT;
                let response = self.consumer.handle(event.clone(), deadline).await;
                let failed: Vec<&str> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect();
                for record in &event.records {
                    if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
                        queues
                            .queue
                            .delete(record.receipt_handle.as_deref().unwrap_or_default());
                    }
                }
                Ok(received)
            }
            Backend::Aws { poller, .. } => Ok(poller.poll_once(&self.consumer, 30, 1).await?.received),
        }
    }

    /// Polls until `shutdown` turns true. Errors are logged and retried: a local demo should keep going.
    pub async fn run_consumer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let handled = match self.poll_once().await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = format!("{e:#}"), "consumer poll failed");
                    0
                }
            };
            if handled == 0 {
                // Like SQS long polling: a new question wakes the loop at once; the timer only brings back
                // questions whose retry delay ran out.
                let arrival = async {
                    match &self.backend {
                        Backend::Memory(queues) => queues.queue.arrival().await,
                        Backend::Aws { .. } => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = arrival => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// At shutdown: one last delivery attempt, then a report of what is still waiting.
    pub async fn report_at_shutdown(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline && matches!(self.poll_once().await, Ok(n) if n > 0) {}
        match (self.depths().await, &self.backend) {
            (Ok(d), Backend::Memory(_)) if d.queue + d.in_flight + d.dead_letters > 0 => warn!(
                waiting = d.queue + d.in_flight,
                dead_letters = d.dead_letters,
                "questions not yet delivered were held in memory and stop with this process"
            ),
            (Ok(d), Backend::Aws { queues, .. }) if d.queue + d.in_flight + d.dead_letters > 0 => info!(
                waiting = d.queue + d.in_flight,
                dead_letters = d.dead_letters,
                queue = %queues.queue_url,
                "questions not yet delivered stay in the queue"
            ),
            (Ok(_), _) => info!("every question was delivered"),
            (Err(e), _) => warn!(error = format!("{e:#}"), "could not count the questions still waiting"),
        }
    }
}
