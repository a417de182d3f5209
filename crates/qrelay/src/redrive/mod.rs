//! The redrive function: the instructor's tool to move dead letters back to the consumer's queue once the chat
//! works again. Invoked by hand (`sam remote invoke`, `aws lambda invoke`, the console's test button), never from
//! the public API.
//!
//! **Invariant:** a dead letter is deleted from the dead-letter queue only after the source queue accepted its
//! copy. A crash in between can leave a message in both queues; the consumer's idempotent post makes that
//! harmless, so a redrive never loses a question and never posts one twice.

mod movers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use movers::{CopyMover, DeadLetterMover, DeadLetterQueue, MoveTask, Moved, NativeMover, Queues};

/// What the instructor asks for. Unknown fields are refused, so a typo (`"dryrun"`) can't silently move
/// everything.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveRequest {
    /// `redrive` (the default) or `status`.
    #[serde(default)]
    action: Action,
    /// Report what would move (count, oldest and newest submission time, rooms), moving nothing.
    #[serde(default)]
    dry_run: bool,
    /// Move at most this many (copy mode only).
    max_messages: Option<u32>,
    /// `copy` or `native`; the configured default when absent.
    mode: Option<RedriveMode>,
}

/// How dead letters are moved back: chosen by `REDRIVE_MODE`, or per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedriveMode {
    /// Receive from the DLQ, send to the source queue, delete from the DLQ: works everywhere (moto included).
    Copy,
    /// SQS's own `StartMessageMoveTask`: AWS only.
    Native,
}

impl RedriveMode {
    /// The mode as written in a request and in `REDRIVE_MODE`.
    fn name(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::Native => "native",
        }
    }
}

impl std::str::FromStr for RedriveMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "copy" => Ok(Self::Copy),
            "native" => Ok(Self::Native),
            other => Err(format!("{other:?} is not one of copy, native")),
        }
    }
}

/// What to do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    #[default]
    Redrive,
    Status,
}

/// A request the function can't act on: the instructor's to fix.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(
        "invalid redrive request: {0}. Send {{}} to move everything, {{\"dry_run\": true}} to look first, \
             {{\"max_messages\": 50}} to move some, or {{\"action\": \"status\"}}"
    )]
    InvalidRequest(String),
    #[error("the redrive failed: {0:#}")]
    Failed(#[from] anyhow::Error),
}

impl From<RedriveError> for lambda_runtime::Diagnostic {
    fn from(e: RedriveError) -> Self {
        let error_type = match e {
            RedriveError::InvalidRequest(_) => "InvalidRequest",
            RedriveError::Failed(_) => "RedriveFailed",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// What one invocation did, returned as the function's JSON result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedriveSummary {
    mode: &'static str,
    action: &'static str,
    dry_run: bool,
    pub moved: u32,
    pub failed: Vec<Failure>,
    /// Messages still in the dead-letter queue afterwards (approximate, as SQS counts).
    pub remaining: u64,
    elapsed_ms: u64,
    /// One sentence for the instructor.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_move: Option<DeadLetterReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tasks: Vec<MoveTask>,
}

/// A message that could not be moved, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    message_id: String,
    reason: String,
}

/// What is in the dead-letter queue, without any question text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetterReport {
    pub count: u32,
    pub oldest_submitted_at: Option<jiff::Timestamp>,
    pub newest_submitted_at: Option<jiff::Timestamp>,
    /// Questions per room.
    pub rooms: BTreeMap<String, u32>,
    /// Messages that are not readable questions (they are moved back all the same; the consumer dead-letters
    /// them again with the reason).
    unreadable: u32,
}

impl DeadLetterReport {
    /// Counts one dead letter by its body (an SNS envelope or a raw question document).
    pub fn add(&mut self, body: &str) {
        self.count += 1;
        match crate::domain::Question::from_queue_body(body) {
            Ok(question) => {
                *self.rooms.entry(question.room.to_string()).or_default() += 1;
                let at = question.submitted_at;
                self.oldest_submitted_at = Some(self.oldest_submitted_at.map_or(at, |o| o.min(at)));
                self.newest_submitted_at = Some(self.newest_submitted_at.map_or(at, |n| n.max(at)));
            }
            Err(_) => self.unreadable += 1,
        }
    }
}

/// Time kept in reserve before the Lambda's deadline: enough to finish a batch and answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// The redrive handler with what it needs, built once per execution environment.
#[derive(Debug)]
pub struct Redrive<Q, C, N> {
    dead_letters: Q,
    copy: C,
    native: N,
    default_mode: RedriveMode,
}

impl<Q: DeadLetterQueue, C: DeadLetterMover, N: DeadLetterMover> Redrive<Q, C, N> {
    pub fn new(dead_letters: Q, copy: C, native: N, default_mode: RedriveMode) -> Self {
        Self {
            dead_letters,
            copy,
            native,
            default_mode,
        }
    }

    /// Parses the event and acts on it, stopping before `deadline` (the Lambda's).
    pub async fn handle(&self, event: serde_json::Value, deadline: SystemTime) -> Result<RedriveSummary, RedriveError> {
        let started = Instant::now();
        let request = parse_request(event)?;
        let mode = request.mode.unwrap_or(self.default_mode);
        if request.max_messages == Some(0) {
            return Err(RedriveError::InvalidRequest("max_messages must be at least 1".into()));
        }
        if mode == RedriveMode::Native && request.max_messages.is_some() {
            return Err(RedriveError::InvalidRequest(
                "max_messages works only with \"mode\": \"copy\"".into(),
            ));
        }
        // An Instant deadline, so the clock can't jump under us.
        let budget = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(DEADLINE_MARGIN);
        let stop_at = Instant::now() + budget;
        let mover: &dyn DeadLetterMover = match mode {
            RedriveMode::Copy => &self.copy,
            RedriveMode::Native => &self.native,
        };
        let mut summary = RedriveSummary {
            mode: mode.name(),
            action: if request.action == Action::Status {
                "status"
            } else {
                "redrive"
            },
            dry_run: request.dry_run,
            moved: 0,
            failed: Vec::new(),
            remaining: 0,
            elapsed_ms: 0,
            message: String::new(),
            would_move: None,
            tasks: Vec::new(),
        };
        match (request.action, request.dry_run) {
            (Action::Status, _) => {
                summary.tasks = mover.status().await?;
                summary.remaining = self.dead_letters.depth().await?;
                summary.message = format!("{} message(s) in the dead-letter queue", summary.remaining);
            }
            (Action::Redrive, true) => {
                let report = self.dead_letters.inspect(stop_at).await?;
                summary.remaining = self.dead_letters.depth().await?;
                summary.message = if report.count == 0 {
                    "the dead-letter queue is empty; nothing would move".to_owned()
                } else {
                    format!(
                        "{} message(s) would move back; nothing was moved (dry run)",
                        report.count
                    )
                };
                summary.would_move = Some(report);
            }
            (Action::Redrive, false) => {
                let moved = mover.move_back(request.max_messages, stop_at).await?;
                summary.moved = moved.moved;
                summary.failed = moved.failed;
                summary.tasks = moved.tasks;
                summary.remaining = self.dead_letters.depth().await?;
                summary.message = describe(&summary, moved.stopped_early);
            }
        }
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }
}

fn parse_request(event: serde_json::Value) -> Result<RedriveRequest, RedriveError> {
    match event {
        // The console's test button and `aws lambda invoke` without a payload send an empty object or null.
        serde_json::Value::Null => Ok(RedriveRequest::default()),
        serde_json::Value::Object(_) => {
            serde_json::from_value(event).map_err(|e| RedriveError::InvalidRequest(e.to_string()))
        }
        other => Err(RedriveError::InvalidRequest(format!(
            "expected a JSON object, got {other}"
        ))),
    }
}

fn describe(summary: &RedriveSummary, stopped_early: bool) -> String {
    if !summary.tasks.is_empty() {
        return format!(
            "SQS started moving the dead letters back (task {}); invoke with {{\"action\": \"status\"}} to follow it",
            summary.tasks[0].task_handle.as_deref().unwrap_or("?")
        );
    }
    match (summary.moved, summary.remaining, stopped_early) {
        (0, 0, _) if summary.failed.is_empty() => "the dead-letter queue is empty; nothing to redrive".to_owned(),
        (moved, 0, _) => format!("moved {moved} message(s) back; the dead-letter queue is empty"),
        (moved, remaining, true) => {
            format!("moved {moved} message(s) back; {remaining} remain: invoke again to continue")
        }
        (moved, remaining, false) => format!(
            "moved {moved} message(s) back; {remaining} remain (in flight or not yet visible): invoke again in a minute"
        ),
    }
}

#[cfg(test)]
mod tests;
