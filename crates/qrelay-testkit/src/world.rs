//! The one AWS world setup of the workspace, as `template.yaml` wires it: an SNS topic, a queue subscribed to it
//! with a dead-letter queue after `maxReceiveCount` receives, and the chat secret. The integration tests, the
//! benchmarks and the local runner (with `AWS_ENDPOINT_URL`, against moto) all create it here.

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use qrelay::sqs::queue_arn;

/// The redrive policy's receive budget, as in template.yaml.
pub const MAX_RECEIVE_COUNT: u32 = 30;

/// What to create.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// The topic's and the queue's name; the dead-letter queue is `<name>-dlq`.
    pub name: String,
    /// Receives before SQS moves a message to the dead-letter queue.
    pub max_receive_count: u32,
    /// The queue's visibility timeout, in seconds.
    pub visibility_timeout_seconds: u32,
    /// Whether the queue is subscribed to the topic (standard SNS envelope, as in the template).
    pub subscribe: bool,
}

impl WorldSpec {
    /// The template's wiring under `name`: 30 receives, subscribed.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            max_receive_count: MAX_RECEIVE_COUNT,
            visibility_timeout_seconds: 60,
            subscribe: true,
        }
    }
}

/// The created resources.
#[derive(Debug, Clone)]
pub struct World {
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

impl World {
    /// Creates (or finds: every call is idempotent) the topic, the queues and the subscription.
    pub async fn create(sdk: &SdkConfig, spec: &WorldSpec) -> anyhow::Result<Self> {
        let sns = aws_sdk_sns::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let topic_arn = sns
            .create_topic()
            .name(&spec.name)
            .send()
            .await
            .context("creating the topic")?
            .topic_arn
            .context("SNS returned no topic ARN")?;
        let dlq_url = create_queue(&sqs, &format!("{}-dlq", spec.name), spec, None).await?;
        let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
        let redrive_policy = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": spec.max_receive_count.to_string(),
        });
        let queue_url = create_queue(&sqs, &spec.name, spec, Some(redrive_policy.to_string())).await?;
        let queue_arn = queue_arn(&sqs, &queue_url).await?;
        if spec.subscribe {
            sns.subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(&queue_arn)
                .send()
                .await
                .context("subscribing the queue to the topic")?;
        }
        Ok(Self {
            sns,
            sqs,
            topic_arn,
            queue_url,
            queue_arn,
            dlq_url,
            dlq_arn,
        })
    }

    /// The redrive function's view of these queues.
    pub fn redrive_queues(&self) -> qrelay::redrive::Queues {
        qrelay::redrive::Queues {
            client: self.sqs.clone(),
            queue_url: self.queue_url.clone(),
            queue_arn: self.queue_arn.clone(),
            dead_letter_queue_url: self.dlq_url.clone(),
            dead_letter_queue_arn: self.dlq_arn.clone(),
        }
    }
}

/// Creates the instructor's table `name` as template.yaml does (keys `pk` and `sk`, on demand, TTL on
/// `expires_at`), or finds it; returns its name.
pub async fn create_control_table(sdk: &SdkConfig, name: &str) -> anyhow::Result<String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let db = aws_sdk_dynamodb::Client::new(sdk);
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("a key schema element")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("an attribute definition")
    };
    let created = db
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(aws_sdk_dynamodb::operation::create_table::CreateTableError::is_resource_in_use_exception);
        if !exists {
            return Err(anyhow::Error::new(e).context(format!("creating the table {name}")));
        }
        return Ok(name.to_owned());
    }
    db.update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .context("a TTL specification")?,
        )
        .send()
        .await
        .with_context(|| format!("turning on the TTL of {name}"))?;
    Ok(name.to_owned())
}

/// Creates the chat secret `name` holding `value` (e.g. [`rocketchat_secret`]); returns its ARN.
pub async fn create_secret(sdk: &SdkConfig, name: &str, value: &serde_json::Value) -> anyhow::Result<String> {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .with_context(|| format!("creating the secret {name}"))?
        .arn
        .context("Secrets Manager returned no ARN")
}

/// The secret for the Rocket.Chat fake's bot user, in the shape the README documents.
pub fn rocketchat_secret() -> serde_json::Value {
    serde_json::json!({ "user_id": rocketchat_fake::USER_ID, "token": rocketchat_fake::TOKEN })
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    spec: &WorldSpec,
    redrive_policy: Option<String>,
) -> anyhow::Result<String> {
    let mut request = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        spec.visibility_timeout_seconds.to_string(),
    );
    if let Some(policy) = redrive_policy {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    request
        .send()
        .await
        .with_context(|| format!("creating the queue {name}"))?
        .queue_url
        .with_context(|| format!("SQS returned no URL for {name}"))
}
