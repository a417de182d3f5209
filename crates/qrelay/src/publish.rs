//! The port through which an accepted question leaves the intake function, and its SNS adapter.

use anyhow::Context as _;
use async_trait::async_trait;

use crate::domain::QuestionMessage;

/// Publishes a question durably. `Ok` means the message system has accepted and stored it: only then may the
/// student be told their question is queued.
#[async_trait]
pub trait QuestionPublisher: Send + Sync {
    /// Returns the message system's id for the published message.
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String>;
}

/// Publishes to an SNS topic. The room travels as a String message attribute too, so a deployment can filter
/// subscriptions by room without parsing the body.
#[derive(Debug)]
pub struct SnsPublisher {
    client: tokio::sync::OnceCell<aws_sdk_sns::Client>,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new_with(Some(client)),
            topic_arn: topic_arn.into(),
        }
    }

    /// A publisher that loads the AWS configuration and builds its client on the first publish, not at cold
    /// start: the first request to a new intake instance is usually a student opening the form, which then
    /// never waits for the SDK's set-up (credentials, TLS roots).
    pub fn lazy(topic_arn: impl Into<String>) -> Self {
        Self {
            client: tokio::sync::OnceCell::new(),
            topic_arn: topic_arn.into(),
        }
    }

    async fn sns(&self) -> &aws_sdk_sns::Client {
        self.client
            .get_or_init(|| async { aws_sdk_sns::Client::new(crate::aws::shared().await) })
            .await
    }
}

#[async_trait]
impl QuestionPublisher for SnsPublisher {
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String> {
        let room = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&question.room)
            .build()
            .context("building the room message attribute")?;
        let output = self
            .sns()
            .await
            .publish()
            .topic_arn(&self.topic_arn)
            .message(question.to_json())
            .message_attributes("room", room)
            .send()
            .await
            .context("publishing the question to SNS")?;
        output
            .message_id
            .context("SNS accepted the question but returned no message id")
    }
}
