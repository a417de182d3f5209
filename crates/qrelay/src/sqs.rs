//! SQS conventions the consumer, the redrive and the tools share: the attribute that says why a message was
//! dead-lettered, attribute conversion, a queue's ARN and its depth.

use anyhow::Context as _;
use aws_lambda_events::sqs::SqsMessageAttribute;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};

/// Name of the message attribute that says why the consumer dead-lettered a message itself. The redrive drops it
/// when it moves the message back, since the reason is stale by then.
pub const DEAD_LETTER_REASON: &str = "qrelay-dead-letter-reason";

/// SQS allows at most this many message attributes on a message.
pub(crate) const MAX_ATTRIBUTES: usize = 10;

/// Converts an attribute as Lambda delivers it into one the SDK can send.
pub(crate) fn to_sdk_attribute(attribute: &SqsMessageAttribute) -> Option<MessageAttributeValue> {
    let data_type = attribute.data_type.as_deref()?;
    let mut value = MessageAttributeValue::builder().data_type(data_type);
    if let Some(s) = &attribute.string_value {
        value = value.string_value(s);
    }
    if let Some(b) = &attribute.binary_value {
        value = value.binary_value(Blob::new(b.to_vec()));
    }
    value.build().ok()
}

/// Messages in a queue, as SQS counts them (approximately).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted, or hidden for a retry delay.
    pub in_flight: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight
    }
}

/// A queue's depth.
pub async fn depth(client: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<Depth> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("reading the depth of {queue_url}"))?
        .attributes
        .unwrap_or_default();
    let get = |name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Depth {
        visible: get(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

/// A queue's ARN, from its URL.
pub async fn queue_arn(client: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<String> {
    client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {queue_url}"))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("SQS returned no ARN for {queue_url}"))
}
