//! Builds the system from its configuration: intake, consumer and redrive over the in-process queue or SNS and
//! SQS at `AWS_ENDPOINT_URL`, and the board or a real chat; and what the instructor page asks of it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use qrelay::chat::secret::StaticSecret;
use qrelay::chat::{ChatPoster, REQUEST_TIMEOUT, http_client};
use qrelay::console::{AfterClass, ChatInfo, Console, ConsoleAuth, DeadLetters};
use qrelay::consumer::{Backoff, Consumer, Control, QueueControl, SqsQueueControl};
use qrelay::control::{CachedRooms, ControlStore, DynamoStore, MemoryStore};
use qrelay::digest::{DigestError, DigestRequests, Digester, Mailer, ScheduledDigest};
use qrelay::domain::Rooms;
use qrelay::intake::Intake;
use qrelay::publish::{QuestionPublisher, SnsPublisher};
use qrelay::redrive::{CopyMover, NativeMover, Queues, Redrive, RedriveError, RedriveMode, RedriveSummary};
use qrelay_testkit::event_source::SqsPoller;
use qrelay_testkit::world::{self, World, WorldSpec};

use crate::board::{Board, ClockedPublisher, OutageSwitch};
use crate::config::{ChatChoice, LocalConfig};
use crate::memq::{Depth, MemQueue};
use crate::ports::{MemQueues, MemTopic, NoNativeMover};

/// Where questions wait between intake and consumer.
#[derive(Debug)]
pub enum Backend {
    Memory(MemQueues),
    Aws { poller: SqsPoller, queues: Queues },
}

/// Everything the local runner runs, built once.
pub struct System {
    pub intake: Intake,
    pub consumer: Consumer,
    /// The instructor's console API, on this machine only (no sign-in).
    pub console: Console,
    pub backend: Backend,
    pub board: Arc<Board>,
    pub outage: Arc<OutageSwitch>,
    pub rooms: Rooms,
    pub chat_label: &'static str,
    /// What the chat can promise about each question, shown with its name.
    pub chat_guarantee: qrelay::chat::Guarantee,
    /// The zone the board shows times in, as the chat messages do.
    pub time_zone: jiff::tz::TimeZone,
    /// The consumer's retry schedule and the receives before dead-lettering, for the instructor page's warning.
    pub retries: Retries,
}

/// The local runner's "mail": the digest printed on the runner's standard output.
#[derive(Debug)]
pub struct TerminalMailer;

impl TerminalMailer {
    pub const ADDRESS: &'static str = "the terminal running qrelay-local";
}

#[async_trait::async_trait]
impl Mailer for TerminalMailer {
    async fn send(&self, _to: &str, subject: &str, text: &str, _html: &str) -> Result<(), DigestError> {
        println!("\n==== digest: {subject}\n{text}====");
        Ok(())
    }
}

/// More distinct questions than this in a room in one minute trip the flood breaker (the template's default).
pub const FLOOD_THRESHOLD: u32 = 20;

/// How long the intake trusts a room's state locally: a switch on the console shows on the form within a second
/// (deployed: 10 s).
const ROOM_STATE_TTL: Duration = Duration::from_secs(1);

/// The table the runner creates at `AWS_ENDPOINT_URL` (as `events/local.env` names it).
pub const CONTROL_TABLE: &str = "qrelay-control";

/// What the system runs on: the intake's publisher, the queues, the consumer's queue control and the control store.
type Ports = (
    Arc<dyn QuestionPublisher>,
    Backend,
    Arc<dyn QueueControl>,
    Arc<dyn ControlStore>,
);

/// How failed deliveries are retried: the schedule and the receive budget before the dead-letter queue.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub backoff: Backoff,
    pub max_receive_count: u32,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("backend", &self.backend)
            .field("chat", &self.chat_label)
            .finish_non_exhaustive()
    }
}

/// Queue depths for the instructor page.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Depths {
    pub queue: u64,
    pub in_flight: u64,
    pub dead_letters: u64,
}

impl System {
    pub async fn build(config: &LocalConfig) -> anyhow::Result<Self> {
        let board = Arc::new(Board::default());
        let (chat, chat_label): (Arc<dyn ChatPoster>, _) = match &config.chat {
            ChatChoice::Board => (board.clone(), "board"),
            ChatChoice::Chat { kind, secret } => {
                let secrets = Arc::new(StaticSecret(secret.clone()));
                (
                    qrelay::chat::poster(kind, http_client(REQUEST_TIMEOUT)?, secrets),
                    kind.label(),
                )
            }
        };
        let chat_guarantee = chat.guarantee();
        let outage = Arc::new(OutageSwitch::new(chat));
        // Every publisher tells the board when its question was asked, so the board can show them in that order.
        let clocked = |publisher: Arc<dyn QuestionPublisher>| -> Arc<dyn QuestionPublisher> {
            Arc::new(ClockedPublisher {
                inner: publisher,
                board: board.clone(),
            })
        };
        let (publisher, backend, queue_control, store): Ports = match &config.aws_endpoint {
            None => {
                let dead_letters = MemQueue::new("questions-dlq");
                let queue = MemQueue::with_dead_letters("questions", config.max_receive_count, dead_letters.clone());
                let queues = MemQueues {
                    queue: queue.clone(),
                    dead_letters,
                };
                (
                    clocked(Arc::new(MemTopic(queue))),
                    Backend::Memory(queues.clone()),
                    Arc::new(queues),
                    Arc::new(MemoryStore::new()),
                )
            }
            Some(endpoint) => {
                let sdk = aws_config(endpoint).await;
                let spec = WorldSpec {
                    max_receive_count: config.max_receive_count,
                    visibility_timeout_seconds: 180,
                    ..WorldSpec::named("qrelay-questions")
                };
                let world = World::create(&sdk, &spec).await?;
                let table = world::create_control_table(&sdk, CONTROL_TABLE).await?;
                let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
                let publisher = SnsPublisher::new(world.sns.clone(), world.topic_arn.clone());
                // The consumer Lambda's own queue control, which builds its client on first use.
                let control = SqsQueueControl::lazy(sdk, &world.queue_url, &world.dlq_url);
                let poller = SqsPoller::new(world.sqs.clone(), &world.queue_url, &world.queue_arn);
                let backend = Backend::Aws {
                    poller,
                    queues: world.redrive_queues(),
                };
                (
                    clocked(Arc::new(publisher)),
                    backend,
                    Arc::new(control),
                    Arc::new(store),
                )
            }
        };
        let intake = Intake::new(config.rooms.clone(), config.limits, publisher.clone())
            .with_control(Arc::new(CachedRooms::new(store.clone(), ROOM_STATE_TTL)));
        let dead_letters: Arc<dyn DeadLetters> = match &backend {
            Backend::Memory(queues) => Arc::new(Redrive::new(
                queues.clone(),
                queues.clone(),
                NoNativeMover,
                RedriveMode::Copy,
            )),
            Backend::Aws { queues, .. } => Arc::new(Redrive::new(
                queues.clone(),
                CopyMover(queues.clone()),
                NativeMover(queues.clone()),
                RedriveMode::Copy,
            )),
        };
        let console = Console::new(
            config.rooms.clone(),
            store.clone(),
            publisher,
            dead_letters,
            ChatInfo {
                label: chat_label,
                guarantee: chat_guarantee,
            },
            FLOOD_THRESHOLD,
            ConsoleAuth::Local,
        )
        .with_after_class(AfterClass {
            digester: Arc::new(Digester::new(config.rooms.clone(), store.clone(), None)),
            time_zone: config.time_zone.clone(),
            // No SES on a laptop: "mail me" makes the digest in process, reading the chat for votes as the digest
            // function does, and prints it where the runner prints everything else.
            digest: Some((
                Arc::new(ScheduledDigest {
                    digester: Digester::new(
                        config.rooms.clone(),
                        store.clone(),
                        Some(outage.clone() as Arc<dyn ChatPoster>),
                    ),
                    mailer: Arc::new(TerminalMailer),
                    to: TerminalMailer::ADDRESS.into(),
                    language: qrelay::digest::Language::En,
                    time_zone: config.time_zone.clone(),
                }) as Arc<dyn DigestRequests>,
                TerminalMailer::ADDRESS.into(),
            )),
        });
        let consumer = Consumer::new(
            config.rooms.clone(),
            config.time_zone.clone(),
            config.backoff,
            outage.clone(),
            queue_control,
        )
        .with_control(Control {
            // The consumer's own cache, as a Lambda's: a switch reaches it within a second here.
            rooms: Arc::new(CachedRooms::new(store, ROOM_STATE_TTL)),
            flood_threshold: FLOOD_THRESHOLD,
            held_for: Duration::from_secs(14 * 86_400),
            keep_delivered_for: Some(Duration::from_secs(30 * 86_400)),
        });
        let consumer = if config.emit_metrics {
            consumer
        } else {
            consumer.without_metrics()
        };
        Ok(Self {
            intake,
            consumer,
            console,
            backend,
            board,
            outage,
            rooms: config.rooms.clone(),
            chat_label,
            chat_guarantee,
            time_zone: config.time_zone.clone(),
            retries: Retries {
                backoff: config.backoff,
                max_receive_count: config.max_receive_count,
            },
        })
    }

    /// Whether questions go through SNS and SQS (at `AWS_ENDPOINT_URL`) rather than the in-process queue.
    pub fn intake_uses_aws(&self) -> bool {
        matches!(self.backend, Backend::Aws { .. })
    }

    /// Makes every waiting question visible now, skipping the rest of its backoff; returns how many were waiting.
    pub async fn retry_now(&self) -> anyhow::Result<usize> {
        match &self.backend {
            Backend::Memory(queues) => {
                let waiting = queues.queue.depth().in_flight;
                queues.queue.release_all();
                Ok(waiting)
            }
            Backend::Aws { .. } => anyhow::bail!("\"retry now\" works with the in-process queue only"),
        }
    }

    /// Receive counts of the questions in the queue, where they can be read without receiving them (the
    /// in-process queue; SQS shows a message's count only to whoever receives it).
    pub fn receive_counts(&self) -> Option<Vec<u32>> {
        match &self.backend {
            Backend::Memory(queues) => Some(queues.queue.receive_counts()),
            Backend::Aws { .. } => None,
        }
    }

    pub async fn depths(&self) -> anyhow::Result<Depths> {
        Ok(match &self.backend {
            Backend::Memory(queues) => {
                let Depth { visible, in_flight } = queues.queue.depth();
                let dead = queues.dead_letters.depth().total();
                Depths {
                    queue: visible as u64,
                    in_flight: in_flight as u64,
                    dead_letters: dead as u64,
                }
            }
            Backend::Aws { queues, .. } => {
                let queue = qrelay::sqs::depth(&queues.client, &queues.queue_url).await?;
                let dead = qrelay::sqs::depth(&queues.client, &queues.dead_letter_queue_url).await?;
                Depths {
                    queue: queue.visible,
                    in_flight: queue.in_flight,
                    dead_letters: dead.total(),
                }
            }
        })
    }

    /// Runs the redrive function's handler on this system's queues.
    pub async fn redrive(&self, event: serde_json::Value) -> Result<RedriveSummary, RedriveError> {
        let deadline = SystemTime::now() + Duration::from_secs(60);
        match &self.backend {
            Backend::Memory(queues) => {
                Redrive::new(queues.clone(), queues.clone(), NoNativeMover, RedriveMode::Copy)
                    .handle(event, deadline)
                    .await
            }
            Backend::Aws { queues, .. } => {
                Redrive::new(
                    queues.clone(),
                    CopyMover(queues.clone()),
                    NativeMover(queues.clone()),
                    RedriveMode::Copy,
                )
                .handle(event, deadline)
                .await
            }
        }
    }
}

/// SDK configuration for `AWS_ENDPOINT_URL` (moto, usually): the region and test credentials unless the
/// environment gives them.
async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = qrelay::aws::loader().endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.test_credentials();
    }
    loader.load().await
}
