//! Builds the system from its configuration and runs the consumer loop that plays the event-source mapping.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use qrelay::chat::rocketchat::RocketChat;
use qrelay::chat::secret::{ChatSecret, StaticSecret};
use qrelay::chat::webhook::Webhook;
use qrelay::chat::{ChatPoster, REQUEST_TIMEOUT, http_client};
use qrelay::config::{self, IntakeConfig, Limits, RedriveMode, Source};
use qrelay::consumer::event_source::SqsPoller;
use qrelay::consumer::{Backoff, Consumer, SqsQueueControl};
use qrelay::domain::Rooms;
use qrelay::intake::Intake;
use qrelay::publish::SnsPublisher;
use qrelay::redrive::{CopyMover, NativeMover, Queues, Redrive, RedriveError, RedriveSummary};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::board::{Board, OutageSwitch};
use crate::memq::{Depth, MemQueue};
use crate::ports::{MemQueues, MemTopic, NoNativeMover};

/// The receive budget before a question becomes a dead letter, as in template.yaml.
pub const MAX_RECEIVE_COUNT: u32 = 30;

/// Which chat the local consumer posts to.
#[derive(Debug, Clone)]
pub enum ChatChoice {
    /// The built-in board page.
    Board,
    /// A real Rocket.Chat, with credentials given for local use only.
    RocketChat { url: String, secret: ChatSecret },
    /// A real incoming webhook.
    Webhook { secret: ChatSecret },
}

/// How the local runner is set up.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub rooms: Rooms,
    pub limits: Limits,
    pub time_zone: jiff::tz::TimeZone,
    /// Shorter than in AWS by default, so a simulated outage resolves within seconds of its end.
    pub backoff: Backoff,
    pub chat: ChatChoice,
    /// `AWS_ENDPOINT_URL`: use SNS and SQS there (moto) instead of in-process queues.
    pub aws_endpoint: Option<String>,
    /// Receives before a question becomes a dead letter (30, as in the template; tests use fewer).
    pub max_receive_count: u32,
    /// Whether the consumer prints its metrics line per batch, as it does in Lambda's log.
    pub emit_metrics: bool,
}

impl LocalConfig {
    /// Reads `QRELAY_PORT` (default 3000), `ROOMS` (default `general,rust-101`), `TIME_ZONE`, `MAX_*_CHARS`,
    /// `AWS_ENDPOINT_URL`, and, to post to a real chat, `QRELAY_LOCAL_CHAT_URL` + `QRELAY_LOCAL_CHAT_USER_ID` +
    /// `QRELAY_LOCAL_CHAT_TOKEN` or `QRELAY_LOCAL_WEBHOOK_URL`. `--port N` on the command line wins.
    pub fn from_env_and_args(args: &[String]) -> anyhow::Result<Self> {
        let env = config::ProcessEnv;
        let mut port = config::parsed_or(&env, "QRELAY_PORT", 3000u16)?;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" | "-p" => {
                    port = args
                        .next()
                        .context("--port needs a number")?
                        .parse()
                        .context("--port")?
                }
                "--help" | "-h" => {
                    println!("usage: qrelay-local [--port N]   (environment: see README, \"Run it locally\")");
                    std::process::exit(0);
                }
                other => anyhow::bail!("unknown argument {other:?}; usage: qrelay-local [--port N]"),
            }
        }
        let rooms = match env.get("ROOMS") {
            Some(_) => config::rooms(&env)?,
            None => Rooms::parse("general,rust-101").context("default rooms")?,
        };
        let tz = env.get("TIME_ZONE").unwrap_or_else(|| "Asia/Tokyo".into());
        let chat = match (env.get("QRELAY_LOCAL_CHAT_URL"), env.get("QRELAY_LOCAL_WEBHOOK_URL")) {
            (Some(url), _) => ChatChoice::RocketChat {
                url,
                secret: ChatSecret::RocketChat {
                    user_id: config::required(&env, "QRELAY_LOCAL_CHAT_USER_ID")?,
                    token: config::required(&env, "QRELAY_LOCAL_CHAT_TOKEN")?,
                },
            },
            (None, Some(webhook_url)) => ChatChoice::Webhook {
                secret: ChatSecret::Webhook { webhook_url },
            },
            (None, None) => ChatChoice::Board,
        };
        Ok(Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            rooms,
            limits: Limits::from_source(&env)?,
            time_zone: jiff::tz::TimeZone::get(&tz).with_context(|| format!("TIME_ZONE {tz:?}"))?,
            backoff: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(10),
            },
            chat,
            aws_endpoint: env.get("AWS_ENDPOINT_URL"),
            max_receive_count: MAX_RECEIVE_COUNT,
            emit_metrics: true,
        })
    }

    /// Defaults for tests: a free port, the board, in-process queues.
    pub fn for_tests() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            rooms: Rooms::parse("general,rust-101").expect("valid rooms"),
            limits: Limits::default(),
            time_zone: jiff::tz::TimeZone::get("Asia/Tokyo").expect("bundled tzdb"),
            backoff: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(2),
            },
            chat: ChatChoice::Board,
            aws_endpoint: None,
            max_receive_count: MAX_RECEIVE_COUNT,
            emit_metrics: true,
        }
    }
}

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
    pub backend: Backend,
    pub board: Arc<Board>,
    pub outage: Arc<OutageSwitch>,
    pub rooms: Rooms,
    pub chat_label: &'static str,
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
            ChatChoice::RocketChat { url, secret } => {
                let secrets = Arc::new(StaticSecret(secret.clone()));
                (
                    Arc::new(RocketChat::new(http_client(REQUEST_TIMEOUT)?, url, secrets)),
                    "Rocket.Chat",
                )
            }
            ChatChoice::Webhook { secret } => (
                Arc::new(Webhook::new(
                    http_client(REQUEST_TIMEOUT)?,
                    Arc::new(StaticSecret(secret.clone())),
                )),
                "webhook",
            ),
        };
        let outage = Arc::new(OutageSwitch::new(chat));
        let intake_config = |topic_arn: String| IntakeConfig {
            topic_arn,
            rooms: config.rooms.clone(),
            limits: config.limits,
        };
        let (intake, backend, queue_control): (Intake, Backend, Arc<dyn qrelay::consumer::QueueControl>) = match &config
            .aws_endpoint
        {
            None => {
                let dead_letters = MemQueue::new("questions-dlq");
                let queue = MemQueue::with_dead_letters("questions", config.max_receive_count, dead_letters.clone());
                let queues = MemQueues {
                    queue: queue.clone(),
                    dead_letters,
                };
                let intake = Intake::new(intake_config("local".into()), Arc::new(MemTopic(queue)));
                (intake, Backend::Memory(queues.clone()), Arc::new(queues))
            }
            Some(endpoint) => {
                let (sdk, sns, sqs) = aws_clients(endpoint).await;
                let (topic_arn, queues) = create_aws_resources(&sns, &sqs, config.max_receive_count).await?;
                let intake = Intake::new(
                    intake_config(topic_arn.clone()),
                    Arc::new(SnsPublisher::new(sns, topic_arn)),
                );
                // The consumer Lambda's own queue control, which builds its client on first use.
                let control = SqsQueueControl::lazy(sdk, &queues.queue_url, &queues.dead_letter_queue_url);
                let poller = SqsPoller::new(sqs, &queues.queue_url, &queues.queue_arn);
                (intake, Backend::Aws { poller, queues }, Arc::new(control))
            }
        };
        let consumer = Consumer::new(
            config.rooms.clone(),
            config.time_zone.clone(),
            config.backoff,
            outage.clone(),
            queue_control,
        );
        let consumer = if config.emit_metrics {
            consumer
        } else {
            consumer.without_metrics()
        };
        Ok(Self {
            intake,
            consumer,
            backend,
            board,
            outage,
            rooms: config.rooms.clone(),
            chat_label,
        })
    }

    /// Whether questions go through SNS and SQS (at `AWS_ENDPOINT_URL`) rather than the in-process queue.
    pub fn intake_uses_aws(&self) -> bool {
        matches!(self.backend, Backend::Aws { .. })
    }

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
                let response = self.consumer.handle(event.clone()).await;
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

    /// Makes every waiting question visible now, skipping the rest of its backoff.
    pub async fn retry_now(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Memory(queues) => queues.queue.release_all(),
            Backend::Aws { .. } => anyhow::bail!("\"retry now\" works with the in-process queue only"),
        }
        Ok(())
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
                let (queue, in_flight) = sqs_depth(&queues.client, &queues.queue_url).await?;
                let (dead, dead_in_flight) = sqs_depth(&queues.client, &queues.dead_letter_queue_url).await?;
                Depths {
                    queue,
                    in_flight,
                    dead_letters: dead + dead_in_flight,
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
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
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

async fn aws_clients(endpoint: &str) -> (aws_config::SdkConfig, aws_sdk_sns::Client, aws_sdk_sqs::Client) {
    let mut loader = qrelay::aws::loader().endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.test_credentials();
    }
    let sdk = loader.load().await;
    let (sns, sqs) = (aws_sdk_sns::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
    (sdk, sns, sqs)
}

/// Creates (or finds: the calls are idempotent) the topic, the queue, its dead-letter queue and the subscription.
async fn create_aws_resources(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    max_receive_count: u32,
) -> anyhow::Result<(String, Queues)> {
    let topic_arn = sns
        .create_topic()
        .name("qrelay-questions")
        .send()
        .await
        .context("creating the topic")?
        .topic_arn;
    let topic_arn = topic_arn.context("no topic ARN")?;
    let dlq_url = sqs
        .create_queue()
        .queue_name("qrelay-questions-dlq")
        .send()
        .await
        .context("creating the DLQ")?
        .queue_url;
    let dlq_url = dlq_url.context("no DLQ URL")?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count}"}}"#);
    let queue_url = sqs
        .create_queue()
        .queue_name("qrelay-questions")
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .attributes(QueueAttributeName::VisibilityTimeout, "180")
        .send()
        .await
        .context("creating the queue")?
        .queue_url
        .context("no queue URL")?;
    let queue_arn = queue_arn(sqs, &queue_url).await?;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .context("subscribing")?;
    let queues = Queues {
        client: sqs.clone(),
        queue_url,
        queue_arn,
        dead_letter_queue_url: dlq_url,
        dead_letter_queue_arn: dlq_arn,
    };
    Ok((topic_arn, queues))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading the queue ARN")?
        .attributes
        .unwrap_or_default();
    attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .context("no queue ARN")
}

async fn sqs_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<(u64, u64)> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .context("reading queue depth")?
        .attributes
        .unwrap_or_default();
    let get = |name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}
