//! Measurements that run qrelay's handlers inside this process: their own time with in-memory ports, the
//! consumer's throughput against a chat with latency, and a load through the local runner.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use qrelay::chat::http_client;
use qrelay::chat::rocketchat::RocketChat;
use qrelay::chat::secret::{ChatSecret, StaticSecret};
use qrelay::consumer::{Backoff, Consumer, QueueControl};
use qrelay::domain::{Limits, QuestionMessage, Rooms};
use qrelay::intake::Intake;
use qrelay::publish::QuestionPublisher;
use qrelay::redrive::{Redrive, RedriveMode};
use qrelay_local::board::Board;
use qrelay_local::memq::MemQueue;
use qrelay_local::ports::{MemQueues, NoNativeMover};
use rocketchat_fake::Mode;
use serde::Serialize;
use serde_json::json;

use crate::harness::Environment;
use crate::stats::Summary;

/// Accepts every question at once, doing nothing.
struct NoPublisher;

#[async_trait]
impl QuestionPublisher for NoPublisher {
    async fn publish(&self, _: &QuestionMessage) -> anyhow::Result<String> {
        Ok("bench".into())
    }
}

/// Accepts every retry and dead letter, doing nothing.
struct NoQueue;

#[async_trait]
impl QueueControl for NoQueue {
    async fn retry_after(&self, _: &str, _: Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn dead_letter(
        &self,
        _: &str,
        _: &std::collections::HashMap<String, SqsMessageAttribute>,
        _: &str,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

fn question_record(room: &str) -> SqsMessage {
    // A new text each time: the consumer posts the same text in the same room once a minute at most.
    let id = uuid::Uuid::new_v4();
    let question = json!({
        "v": 1, "id": id, "room": room, "text": format!("ベンチマークの質問 benchmark question {id}"),
        "nickname": null, "submitted_at": jiff::Timestamp::now(),
    });
    let mut record = SqsMessage::default();
    record.message_id = Some(uuid::Uuid::new_v4().to_string());
    record.receipt_handle = Some("bench".into());
    record.body = Some(json!({ "Type": "Notification", "Message": question.to_string() }).to_string());
    record.attributes.insert("ApproximateReceiveCount".into(), "1".into());
    record
}

fn batch(rooms: &[&str], n: usize) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = (0..n).map(|i| question_record(rooms[i % rooms.len()])).collect();
    event
}

fn tokyo() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Tokyo").expect("bundled tzdb")
}

/// Each handler's own time per invocation, with ports that do no I/O.
/// A deadline the benchmark never reaches: it measures the handler, not its time limit.
fn far_deadline() -> std::time::SystemTime {
    std::time::SystemTime::now() + Duration::from_secs(3600)
}

pub async fn handler_own_time(n: usize) -> anyhow::Result<Vec<(&'static str, Summary)>> {
    let rooms = Rooms::parse("general,rust-101=rust-course")?;
    let intake = Intake::new(rooms.clone(), Limits::default(), Arc::new(NoPublisher));
    let request_json = std::fs::read_to_string(crate::workspace_root().join("events/intake-post-json.json"))?;
    let mut intake_times = Vec::with_capacity(n);
    for _ in 0..n {
        let request = lambda_http::request::from_str(&request_json)?;
        let started = Instant::now();
        let response = intake.handle(request).await;
        intake_times.push(started.elapsed());
        anyhow::ensure!(response.status() == 202, "intake answered {}", response.status());
    }

    // Without its metrics line on standard output, which would bury the results (a write of a few hundred bytes).
    let consumer = Consumer::new(
        rooms.clone(),
        tokyo(),
        Backoff::default(),
        Arc::new(Board::default()),
        Arc::new(NoQueue),
    )
    .without_metrics();
    let mut consumer_times = Vec::with_capacity(n);
    for _ in 0..n {
        let event = batch(&["rust-101"], 1);
        let started = Instant::now();
        let response = consumer.handle(event, far_deadline()).await;
        consumer_times.push(started.elapsed());
        anyhow::ensure!(response.batch_item_failures.is_empty(), "the consumer failed a record");
    }

    let dead_letters = MemQueue::new("dlq");
    let queues = MemQueues {
        queue: MemQueue::new("q"),
        dead_letters,
    };
    let redrive = Redrive::new(queues.clone(), queues, NoNativeMover, RedriveMode::Copy);
    let mut redrive_times = Vec::with_capacity(n);
    for _ in 0..n {
        let deadline = std::time::SystemTime::now() + Duration::from_secs(60);
        let started = Instant::now();
        redrive.handle(json!({ "dry_run": true }), deadline).await?;
        redrive_times.push(started.elapsed());
    }
    Ok(vec![
        ("intake", Summary::of(&intake_times)),
        ("consumer", Summary::of(&consumer_times)),
        ("redrive", Summary::of(&redrive_times)),
    ])
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub rooms: usize,
    pub per_batch: Summary,
    pub messages_per_second: f64,
}

/// Batches of ten through the real Rocket.Chat adapter, against the fake answering each call after 20 ms.
pub async fn consumer_throughput(env: &Environment) -> anyhow::Result<Vec<Throughput>> {
    let room_sets: [&[&str]; 2] = [&["r0"], &["r0", "r1", "r2", "r3", "r4"]];
    for room in room_sets[1] {
        env.chat.add_channel(room);
    }
    let rooms = Rooms::parse("r0,r1,r2,r3,r4")?;
    let secret = ChatSecret::RocketChat {
        user_id: rocketchat_fake::USER_ID.into(),
        token: rocketchat_fake::TOKEN.into(),
    };
    let chat = Arc::new(RocketChat::new(
        http_client(Duration::from_secs(4))?,
        &env.chat.url(),
        Arc::new(StaticSecret(secret)),
    ));
    let consumer = Consumer::new(rooms, tokyo(), Backoff::default(), chat, Arc::new(NoQueue)).without_metrics();
    // Resolve every room id first: the cache is part of a warm consumer.
    consumer.handle(batch(room_sets[1], 5), far_deadline()).await;
    env.chat.set_mode(Mode::Slow(Duration::from_millis(20)));
    let mut results = Vec::new();
    for rooms in room_sets {
        let mut times = Vec::new();
        for _ in 0..20 {
            let event = batch(rooms, 10);
            let started = Instant::now();
            let response = consumer.handle(event, far_deadline()).await;
            times.push(started.elapsed());
            anyhow::ensure!(response.batch_item_failures.is_empty(), "a post failed");
        }
        let per_batch = Summary::of(&times);
        let total: Duration = times.iter().sum();
        results.push(Throughput {
            rooms: rooms.len(),
            per_batch,
            messages_per_second: (times.len() * 10) as f64 / total.as_secs_f64(),
        });
    }
    env.chat.set_mode(Mode::Up);
    Ok(results)
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub questions: usize,
    pub concurrency: usize,
    pub accepted_per_second: f64,
    pub ack: Summary,
    pub all_once: bool,
    pub delivered_within_ms: f64,
    /// From each 202 (the wall clock when the client had it) to the question's `posted_at` on the board, over every
    /// question; one posted before its 202 reached the client counts as 0, and is counted here.
    pub submit_to_board: Summary,
    pub on_board_before_ack: usize,
}

/// `questions` posted to the local runner over loopback by `concurrency` clients; then every one must reach the
/// board exactly once.
pub async fn local_load(questions: usize, concurrency: usize) -> anyhow::Result<Load> {
    let running = qrelay_local::start(qrelay_local::LocalConfig {
        emit_metrics: false,
        ..qrelay_local::LocalConfig::for_tests()
    })
    .await?;
    let url = format!("{}/questions", running.url());
    let client = qrelay::chat::http_client(std::time::Duration::from_secs(30))?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= questions {
                    return anyhow::Ok(acks);
                }
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .json(&json!({ "text": format!("load question {n}") }))
                    .send()
                    .await?;
                anyhow::ensure!(response.status() == 202, "question {n}: {}", response.status());
                let id = response.json::<serde_json::Value>().await?["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                acks.push((sent.elapsed(), id, jiff::Timestamp::now()));
            }
        }));
    }
    let mut acks = Vec::new();
    for worker in workers {
        acks.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while running.system.board.len() < questions && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_within = started.elapsed();
    let board = running.system.board.messages_after(0);
    let on_board: HashSet<&str> = board.iter().map(|m| m.id.as_str()).collect();
    let all_once = board.len() == questions
        && on_board.len() == questions
        && acks.iter().all(|(_, id, _)| on_board.contains(id.as_str()));
    let posted_at: std::collections::HashMap<&str, jiff::Timestamp> =
        board.iter().map(|m| (m.id.as_str(), m.posted_at)).collect();
    let mut on_board_before_ack = 0;
    let mut submit_to_board = Vec::with_capacity(acks.len());
    for (_, id, acked_at) in &acks {
        let Some(posted_at) = posted_at.get(id.as_str()) else {
            continue;
        };
        let nanos = posted_at.as_nanosecond() - acked_at.as_nanosecond();
        if nanos < 0 {
            on_board_before_ack += 1;
        }
        submit_to_board.push(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)));
    }
    running.stop().await;
    let latencies: Vec<Duration> = acks.iter().map(|(d, _, _)| *d).collect();
    Ok(Load {
        questions,
        concurrency,
        accepted_per_second: questions as f64 / elapsed.as_secs_f64(),
        ack: Summary::of(&latencies),
        all_once,
        delivered_within_ms: delivered_within.as_secs_f64() * 1000.0,
        submit_to_board: Summary::of(&submit_to_board),
        on_board_before_ack,
    })
}
