//! The consumer end to end: questions published through SNS into SQS (moto), delivered by the real handler and
//! the real Rocket.Chat adapter to the Rocket.Chat fake, through outages, duplicates, rate limits and the
//! dead-letter queue. Every assertion is on what the fake received or what the queues hold.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use qrelay::chat::rocketchat::message_id;
use rocketchat_fake::Mode;

use crate::support::pipeline::{MAX_RECEIVE_COUNT, Pipeline};

/// The deadline Lambda gives an invocation of the consumer (its timeout in template.yaml).
fn in_thirty_seconds() -> SystemTime {
    SystemTime::now() + qrelay_testkit::event_source::FUNCTION_TIMEOUT
}

#[tokio::test]
async fn a_hundred_questions_are_each_posted_once_in_their_channels() {
    let pipeline = Pipeline::start().await;
    let mut expected = Vec::new();
    for n in 0..100 {
        let room = if n % 3 == 0 { "rust-101" } else { "general" };
        expected.push((pipeline.publish(room, &format!("質問 {n}")).await, room));
    }

    pipeline.drain(40).await;

    let messages = pipeline.chat.messages();
    assert_eq!(messages.len(), 100, "every question posted");
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 100, "none posted twice");
    for (id, room) in expected {
        let message = messages
            .iter()
            .find(|m| m.id == message_id(id))
            .unwrap_or_else(|| panic!("{id} missing"));
        let channel = if room == "rust-101" { "rust-course" } else { "general" };
        assert_eq!(message.channel, channel, "{id} in its room's channel");
    }
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (0, 0),
        "the queue is empty afterwards"
    );
}

#[tokio::test]
async fn during_an_outage_questions_wait_with_growing_delays_and_then_arrive_once() {
    let pipeline = Pipeline::start().await;
    pipeline.chat.set_mode(Mode::Down);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            pipeline
                .publish("general", &format!("asked during the outage {n}"))
                .await,
        );
    }

    // Three rounds of delivery attempts while the chat is down.
    let mut previous_max = Duration::ZERO;
    for round in 1..=3u32 {
        let poll = pipeline.poll().await;
        assert_eq!(
            (poll.received, poll.failed),
            (5, 5),
            "round {round}: all received, all failed"
        );
        let delays = pipeline.take_delays();
        assert_eq!(delays.len(), 5, "round {round}: every message got a retry delay");
        let nominal = Duration::from_secs(10 * 2u64.pow(round - 1));
        for delay in &delays {
            assert!(
                *delay >= nominal / 2 && *delay <= nominal,
                "round {round}: {delay:?} outside [{:?}, {nominal:?}]",
                nominal / 2
            );
        }
        let max = delays.iter().max().copied().unwrap_or_default();
        assert!(
            max > previous_max,
            "round {round}: delays grow ({max:?} after {previous_max:?})"
        );
        previous_max = max;
        assert_eq!(
            pipeline.poll().await.received,
            0,
            "round {round}: hidden while backing off"
        );
        assert_eq!(
            pipeline.depth(&pipeline.world.queue_url).await,
            (0, 5),
            "round {round}: none lost"
        );
        pipeline.fast_forward().await;
    }
    assert!(pipeline.chat.messages().is_empty());

    pipeline.chat.set_mode(Mode::Up);
    pipeline.drain(5).await;

    let posted: Vec<String> = pipeline.chat.messages().into_iter().map(|m| m.id).collect();
    let mut expected: Vec<String> = ids.into_iter().map(message_id).collect();
    let mut got = posted.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "each question exactly once after recovery");
    assert_eq!(pipeline.depth(&pipeline.world.queue_url).await, (0, 0));
    assert_eq!(pipeline.depth(&pipeline.world.dlq_url).await, (0, 0));
}

#[tokio::test]
async fn the_same_record_handled_twice_posts_one_message() {
    let pipeline = Pipeline::start().await;
    pipeline.publish("general", "duplicate me").await;
    let event = pipeline.receive().await;

    let first = pipeline.consumer.handle(event.clone(), in_thirty_seconds()).await;
    let second = pipeline.consumer.handle(event, in_thirty_seconds()).await;

    assert!(
        first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty(),
        "both succeed"
    );
    assert_eq!(pipeline.chat.messages().len(), 1, "one chat message");
}

#[tokio::test]
async fn the_same_record_handled_twice_concurrently_posts_one_message() {
    let pipeline = Pipeline::start().await;
    for n in 0..5 {
        pipeline.publish("rust-101", &format!("concurrent {n}")).await;
    }
    let event = pipeline.receive().await;
    assert_eq!(event.records.len(), 5);

    let (a, b, c) = tokio::join!(
        pipeline.consumer.handle(event.clone(), in_thirty_seconds()),
        pipeline.consumer.handle(event.clone(), in_thirty_seconds()),
        pipeline.consumer.handle(event, in_thirty_seconds())
    );

    for (n, response) in [a, b, c].iter().enumerate() {
        assert!(
            response.batch_item_failures.is_empty(),
            "invocation {n} succeeds: {response:?}"
        );
    }
    assert_eq!(pipeline.chat.messages().len(), 5, "five questions, five messages");
}

#[tokio::test]
async fn a_reply_lost_to_a_timeout_does_not_post_twice() {
    let pipeline = Pipeline::start_with_timeout(Duration::from_millis(300)).await;
    // A first question while the chat is fast, so the room id is already known when it turns slow.
    pipeline.publish("general", "warm up").await;
    pipeline.drain(3).await;
    pipeline.publish("general", "slow chat").await;
    pipeline.chat.set_mode(Mode::Slow(Duration::from_millis(800)));

    let poll = pipeline.poll().await;
    assert_eq!(poll.failed, 1, "the reply timed out and could not be confirmed");
    assert_eq!(pipeline.chat.messages().len(), 2, "yet the chat stored it");

    pipeline.chat.set_mode(Mode::Up);
    pipeline.fast_forward().await;
    let poll = pipeline.poll().await;
    assert_eq!(
        (poll.received, poll.failed),
        (1, 0),
        "the retry finds it already posted"
    );
    assert_eq!(
        pipeline.chat.messages().len(),
        2,
        "still one message for the slow question"
    );
}

#[tokio::test]
async fn a_record_failing_thirty_times_lands_in_the_dead_letter_queue_intact() {
    let pipeline = Pipeline::start().await;
    pipeline.chat.set_mode(Mode::Failing);
    let id = pipeline.publish("general", "never delivered").await;

    let mut receives = 0;
    for _ in 0..=MAX_RECEIVE_COUNT {
        let event = pipeline.receive().await;
        if event.records.is_empty() {
            break;
        }
        let body = event.records[0].body.clone().expect("body");
        assert!(body.contains(&id.to_string()));
        receives += 1;
        assert_eq!(pipeline.deliver(event).await.failed, 1);
        pipeline.fast_forward().await;
    }

    assert_eq!(
        receives, MAX_RECEIVE_COUNT,
        "30 receives, then moto's redrive policy moves it"
    );
    let dead = pipeline.dead_letters().await;
    assert_eq!(dead.len(), 1, "in the DLQ");
    let envelope: serde_json::Value = serde_json::from_str(dead[0].body.as_deref().expect("body")).expect("envelope");
    let document =
        qrelay::domain::QuestionMessage::from_json(envelope["Message"].as_str().expect("Message")).expect("question");
    assert_eq!(
        (document.id, document.text.as_str()),
        (id, "never delivered"),
        "body intact"
    );
    assert!(pipeline.chat.messages().is_empty());
    assert_eq!(pipeline.depth(&pipeline.world.queue_url).await, (0, 0));
}

#[tokio::test]
async fn a_rate_limit_is_honoured_no_post_before_the_reset() {
    let pipeline = Pipeline::start().await;
    let reset = SystemTime::now() + Duration::from_secs(2);
    pipeline.chat.rate_limit_until(reset);
    pipeline.publish("general", "first").await;

    let poll = pipeline.poll().await;
    assert_eq!(poll.failed, 1, "429 is a retry");
    let delays = pipeline.take_delays();
    let until_reset = reset.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(
        delays[0] >= until_reset,
        "waits at least until the reset: {:?} < {until_reset:?}",
        delays[0]
    );

    // A second question arrives before the reset: the consumer does not even try.
    pipeline.publish("general", "second").await;
    assert_eq!(pipeline.poll().await.failed, 1);
    let posts_before_reset = pipeline
        .chat
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/chat.sendMessage" && r.at < reset)
        .count();
    assert_eq!(posts_before_reset, 1, "only the post that discovered the limit");

    tokio::time::sleep(reset.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(100)).await;
    pipeline.fast_forward().await;
    pipeline.drain(5).await;
    assert_eq!(pipeline.chat.messages().len(), 2, "both posted after the reset");
    let early = pipeline
        .chat
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/chat.sendMessage" && r.status == 200 && r.at < reset)
        .count();
    assert_eq!(early, 0, "no successful post before the reset");
}

#[tokio::test]
async fn mentions_and_links_in_a_question_neither_ping_nor_preview() {
    let pipeline = Pipeline::start().await;
    pipeline
        .publish(
            "general",
            "@all @here 助けて @taro\n#general [click](https://evil.example) https://example.com",
        )
        .await;

    pipeline.drain(3).await;

    let messages = pipeline.chat.messages();
    assert_eq!(messages.len(), 1, "posted, not refused for @all");
    let message = &messages[0];
    assert!(
        message.mentions.is_empty(),
        "no mention detected: {:?}",
        message.mentions
    );
    assert_eq!(message.preview_urls, Some(vec![]), "previews explicitly off");
    assert!(!message.msg.contains("](h"), "link syntax broken: {}", message.msg);
    assert!(message.msg.contains("助けて"), "the text is still there");
}

#[tokio::test]
async fn a_rotated_token_is_read_again_from_secrets_manager() {
    let pipeline = Pipeline::start().await;
    pipeline.publish("general", "before rotation").await;
    pipeline.drain(3).await;

    pipeline.chat.rotate_token("rotated-token");
    let secret = serde_json::json!({ "user_id": rocketchat_fake::USER_ID, "token": "rotated-token" });
    pipeline
        .secrets
        .put_secret_value()
        .secret_id(&pipeline.secret_id)
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("rotate");
    pipeline.publish("general", "after rotation").await;
    let poll = pipeline.poll().await;

    assert_eq!(
        (poll.received, poll.failed),
        (1, 0),
        "posted with the new token on the first attempt"
    );
    assert_eq!(pipeline.chat.messages().len(), 2);
}

#[tokio::test]
async fn a_wrong_token_keeps_questions_waiting_not_lost() {
    let pipeline = Pipeline::start().await;
    pipeline.chat.rotate_token("nobody-has-this");
    pipeline.publish("general", "a").await;
    pipeline.publish("general", "b").await;

    let poll = pipeline.poll().await;

    assert_eq!((poll.received, poll.failed), (2, 2));
    let sends = pipeline.chat.requests().iter().filter(|r| r.status == 401).count();
    assert!(
        sends <= 2,
        "one attempt and one retry with the re-read secret, not one per message: {sends}"
    );
    assert_eq!(
        pipeline.depth(&pipeline.world.queue_url).await,
        (0, 2),
        "both wait in the queue"
    );
}

#[tokio::test]
async fn the_sample_events_are_handled_as_documented() {
    let pipeline = Pipeline::start().await;
    let cases: [(&str, &str, usize, usize); 3] = [
        (
            "consumer-sns-envelopes.json",
            include_str!("../../events/consumer-sns-envelopes.json"),
            2,
            0,
        ),
        (
            "consumer-raw-delivery.json",
            include_str!("../../events/consumer-raw-delivery.json"),
            1,
            0,
        ),
        (
            "consumer-malformed-record.json",
            include_str!("../../events/consumer-malformed-record.json"),
            1,
            1,
        ),
    ];
    for (name, json, posted, dead_lettered) in cases {
        let before = pipeline.chat.messages().len();
        let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(json).expect(name);

        let response = pipeline.consumer.handle(event, in_thirty_seconds()).await;

        assert!(
            response.batch_item_failures.is_empty(),
            "{name}: nothing to retry: {response:?}"
        );
        assert_eq!(pipeline.chat.messages().len() - before, posted, "{name}: posted");
        let dead = pipeline.dead_letters().await;
        assert_eq!(dead.len(), dead_lettered, "{name}: dead-lettered at once");
        if let Some(dead) = dead.first() {
            assert_eq!(
                dead.body.as_deref(),
                Some("this is not a question"),
                "{name}: body intact"
            );
            let reason = dead
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("qrelay-dead-letter-reason"));
            assert!(
                reason
                    .and_then(|r| r.string_value.as_deref())
                    .is_some_and(|r| r.contains("not a qrelay question")),
                "{name}: reason {reason:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_version_1_question_with_a_field_this_consumer_does_not_know_is_delivered() {
    // What a newer intake may publish while an older consumer still runs, during a deploy.
    let pipeline = Pipeline::start().await;
    let question = qrelay_testkit::samples::question("general", "a field from the future");
    let mut document: serde_json::Value =
        serde_json::from_str(&qrelay::domain::QuestionMessage::from(&question).to_json()).expect("json");
    document["priority"] = serde_json::json!("high");
    pipeline
        .world
        .sns
        .publish()
        .topic_arn(&pipeline.world.topic_arn)
        .message(document.to_string())
        .send()
        .await
        .expect("publish");

    pipeline.drain(5).await;

    let messages = pipeline.chat.messages();
    assert_eq!(messages.len(), 1, "delivered, not dead-lettered: {messages:?}");
    assert_eq!(messages[0].id, message_id(question.id));
    assert!(
        messages[0].msg.contains("a field from the future"),
        "{}",
        messages[0].msg
    );
    assert!(pipeline.dead_letters().await.is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn a_slow_chat_gets_a_partial_batch_answered_before_the_deadline_and_every_question_once() {
    // Arrange: the chat stores each post but answers every call after 1.5 s, the consumer's chat timeout is 2 s,
    // and the invocation has 14 s (the 3 s, 4 s and 30 s, scaled down). Ten questions of one room, posted
    // one after another, would need 16.5 s, so Lambda would kill the invocation and every record would come back.
    let pipeline = Pipeline::start_with_timeout(Duration::from_secs(2)).await;
    let mut ids = HashSet::new();
    for n in 0..10 {
        ids.insert(message_id(pipeline.publish("general", &format!("slow chat {n}")).await));
    }
    pipeline.chat.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let event = pipeline.receive().await;
    assert_eq!(event.records.len(), 10, "one batch of ten");

    // Act
    let started = std::time::Instant::now();
    let response = pipeline
        .consumer
        .handle(event.clone(), SystemTime::now() + Duration::from_secs(14))
        .await;
    let took = started.elapsed();

    // Assert: answered in time, with the records it had no time for reported failed, and then each question
    // posted exactly once when they come back.
    assert!(
        took < Duration::from_secs(14),
        "the handler answered after its deadline: {took:?}"
    );
    let failed = response.batch_item_failures.len();
    assert!(
        (1..10).contains(&failed),
        "a partial batch: some posted, the rest left for later ({failed} failed)"
    );
    pipeline
        .poller
        .delete_succeeded(&event, &response)
        .await
        .expect("delete");
    assert_eq!(
        pipeline.chat.messages().len(),
        10 - failed,
        "the ones not failed are posted"
    );
    pipeline.chat.set_mode(Mode::Up);
    pipeline.fast_forward().await;
    pipeline.drain(10).await;
    let messages = pipeline.chat.messages();
    let posted: HashSet<String> = messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        messages.len(),
        10,
        "none posted twice: {:?}",
        messages.iter().map(|m| &m.id).collect::<Vec<_>>()
    );
    assert_eq!(posted, ids, "every question posted");
    assert!(pipeline.dead_letters().await.is_empty(), "nothing dead-lettered");
}
