//! The redrive handler's request handling with fakes at the ports, and the native mover's SQS calls with
//! aws-smithy-mocks (moto does not implement message move tasks).

use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sqs::operation::list_message_move_tasks::ListMessageMoveTasksOutput;
use aws_sdk_sqs::operation::start_message_move_task::{StartMessageMoveTaskError, StartMessageMoveTaskOutput};
use aws_sdk_sqs::types::ListMessageMoveTasksResultEntry;
use aws_sdk_sqs::types::error::UnsupportedOperation;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::json;

use super::*;

const DLQ_ARN: &str = "arn:aws:sqs:ap-northeast-1:123456789012:qrelay-dlq";
const QUEUE_ARN: &str = "arn:aws:sqs:ap-northeast-1:123456789012:qrelay-questions";

/// A dead-letter queue of `depth` messages that records each move it is asked for.
#[derive(Default)]
struct FakeDlq {
    depth: Mutex<u64>,
    moves: Mutex<Vec<Option<u32>>>,
}

#[async_trait]
impl DeadLetterQueue for &FakeDlq {
    async fn depth(&self) -> anyhow::Result<u64> {
        Ok(*self.depth.lock().expect("lock"))
    }

    async fn inspect(&self, _stop_at: Instant) -> anyhow::Result<DeadLetterReport> {
        let count = *self.depth.lock().expect("lock") as u32;
        Ok(DeadLetterReport {
            count,
            rooms: BTreeMap::from([("general".into(), count)]),
            ..Default::default()
        })
    }
}

#[async_trait]
impl DeadLetterMover for &FakeDlq {
    async fn move_back(&self, limit: Option<u32>, _stop_at: Instant) -> anyhow::Result<Moved> {
        self.moves.lock().expect("lock").push(limit);
        let mut depth = self.depth.lock().expect("lock");
        let moved = limit.map_or(*depth, |l| u64::from(l).min(*depth));
        *depth -= moved;
        Ok(Moved {
            moved: moved as u32,
            stopped_early: *depth > 0,
            ..Moved::default()
        })
    }

    async fn status(&self) -> anyhow::Result<Vec<MoveTask>> {
        Ok(Vec::new())
    }
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

fn fake(depth: u64) -> FakeDlq {
    FakeDlq {
        depth: Mutex::new(depth),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_empty_event_moves_everything() {
    let dlq = fake(25);
    let redrive = Redrive::new(&dlq, &dlq, &dlq, RedriveMode::Copy);
    for event in [json!({}), serde_json::Value::Null] {
        *dlq.depth.lock().expect("lock") = 25;
        let summary = redrive.handle(event.clone(), deadline()).await.expect("moves");
        assert_eq!(
            (summary.moved, summary.remaining, summary.mode),
            (25, 0, "copy"),
            "{event}"
        );
        assert_eq!(
            summary.message,
            "moved 25 message(s) back; the dead-letter queue is empty"
        );
    }
}

#[tokio::test]
async fn a_dry_run_reports_and_moves_nothing() {
    let dlq = fake(7);
    let summary = Redrive::new(&dlq, &dlq, &dlq, RedriveMode::Copy)
        .handle(json!({"dry_run": true}), deadline())
        .await
        .expect("dry run");
    assert!(dlq.moves.lock().expect("lock").is_empty(), "no move requested");
    assert_eq!(summary.would_move.as_ref().map(|r| r.count), Some(7));
    assert_eq!((summary.moved, summary.remaining), (0, 7));
    let json = serde_json::to_value(&summary).expect("serialises");
    assert_eq!(json["would_move"]["rooms"]["general"], 7, "{json}");
}

#[tokio::test]
async fn max_messages_is_passed_on_and_the_rest_reported() {
    let dlq = fake(120);
    let summary = Redrive::new(&dlq, &dlq, &dlq, RedriveMode::Copy)
        .handle(json!({"max_messages": 50}), deadline())
        .await
        .expect("moves");
    assert_eq!(*dlq.moves.lock().expect("lock"), [Some(50)]);
    assert_eq!((summary.moved, summary.remaining), (50, 70));
    assert!(summary.message.contains("invoke again"), "{}", summary.message);
}

#[tokio::test]
async fn an_empty_dead_letter_queue_says_so() {
    let dlq = fake(0);
    let summary = Redrive::new(&dlq, &dlq, &dlq, RedriveMode::Copy)
        .handle(json!({}), deadline())
        .await
        .expect("ok");
    assert_eq!(summary.message, "the dead-letter queue is empty; nothing to redrive");
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_clear_error() {
    let dlq = fake(3);
    let redrive = Redrive::new(&dlq, &dlq, &dlq, RedriveMode::Copy);
    let cases = [
        (json!({"dryrun": true}), "unknown field `dryrun`"),
        (json!({"action": "purge"}), "unknown variant `purge`"),
        (json!({"max_messages": 0}), "at least 1"),
        (json!({"max_messages": -5}), "invalid value"),
        (
            json!({"mode": "native", "max_messages": 5}),
            "only with \"mode\": \"copy\"",
        ),
        (json!([1, 2]), "expected a JSON object"),
        (json!("redrive"), "expected a JSON object"),
    ];
    for (event, expected) in cases {
        let err = redrive.handle(event.clone(), deadline()).await.expect_err("refused");
        assert!(matches!(err, RedriveError::InvalidRequest(_)), "{event}: {err}");
        assert!(err.to_string().contains(expected), "{event}: {err}");
        assert!(
            err.to_string().contains("dry_run"),
            "{event}: the error shows how to ask: {err}"
        );
    }
    assert_eq!(*dlq.depth.lock().expect("lock"), 3, "nothing moved");
}

fn queues(client: aws_sdk_sqs::Client) -> Queues {
    Queues {
        client,
        queue_url: "https://sqs.ap-northeast-1.amazonaws.com/123456789012/qrelay-questions".into(),
        queue_arn: QUEUE_ARN.into(),
        dead_letter_queue_url: "https://sqs.ap-northeast-1.amazonaws.com/123456789012/qrelay-dlq".into(),
        dead_letter_queue_arn: DLQ_ARN.into(),
    }
}

#[tokio::test]
async fn the_native_mover_starts_a_move_task_from_the_dlq_to_its_source() {
    let start = mock!(aws_sdk_sqs::Client::start_message_move_task)
        .match_requests(|r| r.source_arn() == Some(DLQ_ARN) && r.destination_arn() == Some(QUEUE_ARN))
        .then_output(|| StartMessageMoveTaskOutput::builder().task_handle("task-1").build());
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&start]);

    let moved = NativeMover(queues(client))
        .move_back(None, Instant::now())
        .await
        .expect("started");

    assert_eq!(
        start.num_calls(),
        1,
        "one StartMessageMoveTask with the DLQ as source and the queue as destination"
    );
    assert_eq!(moved.tasks[0].task_handle.as_deref(), Some("task-1"));
}

#[tokio::test]
async fn the_native_mover_reports_its_tasks() {
    let list = mock!(aws_sdk_sqs::Client::list_message_move_tasks)
        .match_requests(|r| r.source_arn() == Some(DLQ_ARN))
        .then_output(|| {
            ListMessageMoveTasksOutput::builder()
                .results(
                    ListMessageMoveTasksResultEntry::builder()
                        .task_handle("task-1")
                        .status("RUNNING")
                        .approximate_number_of_messages_moved(12)
                        .approximate_number_of_messages_to_move(20)
                        .build(),
                )
                .build()
        });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&list]);

    let tasks = NativeMover(queues(client)).status().await.expect("listed");

    assert_eq!(list.num_calls(), 1);
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0].status.as_deref(), tasks[0].moved, tasks[0].to_move),
        (Some("RUNNING"), Some(12), Some(20))
    );
}

#[tokio::test]
async fn a_native_move_that_sqs_refuses_says_what_to_try() {
    let start = mock!(aws_sdk_sqs::Client::start_message_move_task).then_error(|| {
        StartMessageMoveTaskError::UnsupportedOperation(
            UnsupportedOperation::builder()
                .message("A message move task is already running")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&start]);

    let err = NativeMover(queues(client))
        .move_back(None, Instant::now())
        .await
        .expect_err("refused");

    assert!(format!("{err:#}").contains("action\": \"status"), "{err:#}");
}
