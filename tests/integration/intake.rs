//! The intake handler with the real SNS adapter, against moto: what the student sent is exactly what arrives in
//! the queue subscribed to the topic, and nothing that identifies the student comes with it.

use std::sync::Arc;

use qrelay::domain::{Limits, QuestionMessage, Rooms};
use qrelay::intake::Intake;
use qrelay::publish::SnsPublisher;
use qrelay_testkit::moto::Moto;
use qrelay_testkit::world::{World, WorldSpec};

#[tokio::test]
async fn a_question_arrives_in_the_subscribed_queue_exactly_as_published() {
    // Arrange: a topic, and a queue subscribed to it as the template wires them.
    let moto = Moto::start().await;
    let sdk = moto.sdk_config().await;
    let world = World::create(&sdk, &WorldSpec::named("questions"))
        .await
        .expect("world");
    let (sqs, queue_url) = (world.sqs.clone(), world.queue_url.clone());
    let intake = Intake::new(
        Rooms::parse("general,rust-101").expect("rooms"),
        Limits::default(),
        Arc::new(SnsPublisher::new(world.sns.clone(), world.topic_arn.clone())),
    );
    let request = lambda_http::request::from_str(include_str!("../../events/intake-post-json.json")).expect("event");

    // Act
    let response = intake.handle(request).await;

    // Assert: acknowledged, and the queue holds exactly the published document.
    assert_eq!(response.status(), 202, "{:?}", response.body());
    let answered: serde_json::Value = serde_json::from_slice(response.body().as_ref()).expect("json");
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "exactly one message in the queue");
    let body = messages[0].body.as_deref().expect("body");
    let envelope: serde_json::Value = serde_json::from_str(body).expect("SNS envelope");
    assert_eq!(envelope["Type"], "Notification");
    let document = QuestionMessage::from_json(envelope["Message"].as_str().expect("Message")).expect("a question");
    assert_eq!(
        document.id.to_string(),
        answered["id"].as_str().expect("id"),
        "the id the student was given"
    );
    assert_eq!(document.room, "rust-101");
    assert_eq!(
        document.text,
        "所有権と借用の違いがまだよくわかりません。@all 教えてください"
    );
    assert_eq!(document.nickname.as_deref(), Some("たろう"));
    assert_eq!(
        envelope["MessageAttributes"]["room"]["Value"], "rust-101",
        "room attribute for filter policies"
    );
    for needle in ["203.0.113.42", "iPhone", "Mozilla", "session=abc", "JKJaXmPLvHcESHA"] {
        assert!(!body.contains(needle), "the queued message leaks {needle:?}: {body}");
    }
}
