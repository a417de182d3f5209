//! The local runner over HTTP: its in-process queue dead-letters and redrives like SQS, its instructor page
//! controls work, and with `AWS_ENDPOINT_URL` it runs on moto's SNS and SQS instead.

use std::time::{Duration, Instant};

use qrelay_local::{LocalConfig, Running};
use serde_json::{Value, json};

use qrelay_testkit::moto::Moto;

async fn ask(running: &Running, text: &str) -> String {
    let response = qrelay::chat::http_client(std::time::Duration::from_secs(30))
        .unwrap()
        .post(format!("{}/questions", running.url()))
        .json(&json!({ "text": text, "room": "rust-101" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn admin(running: &Running, path: &str, body: Value) -> Value {
    let response = qrelay::chat::http_client(std::time::Duration::from_secs(30))
        .unwrap()
        .post(format!("{}/admin/{path}", running.url()))
        .json(&body)
        .send()
        .await;
    let response = response.expect("admin call");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

async fn state(running: &Running) -> Value {
    qrelay::chat::http_client(Duration::from_secs(30))
        .unwrap()
        .get(format!("{}/admin/state.json", running.url()))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json")
}

/// Waits until `check` holds for the instructor page's state.
async fn eventually(running: &Running, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = state(running).await;
        if check(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_long_outage_dead_letters_locally_and_the_redrive_brings_the_question_back_once() {
    let running = qrelay_local::start(LocalConfig {
        max_receive_count: 3,
        ..LocalConfig::for_tests()
    })
    .await
    .expect("start");

    admin(&running, "outage", json!({ "down": true })).await;
    let id = ask(&running, "outage question").await;
    eventually(&running, "dead-lettering after 3 receives", |s| {
        s["depths"]["dead_letters"] == 1
    })
    .await;
    assert_eq!(running.system.board.len(), 0);

    let dry = admin(&running, "redrive", json!({ "dry_run": true })).await;
    assert_eq!(dry["would_move"]["count"], 1, "{dry}");
    admin(&running, "outage", json!({ "down": false })).await;
    let summary = admin(&running, "redrive", json!({})).await;
    assert_eq!(summary["moved"], 1, "{summary}");

    eventually(&running, "delivery after the redrive", |s| s["on_board"] == 1).await;
    let board = running.system.board.messages_after(0);
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].id, id);
    running.stop().await;
}

#[tokio::test]
async fn retry_now_skips_the_rest_of_the_backoff() {
    let config = LocalConfig {
        backoff: qrelay::consumer::Backoff {
            base: Duration::from_secs(600),
            cap: Duration::from_secs(600),
        },
        ..LocalConfig::for_tests()
    };
    let running = qrelay_local::start(config).await.expect("start");
    admin(&running, "outage", json!({ "down": true })).await;
    ask(&running, "waits ten minutes").await;
    eventually(&running, "a failed attempt", |s| s["depths"]["in_flight"] == 1).await;

    admin(&running, "outage", json!({ "down": false })).await;
    qrelay::chat::http_client(std::time::Duration::from_secs(30))
        .unwrap()
        .post(format!("{}/admin/retry-now", running.url()))
        .send()
        .await
        .expect("retry now");

    eventually(&running, "delivery without waiting ten minutes", |s| s["on_board"] == 1).await;
    running.stop().await;
}

#[tokio::test]
async fn with_aws_endpoint_url_the_local_runner_uses_sns_and_sqs() {
    let moto = Moto::start().await;
    let config = LocalConfig {
        aws_endpoint: Some(moto.endpoint.clone()),
        ..LocalConfig::for_tests()
    };
    let running = qrelay_local::start(config).await.expect("start on moto");
    assert!(running.system.intake_uses_aws());

    let id = ask(&running, "through moto").await;

    eventually(&running, "delivery through SNS and SQS", |s| s["on_board"] == 1).await;
    assert_eq!(running.system.board.messages_after(0)[0].id, id);
    let sdk = moto.sdk_config().await;
    let topics = aws_sdk_sns::Client::new(&sdk)
        .list_topics()
        .send()
        .await
        .expect("topics")
        .topics
        .unwrap_or_default();
    assert!(
        topics
            .iter()
            .any(|t| t.topic_arn().is_some_and(|a| a.ends_with(":qrelay-questions"))),
        "{topics:?}"
    );
    running.stop().await;
}
