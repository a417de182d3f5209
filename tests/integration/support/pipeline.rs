//! The whole delivery path on one machine: a real SNS topic and SQS queues in moto (with the dead-letter
//! redrive policy the template sets), the Rocket.Chat fake, and the real consumer handler, driven by a harness
//! that plays the Lambda event-source mapping (moto has none): receive a batch, build the `SqsEvent` with the
//! real ids, receipt handles and receive counts, call the handler, delete what it did not report failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessageAttribute};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use qrelay::chat::http_client;
use qrelay::chat::rocketchat::RocketChat;
use qrelay::chat::secret::SecretsManagerSource;
use qrelay::consumer::event_source::{Poll, SqsPoller};
use qrelay::consumer::{Backoff, Consumer, QueueControl, SqsQueueControl};
use qrelay::domain::{Nickname, Question, QuestionId, QuestionMessage, QuestionText, RoomName, Rooms};
use qrelay::publish::{QuestionPublisher, SnsPublisher};
use rocketchat_fake::FakeRocketChat;

use super::moto::Moto;

/// The redrive policy's receive budget, as in template.yaml.
pub const MAX_RECEIVE_COUNT: u32 = 30;

pub struct Pipeline {
    /// Kept alive for the test: the server stops when the pipeline is dropped.
    pub _moto: Moto,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub publisher: SnsPublisher,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub secret_id: String,
    pub chat: FakeRocketChat,
    pub consumer: Arc<Consumer>,
    pub poller: SqsPoller,
    /// Every retry delay the consumer set, by receipt handle order.
    pub delays: Arc<RecordingQueue>,
}

/// The real SQS queue control, recording the delays the consumer asks for so tests can check them and
/// fast-forward past them.
pub struct RecordingQueue {
    inner: SqsQueueControl,
    /// Delays not yet taken by [`Pipeline::take_delays`].
    pub delays: Mutex<Vec<Duration>>,
    /// Every receipt handle the consumer hid, for [`Pipeline::fast_forward`].
    pub handles: Mutex<Vec<String>>,
}

#[async_trait]
impl QueueControl for RecordingQueue {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> anyhow::Result<()> {
        self.delays.lock().expect("lock").push(delay);
        self.handles.lock().expect("lock").push(receipt_handle.to_owned());
        self.inner.retry_after(receipt_handle, delay).await
    }

    async fn dead_letter(
        &self,
        body: &str,
        attributes: &HashMap<String, SqsMessageAttribute>,
        reason: &str,
    ) -> anyhow::Result<()> {
        self.inner.dead_letter(body, attributes, reason).await
    }
}

impl Pipeline {
    /// Starts everything with the rooms `general` and `rust-101` (posting to channel `rust-course`).
    pub async fn start() -> Self {
        Self::start_with_timeout(Duration::from_secs(2)).await
    }

    pub async fn start_with_timeout(chat_timeout: Duration) -> Self {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config().await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);

        let topic_arn = sns
            .create_topic()
            .name("questions")
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("arn");
        let dlq_url = create_queue(&sqs, "questions-dlq", None).await;
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
        let queue_url = create_queue(&sqs, "questions", Some(redrive)).await;
        let queue_arn = queue_arn(&sqs, &queue_url).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .expect("subscribe");

        let chat = FakeRocketChat::start().await;
        chat.add_channel("general");
        chat.add_channel("rust-course");
        let secret = serde_json::json!({ "user_id": rocketchat_fake::USER_ID, "token": rocketchat_fake::TOKEN });
        let secret_id = "qrelay/chat".to_owned();
        secrets
            .create_secret()
            .name(&secret_id)
            .secret_string(secret.to_string())
            .send()
            .await
            .expect("secret");

        let source = Arc::new(SecretsManagerSource::new(secrets.clone(), &secret_id));
        let poster = Arc::new(RocketChat::new(http_client(chat_timeout).unwrap(), &chat.url(), source));
        let delays = Arc::new(RecordingQueue {
            inner: SqsQueueControl::new(sqs.clone(), &queue_url, &dlq_url),
            delays: Mutex::default(),
            handles: Mutex::default(),
        });
        let rooms = Rooms::parse("general,rust-101=rust-course").expect("rooms");
        let tz = jiff::tz::TimeZone::get("Asia/Tokyo").expect("tz");
        let consumer = Arc::new(Consumer::new(rooms, tz, Backoff::default(), poster, delays.clone()));
        let publisher = SnsPublisher::new(sns, topic_arn);
        let poller = SqsPoller::new(sqs.clone(), &queue_url, &queue_arn);
        Self {
            _moto: moto,
            sqs,
            secrets,
            publisher,
            queue_url,
            queue_arn,
            dlq_url,
            dlq_arn,
            secret_id,
            chat,
            consumer,
            poller,
            delays,
        }
    }

    /// Publishes a question through SNS as the intake function does; returns its id.
    pub async fn publish(&self, room: &str, text: &str) -> QuestionId {
        let question = Question {
            id: QuestionId::new_random(),
            room: RoomName::parse(room).expect("room"),
            text: QuestionText::parse(text, 1000).expect("text"),
            nickname: None::<Nickname>,
            submitted_at: jiff::Timestamp::now(),
        };
        self.publisher
            .publish(&QuestionMessage::from(&question))
            .await
            .expect("publish");
        question.id
    }

    /// Receives up to ten visible messages, as the event-source mapping does.
    pub async fn receive(&self) -> SqsEvent {
        self.poller.receive(60, 0).await.expect("receive")
    }

    /// Hands a batch to the consumer and deletes what it did not report failed, as the event-source mapping does.
    pub async fn deliver(&self, event: SqsEvent) -> Poll {
        self.poller.deliver(&self.consumer, event).await.expect("deliver")
    }

    /// One turn of the event-source mapping.
    pub async fn poll(&self) -> Poll {
        self.poller.poll_once(&self.consumer, 60, 0).await.expect("poll")
    }

    /// Polls until the queue yields nothing, at most `max_polls` times; returns how many polls delivered.
    pub async fn drain(&self, max_polls: usize) -> usize {
        for n in 0..max_polls {
            if self.poll().await.received == 0 {
                return n;
            }
        }
        panic!("the queue did not drain within {max_polls} polls");
    }

    /// Time travel for the backoff: makes every message the consumer hid visible again now. (moto, unlike SQS,
    /// still honours an old receipt handle, which is what makes this possible.)
    pub async fn fast_forward(&self) {
        let handles: Vec<String> = std::mem::take(&mut *self.delays.handles.lock().expect("lock"));
        for handle in handles {
            // A handle of a message already moved or deleted is refused: nothing to fast-forward there.
            let _ = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }

    /// The retry delays recorded so far, then forgets them.
    pub fn take_delays(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.delays.delays.lock().expect("lock"))
    }

    /// (visible, in flight) messages in a queue.
    pub async fn depth(&self, queue_url: &str) -> (u64, u64) {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        let get = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// The redrive function's queues.
    pub fn redrive_queues(&self) -> qrelay::redrive::Queues {
        qrelay::redrive::Queues {
            client: self.sqs.clone(),
            queue_url: self.queue_url.clone(),
            queue_arn: self.queue_arn.clone(),
            dead_letter_queue_url: self.dlq_url.clone(),
            dead_letter_queue_arn: self.dlq_arn.clone(),
        }
    }

    /// Drives every question in the main queue past its receive budget into the dead-letter queue, with the chat
    /// in whatever state it is (the caller makes it fail). Returns how many polls it took.
    pub async fn dead_letter_everything(&self) -> usize {
        let mut polls = 0;
        for _ in 0..=MAX_RECEIVE_COUNT {
            loop {
                let poll = self.poll().await;
                polls += 1;
                if poll.received == 0 {
                    break;
                }
            }
            self.fast_forward().await;
        }
        polls
    }

    /// Everything in the dead-letter queue, received once (bodies).
    pub async fn dead_letters(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive DLQ");
            let batch = output.messages.unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str, redrive_policy: Option<String>) -> String {
    let mut request = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60");
    if let Some(policy) = redrive_policy {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    request.send().await.expect("create queue").queue_url.expect("url")
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    attrs.get(&QueueAttributeName::QueueArn).expect("arn").clone()
}
