//! The whole delivery path on one machine: a real SNS topic and SQS queues in moto (with the dead-letter
//! redrive policy the template sets), the Rocket.Chat fake, and the real consumer handler, driven by a harness
//! that plays the Lambda event-source mapping (moto has none): receive a batch, build the `SqsEvent` with the
//! real ids, receipt handles and receive counts, call the handler, delete what it did not report failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessageAttribute};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use qrelay::chat::http_client;
use qrelay::chat::rocketchat::RocketChat;
use qrelay::chat::secret::SecretsManagerSource;
use qrelay::consumer::{Backoff, Consumer, QueueControl, SqsQueueControl};
use qrelay::domain::{QuestionId, QuestionMessage, Rooms};
use qrelay::publish::{QuestionPublisher, SnsPublisher};
use qrelay_testkit::event_source::{Poll, SqsPoller};
use qrelay_testkit::moto::Moto;
use qrelay_testkit::world::{self, World, WorldSpec};
use rocketchat_fake::FakeRocketChat;

pub use qrelay_testkit::world::MAX_RECEIVE_COUNT;

pub struct Pipeline {
    /// Kept alive for the test: the server stops when the pipeline is dropped.
    pub _moto: Moto,
    /// The topic, the queues (30 receives) and their clients.
    pub world: World,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub publisher: SnsPublisher,
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
        let world = World::create(&sdk, &WorldSpec::named("questions"))
            .await
            .expect("world");
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let chat = FakeRocketChat::start().await;
        chat.add_channel("general");
        chat.add_channel("rust-course");
        let secret_id = "qrelay/chat".to_owned();
        world::create_secret(&sdk, &secret_id, &world::rocketchat_secret())
            .await
            .expect("secret");

        let source = Arc::new(SecretsManagerSource::new(secrets.clone(), &secret_id));
        let poster = Arc::new(RocketChat::new(http_client(chat_timeout).unwrap(), &chat.url(), source));
        let delays = Arc::new(RecordingQueue {
            inner: SqsQueueControl::new(world.sqs.clone(), &world.queue_url, &world.dlq_url),
            delays: Mutex::default(),
            handles: Mutex::default(),
        });
        let rooms = Rooms::parse("general,rust-101=rust-course").expect("rooms");
        let tz = jiff::tz::TimeZone::get("Asia/Tokyo").expect("tz");
        let consumer = Arc::new(
            Consumer::new(rooms, tz, Backoff::default(), poster, delays.clone()).with_chat_timeout(chat_timeout),
        );
        let publisher = SnsPublisher::new(world.sns.clone(), world.topic_arn.clone());
        let poller = SqsPoller::new(world.sqs.clone(), &world.queue_url, &world.queue_arn);
        Self {
            _moto: moto,
            world,
            secrets,
            publisher,
            secret_id,
            chat,
            consumer,
            poller,
            delays,
        }
    }

    /// The same pipeline with the instructor's control in the consumer.
    pub fn with_control(self, control: qrelay::consumer::Control) -> Self {
        let consumer = Arc::try_unwrap(self.consumer)
            .unwrap_or_else(|_| panic!("the consumer is not shared yet"))
            .with_control(control);
        Self {
            consumer: Arc::new(consumer),
            ..self
        }
    }

    /// Publishes a question through SNS as the intake function does; returns its id.
    pub async fn publish(&self, room: &str, text: &str) -> QuestionId {
        let question = qrelay_testkit::samples::question(room, text);
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
                .world
                .sqs
                .change_message_visibility()
                .queue_url(&self.world.queue_url)
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
        let depth = qrelay::sqs::depth(&self.world.sqs, queue_url).await.expect("depth");
        (depth.visible, depth.in_flight)
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
                .world
                .sqs
                .receive_message()
                .queue_url(&self.world.dlq_url)
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
