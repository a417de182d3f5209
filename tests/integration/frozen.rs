//! A consumer frozen between invocations, as Lambda freezes it, while the chat side forgets its idle keep-alive
//! connection (a load balancer's idle timeout, or the server's own racing the next request): the real consumer
//! binary, stopped with `SIGSTOP` and continued, must post the next question on its first attempt rather than
//! fail on the dead connection and wait out a backoff as if the chat were down. And after a freeze longer than
//! the client's pool keeps idle connections, it must not even try the old one.

use std::time::Duration;

use qrelay::chat::rocketchat::message_id;
use qrelay_testkit::rehearsal::functions::RunningFunction;

use crate::support::binaries::{build, env, lambda, target};
use crate::support::pipeline::Pipeline;

#[tokio::test]
async fn a_thawed_consumer_posts_on_its_first_attempt_though_the_chat_dropped_its_connection() {
    // Arrange: the pipeline in moto, the chat fake, and the real consumer binary, which posts a first question
    // and so keeps a connection to the chat in its pool.
    build(&["consumer"]);
    let pipeline = Pipeline::start().await;
    let work = std::env::temp_dir().join(format!("qrelay-frozen-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let chat_url = pipeline.chat.url();
    let mut consumer = RunningFunction::start(
        &target().join("consumer"),
        "consumer",
        &env(&[
            ("ROOMS", "general,rust-101=rust-course"),
            ("CHAT_URL", &chat_url),
            ("CHAT_SECRET_ID", &pipeline.secret_id),
            ("QUEUE_URL", &pipeline.world.queue_url),
            ("DEAD_LETTER_QUEUE_URL", &pipeline.world.dlq_url),
        ]),
        &lambda("consumer", "INFO"),
        &pipeline._moto.endpoint,
        &work,
    )
    .await
    .expect("the consumer starts");
    let before = pipeline.publish("general", "before the break").await;
    let batch = pipeline.receive().await;
    let answer = consumer
        .invoke(serde_json::to_value(&batch).expect("event"))
        .await
        .expect("the consumer answers");
    assert_eq!(
        answer.body["batchItemFailures"],
        serde_json::json!([]),
        "{:?}",
        answer.body
    );
    pipeline
        .poller
        .delete_succeeded(&batch, &serde_json::from_value(answer.body).expect("response"))
        .await
        .expect("delete");

    // Act: the chat side forgets connections idle for 1 s; the consumer is frozen for 3 s, then a question comes.
    pipeline
        .chat
        .forget_idle_connections_after(Some(Duration::from_secs(1)));
    consumer.freeze().expect("SIGSTOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    consumer.thaw().expect("SIGCONT");
    let after = pipeline.publish("general", "after the break").await;
    let batch = pipeline.receive().await;
    assert_eq!(batch.records.len(), 1, "the second question is queued");
    assert_eq!(
        batch.records[0]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("1"),
        "this is the question's first attempt"
    );
    let answer = consumer
        .invoke(serde_json::to_value(&batch).expect("event"))
        .await
        .expect("the consumer answers");

    // Assert: posted on that first attempt, after running into the dropped connection; each question once.
    assert_eq!(
        answer.body["batchItemFailures"],
        serde_json::json!([]),
        "the first attempt after the freeze must post, not report the chat down: {:?}\n{}",
        answer.body,
        consumer.log_tail(2)
    );
    assert!(
        pipeline.chat.forgotten_connection_resets() >= 1,
        "the consumer must have reused the connection the chat dropped, or this test shows nothing"
    );

    // And a longer freeze, past the pool's idle timeout: the consumer opens a new connection without trying the
    // one it had (reqwest's default pool kept idle connections for 90 s, far longer than servers do).
    let resets = pipeline.chat.forgotten_connection_resets();
    consumer.freeze().expect("SIGSTOP");
    tokio::time::sleep(qrelay::chat::POOL_IDLE_TIMEOUT + Duration::from_secs(1)).await;
    consumer.thaw().expect("SIGCONT");
    let later = pipeline.publish("general", "after a longer break").await;
    let batch = pipeline.receive().await;
    let answer = consumer
        .invoke(serde_json::to_value(&batch).expect("event"))
        .await
        .expect("the consumer answers");
    assert_eq!(
        answer.body["batchItemFailures"],
        serde_json::json!([]),
        "{:?}",
        answer.body
    );
    assert_eq!(
        pipeline.chat.forgotten_connection_resets(),
        resets,
        "no request went out on a connection idle for longer than the pool keeps them"
    );

    let messages = pipeline.chat.messages();
    for id in [before, after, later] {
        let posted = messages.iter().filter(|m| m.id == message_id(id)).count();
        assert_eq!(posted, 1, "question {id} posted once: {messages:#?}");
    }
    let _ = std::fs::remove_dir_all(work);
}
