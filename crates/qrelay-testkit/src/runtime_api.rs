//! A stand-in for the Lambda Runtime API on loopback: hands queued events to the function process
//! (`GET /2018-06-01/runtime/invocation/next`) and records when and what it answers (`.../response`,
//! `.../error`, `/runtime/init/error`). Enough for `lambda_runtime` to run a real binary as Lambda would: the
//! benchmarks time release binaries through it, and the deploy rehearsal runs the functions a stack created.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc};

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    pub at: Instant,
    pub ok: bool,
    pub body: Bytes,
}

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<mpsc::Receiver<(String, serde_json::Value)>>>,
    answers: mpsc::Sender<Answer>,
    function_arn: Arc<str>,
}

/// A running stand-in, stopped when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::Sender<(String, serde_json::Value)>,
    answers: mpsc::Receiver<Answer>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts a stand-in that tells the function it runs as a function named `bench`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_as("arn:aws:lambda:us-east-1:123456789012:function:bench").await
    }

    /// Starts a stand-in that tells the function (in `Lambda-Runtime-Invoked-Function-Arn`) it runs as
    /// `function_arn`.
    pub async fn start_as(function_arn: &str) -> anyhow::Result<Self> {
        let (events_tx, events_rx) = mpsc::channel(2048);
        let (answers_tx, answers_rx) = mpsc::channel(2048);
        let shared = Shared {
            events: Arc::new(Mutex::new(events_rx)),
            answers: answers_tx,
            function_arn: function_arn.into(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            events: events_tx,
            answers: answers_rx,
            server,
        })
    }

    /// Queues an invocation; returns its request id.
    pub async fn invoke(&self, event: serde_json::Value) -> anyhow::Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.events.send((id.clone(), event)).await?;
        Ok(id)
    }

    /// Waits for the next answer.
    pub async fn answer(&mut self) -> anyhow::Result<Answer> {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(30), self.answers.recv()).await?;
        answer.ok_or_else(|| anyhow::anyhow!("the runtime API stand-in stopped"))
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    let Some((id, event)) = shared.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", shared.function_arn.to_string());
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (headers, event.to_string()).into_response()
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared
        .answers
        .send(Answer {
            request_id: id,
            at: Instant::now(),
            ok: true,
            body,
        })
        .await;
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let _ = shared
        .answers
        .send(Answer {
            request_id: id,
            at: Instant::now(),
            ok: false,
            body,
        })
        .await;
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let _ = shared
        .answers
        .send(Answer {
            request_id: "init".into(),
            at: Instant::now(),
            ok: false,
            body,
        })
        .await;
    StatusCode::ACCEPTED
}
