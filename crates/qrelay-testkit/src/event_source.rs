//! Plays Lambda's SQS event-source mapping where there is none (moto, the local runner, benchmarks): receive a
//! batch, build the `SqsEvent` Lambda would build (real message ids, receipt handles, receive counts and
//! attributes), hand it to the consumer, and delete the records it did not report failed.

use anyhow::Context as _;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};

use qrelay::consumer::Consumer;

/// The consumer function's timeout in template.yaml: each batch handed over here has this long, as in Lambda.
pub const FUNCTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls one SQS queue on behalf of a consumer.
#[derive(Debug, Clone)]
pub struct SqsPoller {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub received: usize,
    pub failed: usize,
}

impl SqsPoller {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>, queue_arn: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
        }
    }

    /// Receives up to ten visible messages as an `SqsEvent`, hiding them for `visibility_seconds`.
    pub async fn receive(&self, visibility_seconds: i32, wait_seconds: i32) -> anyhow::Result<SqsEvent> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_seconds)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .context("receiving from the queue")?;
        let mut event = SqsEvent::default();
        event.records = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| self.to_record(m))
            .collect();
        Ok(event)
    }

    fn to_record(&self, message: Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id;
        record.receipt_handle = message.receipt_handle;
        record.body = message.body;
        record.md5_of_body = message.md5_of_body;
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.attributes = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        record.message_attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let mut attribute = SqsMessageAttribute::default();
                attribute.data_type = Some(value.data_type);
                attribute.string_value = value.string_value;
                (name, attribute)
            })
            .collect();
        record
    }

    /// Deletes the records of `event` that `response` did not list as failed, as the event-source mapping does.
    pub async fn delete_succeeded(&self, event: &SqsEvent, response: &SqsBatchResponse) -> anyhow::Result<usize> {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let entries: Result<Vec<_>, _> = event
            .records
            .iter()
            .filter(|r| !failed.contains(&r.message_id.as_deref().unwrap_or_default()))
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt_handle.clone().unwrap_or_default())
                    .build()
            })
            .collect();
        let entries = entries.context("building delete entries")?;
        let count = entries.len();
        if count > 0 {
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("deleting delivered messages")?;
        }
        Ok(count)
    }

    /// One turn of the mapping: receive, handle, delete.
    pub async fn poll_once(
        &self,
        consumer: &Consumer,
        visibility_seconds: i32,
        wait_seconds: i32,
    ) -> anyhow::Result<Poll> {
        let event = self.receive(visibility_seconds, wait_seconds).await?;
        self.deliver(consumer, event).await
    }

    /// Hands a received batch to the consumer and deletes what it delivered.
    pub async fn deliver(&self, consumer: &Consumer, event: SqsEvent) -> anyhow::Result<Poll> {
        let received = event.records.len();
        if received == 0 {
            return Ok(Poll::default());
        }
        let response = consumer
            .handle(event.clone(), std::time::SystemTime::now() + FUNCTION_TIMEOUT)
            .await;
        self.delete_succeeded(&event, &response).await?;
        Ok(Poll {
            received,
            failed: response.batch_item_failures.len(),
        })
    }
}
