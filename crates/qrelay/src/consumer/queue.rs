//! The consumer's port to its own queues: push a failed message's next attempt into the future, or move a
//! message that can never be delivered straight to the dead-letter queue.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_lambda_events::sqs::SqsMessageAttribute;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::sqs::{DEAD_LETTER_REASON, MAX_ATTRIBUTES, to_sdk_attribute};

/// Control over the queue the consumer reads and its dead-letter queue.
#[async_trait]
pub trait QueueControl: Send + Sync {
    /// Hides the message for `delay` before it may be received again.
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> anyhow::Result<()>;
    /// Sends a copy of the message (body and attributes, plus the reason) to the dead-letter queue. The caller
    /// then lets the original be deleted, so the message exists in exactly one place.
    async fn dead_letter(
        &self,
        body: &str,
        attributes: &HashMap<String, SqsMessageAttribute>,
        reason: &str,
    ) -> anyhow::Result<()>;
}

/// [`QueueControl`] over SQS.
#[derive(Debug, Clone)]
pub struct SqsQueueControl {
    client: SqsClient,
    queue_url: String,
    dead_letter_queue_url: String,
}

/// The SQS client, or what builds it on first use.
#[derive(Debug, Clone)]
enum SqsClient {
    Ready(aws_sdk_sqs::Client),
    Lazy(Arc<(aws_config::SdkConfig, OnceLock<aws_sdk_sqs::Client>)>),
}

impl SqsClient {
    fn get(&self) -> &aws_sdk_sqs::Client {
        match self {
            Self::Ready(client) => client,
            Self::Lazy(lazy) => lazy.1.get_or_init(|| aws_sdk_sqs::Client::new(&lazy.0)),
        }
    }
}

impl SqsQueueControl {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        Self::with(SqsClient::Ready(client), queue_url, dead_letter_queue_url)
    }

    /// Builds its SQS client on first use: the consumer needs it only when a question must wait or be
    /// dead-lettered, so a cold start that posts its batch never pays for it (measured with qrelay-bench).
    pub fn lazy(
        sdk: aws_config::SdkConfig,
        queue_url: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        let client = SqsClient::Lazy(Arc::new((sdk, OnceLock::new())));
        Self::with(client, queue_url, dead_letter_queue_url)
    }

    fn with(client: SqsClient, queue_url: impl Into<String>, dead_letter_queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_queue_url: dead_letter_queue_url.into(),
        }
    }
}

#[async_trait]
impl QueueControl for SqsQueueControl {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> anyhow::Result<()> {
        let seconds = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        self.client
            .get()
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .context("changing the message's visibility timeout")?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        body: &str,
        attributes: &HashMap<String, SqsMessageAttribute>,
        reason: &str,
    ) -> anyhow::Result<()> {
        let mut request = self
            .client
            .get()
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(body);
        for (name, attribute) in attributes {
            if let Some(value) = to_sdk_attribute(attribute) {
                request = request.message_attributes(name, value);
            }
        }
        if attributes.len() < MAX_ATTRIBUTES {
            let reason: String = reason.chars().take(256).collect();
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(reason)
                .build()?;
            request = request.message_attributes(DEAD_LETTER_REASON, value);
        }
        request
            .send()
            .await
            .context("sending the message to the dead-letter queue")?;
        Ok(())
    }
}
