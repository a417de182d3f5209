//! The redrive function end to end against moto and the Rocket.Chat fake: questions dead-lettered during a long
//! outage come back after it and are posted exactly once; dry runs, limits, interruptions and attributes.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::MessageAttributeValue;
use qrelay::chat::rocketchat::message_id;
use qrelay::redrive::{CopyMover, DEADLINE_MARGIN, NativeMover, Queues, Redrive, RedriveMode, RedriveSummary};
use rocketchat_fake::Mode;
use serde_json::json;

use crate::support::pipeline::Pipeline;

type SqsRedrive = Redrive<Queues, CopyMover, NativeMover>;

fn redrive(pipeline: &Pipeline) -> SqsRedrive {
    let queues = pipeline.world.redrive_queues();
    Redrive::new(
        queues.clone(),
        CopyMover(queues.clone()),
        NativeMover(queues),
        RedriveMode::Copy,
    )
}

fn plenty_of_time() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

async fn run(redrive: &SqsRedrive, event: serde_json::Value) -> RedriveSummary {
    redrive
        .handle(event.clone(), plenty_of_time())
        .await
        .unwrap_or_else(|e| panic!("{event}: {e}"))
}

/// Publishes `n` questions and drives them into the dead-letter queue with the chat down.
async fn dead_lettered_questions(pipeline: &Pipeline, n: usize) -> Vec<qrelay::domain::QuestionId> {
    pipeline.chat.set_mode(Mode::Down);
    let mut ids = Vec::new();
    for i in 0..n {
        let room = if i % 2 == 0 { "general" } else { "rust-101" };
        ids.push(pipeline.publish(room, &format!("asked during a long outage {i}")).await);
    }
    pipeline.dead_letter_everything().await;
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (0, 0),
        "the main queue gave up on them"
    );
    assert_eq!(
        pipeline.depth(&pipeline.world.dlq_url).await,
        (n as u64, 0),
        "all {n} are dead letters"
    );
    ids
}

#[tokio::test]
async fn questions_dead_lettered_in_an_outage_are_redriven_and_posted_exactly_once() {
    let pipeline = Pipeline::start().await;
    let ids = dead_lettered_questions(&pipeline, 20).await;
    assert!(pipeline.chat.messages().is_empty());

    pipeline.chat.set_mode(Mode::Up);
    let summary = run(&redrive(&pipeline), json!({})).await;
    pipeline.drain(10).await;

    assert_eq!(
        (summary.moved, summary.remaining, summary.failed.len()),
        (20, 0, 0),
        "{summary:?}"
    );
    let posted: Vec<String> = pipeline.chat.messages().into_iter().map(|m| m.id).collect();
    let unique: HashSet<&String> = posted.iter().collect();
    assert_eq!((posted.len(), unique.len()), (20, 20), "each once");
    for id in ids {
        assert!(unique.contains(&message_id(id)), "{id} posted");
    }
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (0, 0),
        "main queue empty"
    );
    assert_eq!(
        pipeline.depth(&pipeline.world.dlq_url).await,
        (0, 0),
        "dead-letter queue empty"
    );
}

#[tokio::test]
async fn a_dry_run_reports_what_would_move_and_moves_nothing() {
    let pipeline = Pipeline::start().await;
    dead_lettered_questions(&pipeline, 6).await;

    let summary = run(&redrive(&pipeline), json!({"dry_run": true})).await;

    let report = summary.would_move.clone().expect("a report");
    assert_eq!(report.count, 6);
    assert_eq!(report.rooms.get("general"), Some(&3));
    assert_eq!(report.rooms.get("rust-101"), Some(&3));
    assert!(report.oldest_submitted_at <= report.newest_submitted_at && report.oldest_submitted_at.is_some());
    assert_eq!(summary.moved, 0);
    let json = serde_json::to_string(&summary).expect("json");
    assert!(!json.contains("asked during"), "no question text in the report: {json}");
    assert_eq!(
        pipeline.depth(&pipeline.world.dlq_url).await,
        (6, 0),
        "all still there, and visible again"
    );
    assert_eq!(pipeline.depth(&pipeline.world.queue_url).await, (0, 0), "nothing moved");
}

#[tokio::test]
async fn max_messages_is_respected() {
    let pipeline = Pipeline::start().await;
    dead_lettered_questions(&pipeline, 12).await;

    let summary = run(&redrive(&pipeline), json!({"max_messages": 5})).await;

    assert_eq!((summary.moved, summary.remaining), (5, 7), "{summary:?}");
    assert_eq!(pipeline.depth(&pipeline.world.queue_url).await, (5, 0));
    assert!(summary.message.contains("invoke again"), "{}", summary.message);
}

#[tokio::test]
async fn an_interrupted_redrive_run_again_finishes_with_nothing_lost() {
    let pipeline = Pipeline::start().await;
    let ids = dead_lettered_questions(&pipeline, 20).await;
    pipeline.chat.set_mode(Mode::Up);
    let redrive = redrive(&pipeline);

    // The Lambda is out of time from the start: one batch, then it stops and says so.
    let late = SystemTime::now() + DEADLINE_MARGIN;
    let first = redrive.handle(json!({}), late).await.expect("first run");
    assert_eq!((first.moved, first.remaining), (10, 10), "stopped halfway: {first:?}");
    assert!(first.message.contains("invoke again"), "{}", first.message);

    let second = run(&redrive, json!({})).await;
    assert_eq!((second.moved, second.remaining), (10, 0), "{second:?}");

    pipeline.drain(10).await;
    let posted: HashSet<String> = pipeline.chat.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(
        posted,
        ids.into_iter().map(message_id).collect(),
        "every question, once"
    );
}

#[tokio::test]
async fn an_empty_dead_letter_queue_is_reported_as_such() {
    let pipeline = Pipeline::start().await;
    let summary = run(&redrive(&pipeline), json!({})).await;
    assert_eq!((summary.moved, summary.remaining), (0, 0));
    assert_eq!(summary.message, "the dead-letter queue is empty; nothing to redrive");
}

#[tokio::test]
async fn two_redrives_at_once_lose_nothing_and_each_question_is_posted_once() {
    let pipeline = Pipeline::start().await;
    let ids = dead_lettered_questions(&pipeline, 30).await;
    let redrive = redrive(&pipeline);

    let (a, b) = tokio::join!(run(&redrive, json!({})), run(&redrive, json!({})));

    // Each run copies what it received. SQS may hand one message to both (standard queues deliver at least once;
    // moto's receive, which takes no lock, does it under load), so both may copy it: nothing is lost, and the
    // consumer's idempotent post keeps the chat free of the duplicate.
    assert!(a.failed.is_empty() && b.failed.is_empty(), "{a:?} / {b:?}");
    assert!(a.moved + b.moved >= 30, "{a:?} / {b:?}");
    assert_eq!(
        pipeline.depth(&pipeline.world.dlq_url).await,
        (0, 0),
        "no dead letter left behind"
    );
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (u64::from(a.moved + b.moved), 0),
        "what the runs report moved is what arrived"
    );

    pipeline.chat.set_mode(Mode::Up);
    pipeline.drain(10).await;
    let posted: Vec<String> = pipeline.chat.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(posted.len(), 30, "each question once");
    assert_eq!(
        posted.into_iter().collect::<HashSet<_>>(),
        ids.into_iter().map(message_id).collect(),
        "every question"
    );
}

#[tokio::test]
async fn message_attributes_survive_the_move() {
    let pipeline = Pipeline::start().await;
    let string = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("attr")
    };
    let number = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value("42")
        .build()
        .expect("attr");
    pipeline
        .world
        .sqs
        .send_message()
        .queue_url(&pipeline.world.dlq_url)
        .message_body("raw body kept byte for byte: 質問 \u{1F389}")
        .message_attributes("room", string("rust-101"))
        .message_attributes("attempt", number)
        .message_attributes(qrelay::sqs::DEAD_LETTER_REASON, string("stale reason"))
        .send()
        .await
        .expect("send");

    let summary = run(&redrive(&pipeline), json!({})).await;
    assert_eq!(summary.moved, 1);

    let event = pipeline.receive().await;
    let record = &event.records[0];
    assert_eq!(
        record.body.as_deref(),
        Some("raw body kept byte for byte: 質問 \u{1F389}")
    );
    let attributes = &record.message_attributes;
    assert_eq!(attributes["room"].string_value.as_deref(), Some("rust-101"));
    assert_eq!(
        (
            attributes["attempt"].data_type.as_deref(),
            attributes["attempt"].string_value.as_deref()
        ),
        (Some("Number"), Some("42"))
    );
    assert!(
        !attributes.contains_key(qrelay::sqs::DEAD_LETTER_REASON),
        "the consumer's stale reason is dropped"
    );
}

#[tokio::test]
async fn the_sample_redrive_events_are_understood() {
    let pipeline = Pipeline::start().await;
    dead_lettered_questions(&pipeline, 2).await;
    let redrive = redrive(&pipeline);
    let cases = [
        (
            "redrive-dry-run.json",
            include_str!("../../events/redrive-dry-run.json"),
            0,
        ),
        (
            "redrive-status.json",
            include_str!("../../events/redrive-status.json"),
            0,
        ),
        ("redrive-limit.json", include_str!("../../events/redrive-limit.json"), 2),
        ("redrive-all.json", include_str!("../../events/redrive-all.json"), 0),
    ];
    for (name, json, moved) in cases {
        let event: serde_json::Value = serde_json::from_str(json).expect(name);
        let summary = run(&redrive, event).await;
        assert_eq!(summary.moved, moved, "{name}: {summary:?}");
    }
}
