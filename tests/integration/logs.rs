//! What the real function binaries log (intake, consumer, the console, which reads held questions' text, and the
//! digest, which mails them), at every level Lambda's logging controls can set: never the chat token,
//! never the student's address, user agent or cookie, never the question's text or nickname. At TRACE the SDK
//! connector's buffered answer from Secrets Manager (the token) and `lambda_runtime`'s raw API Gateway event (the
//! address and user agent) used to reach the log.

use qrelay_testkit::event_source::SqsPoller;
use qrelay_testkit::moto::Moto;
use qrelay_testkit::rehearsal::functions::RunningFunction;
use qrelay_testkit::world::{self, World, WorldSpec};
use rocketchat_fake::FakeRocketChat;

use crate::support::binaries::{build, env, lambda, target};

/// What must never be in a log: the bot's token, and everything identifying in `events/intake-post-json.json`.
const NEEDLES: [(&str, &str); 7] = [
    ("the chat token", rocketchat_fake::TOKEN),
    ("the student's address", "203.0.113.42"),
    ("the student's user agent", "iPhone"),
    ("the student's browser", "Mozilla"),
    ("the student's cookie", "session=abc"),
    ("the question's text", "所有権と借用"),
    ("the nickname", "たろう"),
];

#[tokio::test]
async fn no_log_level_reveals_a_token_a_student_or_a_question() {
    // Arrange: the AWS world in moto, the chat, and the real intake and consumer binaries.
    build(&["intake", "consumer", "console", "qrelay-digest"]);
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let world = World::create(&sdk, &WorldSpec::named("questions"))
        .await
        .expect("world");
    let secret = world::create_secret(&sdk, "qrelay/chat", &world::rocketchat_secret())
        .await
        .expect("secret");
    let table = world::create_control_table(&sdk, "qrelay-control")
        .await
        .expect("table");
    let store = qrelay::control::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
    let chat = FakeRocketChat::start().await;
    chat.add_channel("rust-101");
    // The digest's sender, verified as the instructor would by clicking SES's link.
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity("teacher@example.com")
        .send()
        .await
        .expect("identity");
    let poller = SqsPoller::new(world.sqs.clone(), &world.queue_url, &world.queue_arn);
    let work = std::env::temp_dir().join(format!("qrelay-logs-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let target = target();
    let chat_url = chat.url();

    for level in ["TRACE", "DEBUG", "INFO"] {
        // Act: a question in through intake, out through the consumer.
        let mut intake = RunningFunction::start(
            &target.join("intake"),
            &format!("intake-{level}"),
            &env(&[
                ("TOPIC_ARN", &world.topic_arn),
                ("ROOMS", "general,rust-101"),
                ("CONTROL_TABLE", &table),
            ]),
            &lambda("intake", level),
            &moto.endpoint,
            &work,
        )
        .await
        .expect("intake starts");
        let event: serde_json::Value =
            serde_json::from_str(&qrelay_testkit::samples::event("intake-post-json.json")).expect("event");
        let answer = intake.invoke(event).await.expect("intake answers");
        assert!(answer.ok, "{level}: {:?}", answer.body);
        assert_eq!(answer.body["statusCode"], 202, "{level}: {:?}", answer.body);

        let mut consumer = RunningFunction::start(
            &target.join("consumer"),
            &format!("consumer-{level}"),
            &env(&[
                ("ROOMS", "general,rust-101"),
                ("CHAT_URL", &chat_url),
                ("CHAT_SECRET_ID", &secret),
                ("QUEUE_URL", &world.queue_url),
                ("DEAD_LETTER_QUEUE_URL", &world.dlq_url),
                ("CONTROL_TABLE", &table),
            ]),
            &lambda("consumer", level),
            &moto.endpoint,
            &work,
        )
        .await
        .expect("consumer starts");
        let batch = poller.receive(60, 1).await.expect("receive");
        assert_eq!(batch.records.len(), 1, "{level}: the question is queued");
        let answer = consumer
            .invoke(serde_json::to_value(&batch).expect("event"))
            .await
            .expect("consumer answers");
        assert!(answer.ok, "{level}: {:?}", answer.body);
        assert_eq!(
            answer.body["batchItemFailures"],
            serde_json::json!([]),
            "{level}: posted: {:?}",
            answer.body
        );
        poller
            .delete_succeeded(&batch, &serde_json::from_value(answer.body).expect("response"))
            .await
            .expect("delete");

        // The console shows a held question (with the student's text and nickname) and the instructor rejects it.
        let document = serde_json::json!({
            "v": 1, "id": uuid::Uuid::new_v4(), "room": "rust-101", "text": "所有権と借用の違いは？（保留）",
            "nickname": "たろう", "submitted_at": jiff::Timestamp::now(),
        });
        let held = qrelay::domain::Question::try_from(
            qrelay::domain::QuestionMessage::from_json(&document.to_string()).expect("document"),
        )
        .expect("question");
        let now = jiff::Timestamp::now();
        qrelay::control::ControlStore::hold(
            &store,
            &held,
            qrelay::control::HoldReason::Review,
            now,
            now.checked_add(std::time::Duration::from_secs(3600)).expect("t"),
        )
        .await
        .expect("hold");
        let sample: serde_json::Value =
            serde_json::from_str(&qrelay_testkit::samples::event("console-overview.json")).expect("event");
        let claims = &sample["requestContext"]["authorizer"]["jwt"]["claims"];
        let mut console = RunningFunction::start(
            &target.join("console"),
            &format!("console-{level}"),
            &env(&[
                ("ROOMS", "general,rust-101"),
                ("CHAT_KIND", "webhook"),
                ("CONTROL_TABLE", &table),
                ("TOPIC_ARN", &world.topic_arn),
                ("QUEUE_URL", &world.queue_url),
                ("QUEUE_ARN", &world.queue_arn),
                ("DEAD_LETTER_QUEUE_URL", &world.dlq_url),
                ("DEAD_LETTER_QUEUE_ARN", &world.dlq_arn),
                ("COGNITO_ISSUER", claims["iss"].as_str().expect("iss")),
                ("COGNITO_CLIENT_ID", claims["aud"].as_str().expect("aud")),
            ]),
            &lambda("console", level),
            &moto.endpoint,
            &work,
        )
        .await
        .expect("console starts");
        let overview = console.invoke(sample.clone()).await.expect("console answers");
        assert_eq!(overview.body["statusCode"], 200, "{level}: {:?}", overview.body);
        assert!(
            overview.body["body"]
                .as_str()
                .is_some_and(|b| b.contains("所有権と借用") && b.contains("たろう")),
            "{level}: the console showed the held question (so its log is worth searching)"
        );
        let mut reject = sample.clone();
        let path = format!("/instructor/api/rooms/rust-101/held/{}/reject", held.id);
        reject["rawPath"] = path.clone().into();
        reject["requestContext"]["http"]["method"] = "POST".into();
        reject["requestContext"]["http"]["path"] = path.into();
        let rejected = console.invoke(reject).await.expect("console answers");
        assert_eq!(rejected.body["statusCode"], 200, "{level}: {:?}", rejected.body);

        // After class: the digest reads the archive and the chat, and mails the question's text through SES.
        let mut digest = RunningFunction::start(
            &target.join("digest"),
            &format!("digest-{level}"),
            &env(&[
                ("ROOMS", "general,rust-101"),
                ("CONTROL_TABLE", &table),
                ("CHAT_URL", &chat_url),
                ("CHAT_SECRET_ID", &secret),
                ("DIGEST_EMAIL", "teacher@example.com"),
            ]),
            &lambda("digest", level),
            &moto.endpoint,
            &work,
        )
        .await
        .expect("digest starts");
        let mailed = digest.invoke(serde_json::json!({})).await.expect("digest answers");
        assert!(mailed.ok && mailed.body["mailed"] == true, "{level}: {:?}", mailed.body);

        // Assert: the logs say what happened, at the level asked for, and nothing that must stay out.
        for function in [&intake, &consumer, &console, &digest] {
            let log = std::fs::read_to_string(function.log_path()).expect("log");
            assert!(
                log.contains("\"level\":\"INFO\""),
                "{level}: {} logged nothing:\n{log}",
                function.logical_id
            );
            if level != "INFO" {
                assert!(
                    log.contains("\"level\":\"DEBUG\""),
                    "{level}: {} logs at the level asked for",
                    function.logical_id
                );
            }
            for (what, needle) in NEEDLES {
                if let Some(at) = log.find(needle) {
                    let line = log[..at].rfind('\n').map_or(0, |n| n + 1);
                    let end = log[at..].find('\n').map_or(log.len(), |n| at + n);
                    panic!(
                        "{level}: {}'s log holds {what}: {}",
                        function.logical_id,
                        &log[line..end.min(line + 600)]
                    );
                }
            }
        }
    }
    assert_eq!(chat.messages().len(), 3, "each level's question posted once");
    let _ = std::fs::remove_dir_all(work);
}
