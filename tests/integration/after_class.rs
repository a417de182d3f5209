//! After class and when things break, end to end against moto (DynamoDB, SES, SNS, SQS, Secrets Manager), the
//! Rocket.Chat fake and the Twilio fake: a class's questions delivered by the real consumer and archived, the
//! class's reactions on the fake, the digest in order mailed through SES (on schedule, and on the console's request
//! through SNS), the export read back, and the phone
//! rotation driven by alarm notifications, ticks and signed key presses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use qrelay::chat::rocketchat::{RocketChat, message_id};
use qrelay::chat::secret::SecretsManagerSource;
use qrelay::console::{AfterClass, ChatInfo, Console, ConsoleAuth};
use qrelay::consumer::Control;
use qrelay::control::{CachedRooms, ControlStore, DynamoStore};
use qrelay::digest::{
    CSV_HEADER, Days, DigestError, DigestRequested, DigestRequests, Digester, Language, Mailer, Outbox,
    ScheduledDigest, SesMailer, SnsDigestRequests,
};
use qrelay::domain::{QuestionId, RoomName, Rooms};
use qrelay::escalation::{Escalation, Phone, Rotation, TwilioCaller, TwilioSecret, Voice};
use qrelay::publish::{QuestionPublisher, SnsPublisher};
use qrelay_testkit::world::{World, WorldSpec};
use serde_json::json;

use crate::support::pipeline::Pipeline;

const TEACHER: &str = "teacher@example.com";

/// Mails through SES and, once SES took it, keeps a copy to read.
struct SesAndCopy {
    ses: SesMailer,
    copy: Outbox,
}

#[async_trait]
impl Mailer for SesAndCopy {
    async fn send(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<(), DigestError> {
        self.ses.send(to, subject, text, html).await?;
        self.copy.send(to, subject, text, html).await
    }
}

/// How many mails moto's SES sent in the last 24 hours (`GetSendQuota`, SES's query API, which moto routes by the
/// credential scope of an unsigned request).
async fn ses_sent(endpoint: &str) -> f64 {
    let response = qrelay::chat::http_client(Duration::from_secs(10))
        .expect("client")
        .post(format!("{endpoint}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261205/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=x",
        )
        .body("Action=GetSendQuota&Version=2010-12-01")
        .send()
        .await
        .expect("GetSendQuota");
    let xml = response.text().await.expect("body");
    let value = xml
        .split("<SentLast24Hours>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no SentLast24Hours in {xml}"));
    value.parse().expect("a number")
}

#[tokio::test]
async fn a_class_becomes_a_digest_in_order_mailed_through_ses_and_an_export_that_reads_back() {
    let pipeline = Pipeline::start().await;
    let endpoint = pipeline._moto.endpoint.clone();
    let sdk = pipeline._moto.sdk_config().await;
    let table = qrelay_testkit::world::create_control_table(&sdk, "qrelay-control")
        .await
        .expect("table");
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let pipeline = pipeline.with_control(Control {
        rooms: Arc::new(CachedRooms::new(store.clone(), Duration::ZERO)),
        flood_threshold: 20,
        held_for: Duration::from_secs(14 * 86_400),
        keep_delivered_for: Some(Duration::from_secs(30 * 86_400)),
    });

    // A class: six questions in general, two in rust-101, through SNS, SQS and the real consumer.
    let mut general: Vec<QuestionId> = Vec::new();
    for text in [
        "Q0 checked",
        "Q1 three votes",
        "Q2 answered in a thread",
        "Q3 one vote",
        "Q4 bot reply",
        "Q5 none",
    ] {
        general.push(pipeline.publish("general", text).await);
    }
    pipeline.publish("rust-101", "R0 lifetimes?").await;
    pipeline.publish("rust-101", "R1 borrowck?").await;
    pipeline.drain(10).await;
    assert_eq!(pipeline.chat.messages().len(), 8, "every question is in the chat once");
    assert_eq!(pipeline.chat.messages_in("rust-course").len(), 2);

    // The class reacts in the chat.
    let chat = &pipeline.chat;
    let on = |id: &QuestionId| message_id(*id);
    for who in ["aiko", "ben", "chie"] {
        assert!(chat.react(&on(&general[1]), ":+1:", who));
    }
    assert!(
        chat.react(&on(&general[1]), ":+1:", "aiko"),
        "a second 👍 by the same person counts once"
    );
    assert!(chat.react(&on(&general[3]), ":thumbsup:", "ben"));
    assert!(chat.react(&on(&general[0]), ":white_check_mark:", "teacher"));
    assert!(chat.reply_in_thread(&on(&general[2]), "teacher-user-id"));
    for who in ["aiko", "ben", "chie", "dai", "emi"] {
        assert!(chat.react(&on(&general[2]), ":+1:", who));
    }
    assert!(
        chat.reply_in_thread(&on(&general[4]), rocketchat_fake::USER_ID),
        "qrelay's own bot: not an answer"
    );

    let reader = Arc::new(RocketChat::new(
        qrelay::chat::http_client(Duration::from_secs(2)).expect("client"),
        &chat.url(),
        Arc::new(SecretsManagerSource::new(pipeline.secrets.clone(), &pipeline.secret_id)),
    ));
    let rooms = Rooms::parse("general,rust-101=rust-course").expect("rooms");
    let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").expect("zone");
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let mailer = Arc::new(SesAndCopy {
        ses: SesMailer::new(ses.clone(), TEACHER),
        copy: Outbox::default(),
    });
    let digest = ScheduledDigest {
        digester: Digester::new(rooms.clone(), store.clone(), Some(reader)),
        mailer: mailer.clone(),
        to: TEACHER.into(),
        language: Language::En,
        time_zone: tokyo.clone(),
    };

    // SES refuses an address nobody verified, and the digest says so instead of claiming it was sent.
    let refused = digest.handle(json!({})).await.expect_err("not verified");
    assert!(refused.to_string().contains("SES SendEmail"), "{refused}");
    assert_eq!(ses_sent(&endpoint).await, 0.0);

    ses.create_email_identity()
        .email_identity(TEACHER)
        .send()
        .await
        .expect("verify");
    let answer = digest.handle(json!({})).await.expect("mailed");
    assert_eq!(answer["questions"], 8);
    assert_eq!(ses_sent(&endpoint).await, 1.0, "one mail through SES");

    let mail = mailer.copy.sent().pop().expect("the digest");
    assert_eq!(mail.to, TEACHER);
    assert!(
        mail.subject.starts_with("qrelay: 8 questions, 6 unanswered"),
        "{}",
        mail.subject
    );
    let text = &mail.text;
    assert!(text.contains("general: 6 questions, 4 unanswered"), "{text}");
    assert!(text.contains("rust-101: 2 questions, 2 unanswered"), "{text}");
    // Unanswered by votes (3, 1, then the two without, in the order asked), then the answered (5 votes, then 0).
    let order = [
        "Q1 three votes",
        "Q3 one vote",
        "Q4 bot reply",
        "Q5 none",
        "Q2 answered in a thread",
        "Q0 checked",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|q| text.find(q).unwrap_or_else(|| panic!("{q} is in the digest: {text}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "digest order {order:?}: {text}"
    );
    assert!(text.contains("👍 3 votes]\n    Q1 three votes"), "{text}");
    assert!(text.contains("👍 5 votes]\n    Q2 answered in a thread"), "{text}");

    // "Mail me these questions" from the console goes through SNS: what the topic delivers is the digest function's
    // event (here through a queue subscribed to it, the envelope handed over as Lambda's SNS event carries it).
    let requests_world = World::create(&sdk, &WorldSpec::named("digest-requests"))
        .await
        .expect("the request topic");
    let requests = SnsDigestRequests::new(requests_world.sns.clone(), requests_world.topic_arn.clone());
    let today = Days::today(jiff::Timestamp::now(), &tokyo);
    let asked = requests
        .request(&[RoomName::parse("rust-101").expect("room")], today.first)
        .await
        .expect("published");
    assert_eq!(asked, DigestRequested::Queued);
    let received = requests_world
        .sqs
        .receive_message()
        .queue_url(&requests_world.queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive");
    let envelope: serde_json::Value =
        serde_json::from_str(received.messages()[0].body().expect("body")).expect("the SNS envelope");
    let event = json!({ "Records": [{ "EventSource": "aws:sns", "EventVersion": "1.0", "Sns": envelope }] });
    let answer = digest.handle(event).await.expect("mailed on request");
    assert_eq!(answer[0]["questions"], 2, "{answer}");
    assert_eq!(ses_sent(&endpoint).await, 2.0);
    let mail = mailer.copy.sent().pop().expect("the requested digest");
    assert!(
        mail.subject.contains("2 questions") && mail.subject.contains("rust-101"),
        "{}",
        mail.subject
    );
    assert!(!mail.text.contains("Q1 three votes"), "only the room asked for");

    // Delivered again (SQS may): the archive keeps one row per question.
    let again = qrelay::domain::QuestionMessage::from(&qrelay_testkit::samples::question("general", "Q6 twice"));
    pipeline.publisher.publish(&again).await.expect("publish");
    pipeline.publisher.publish(&again).await.expect("publish again");
    pipeline.drain(10).await;

    // The export from the console reads back as the archive holds it.
    let console = Console::new(
        rooms.clone(),
        store.clone(),
        Arc::new(SnsPublisher::new(
            pipeline.world.sns.clone(),
            pipeline.world.topic_arn.clone(),
        )),
        Arc::new(qrelay::redrive::Redrive::new(
            pipeline.world.redrive_queues(),
            qrelay::redrive::CopyMover(pipeline.world.redrive_queues()),
            qrelay::redrive::NativeMover(pipeline.world.redrive_queues()),
            qrelay::redrive::RedriveMode::Copy,
        )),
        ChatInfo {
            label: "Rocket.Chat",
            guarantee: qrelay::chat::Guarantee::ExactlyOnce,
        },
        20,
        ConsoleAuth::Local,
    )
    .with_after_class(AfterClass {
        digester: Arc::new(Digester::new(rooms, store.clone(), None)),
        time_zone: tokyo.clone(),
        digest: None,
    });
    let request = http::Request::builder()
        .method("GET")
        .uri(format!(
            "/instructor/api/rooms/general/export?format=csv&from={}",
            today.first
        ))
        .body(lambda_http::Body::Empty)
        .expect("request");
    let response = console.handle(lambda_http::Request::from(request)).await;
    assert_eq!(response.status(), 200);
    let csv = String::from_utf8(response.body().to_vec()).expect("utf-8");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>(), CSV_HEADER);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    let (from, to) = (
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24),
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    );
    let archived = store
        .archived(
            &qrelay::domain::RoomName::parse("general").expect("room"),
            from,
            to,
            jiff::Timestamp::now(),
        )
        .await
        .expect("archive");
    assert_eq!(archived.len(), 7, "six questions and the one delivered twice, once");
    let expected: Vec<(String, String)> = archived
        .iter()
        .map(|a| (a.question.id.to_string(), a.question.text.clone()))
        .collect();
    let read: Vec<(String, String)> = rows.iter().map(|r| (r[1].clone(), r[5].clone())).collect();
    assert_eq!(read, expected, "the CSV holds the archive's rows, in the order asked");
    assert!(rows.iter().all(|r| r[0] == "general" && r[2].ends_with("+09:00")));
}

/// The escalation function's handler over the real DynamoDB store, with Twilio's key presses arriving over HTTP
/// at a loopback server standing in for the API route.
struct Callbacks {
    escalation: Arc<Escalation>,
    secret: Arc<TwilioSecret>,
}

async fn callback(
    axum::extract::State(state): axum::extract::State<Arc<Callbacks>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: http::HeaderMap,
    body: String,
) -> (http::StatusCode, String) {
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let token = state.secret.get().await.expect("secret").auth_token.clone();
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    let answer = state
        .escalation
        .callback(
            &token,
            query.as_deref().unwrap_or_default(),
            &form,
            signature,
            jiff::Timestamp::now(),
        )
        .await
        .expect("callback");
    (http::StatusCode::from_u16(answer.status).expect("status"), answer.twiml)
}

fn alarm(name: &str, state: &str) -> serde_json::Value {
    let message = json!({ "AlarmName": name, "NewStateValue": state, "OldStateValue": "OK",
                          "StateChangeTime": "2026-12-05T01:00:00.000+0000" });
    json!({ "Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:alarms:1",
        "Sns": { "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
                 "Subject": "ALARM", "Message": message.to_string(), "Timestamp": "2026-12-05T01:00:00.000Z",
                 "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                 "MessageAttributes": {} }
    }]})
}

#[tokio::test]
async fn the_rotation_calls_one_then_two_is_acknowledged_by_a_signed_key_press_and_calls_no_three() {
    let moto = qrelay_testkit::moto::Moto::start().await;
    let sdk = moto.sdk_config().await;
    let table = qrelay_testkit::world::create_control_table(&sdk, "qrelay-control")
        .await
        .expect("table");
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let twilio = chat_fakes::twilio::Twilio::new();
    let twilio_server = twilio.serve().await;
    let secret_id = qrelay_testkit::world::create_secret(
        &sdk,
        "qrelay/twilio",
        &serde_json::from_str(&twilio.secret_json()).expect("json"),
    )
    .await
    .expect("secret");
    let secret = Arc::new(TwilioSecret::secrets_manager(
        aws_sdk_secretsmanager::Client::new(&sdk),
        secret_id,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let callback_url = format!("http://{}/escalation/twilio", listener.local_addr().expect("address"));
    let rotation = Rotation {
        phones: vec![
            Phone::parse("+819011110001").expect("phone"),
            Phone::parse("+819011110002").expect("phone"),
        ],
        after: Duration::from_secs(600),
        ack_wait: Duration::from_secs(180),
        alarms: [
            "qrelay-ChatProbablyDownAlarm-1".to_owned(),
            "qrelay-DeadLettersPresentAlarm-1".to_owned(),
        ]
        .into(),
        callback_url,
        voice: Voice::Ja,
        rounds: 3,
    };
    let caller = TwilioCaller::new(
        qrelay::chat::http_client(Duration::from_secs(5)).expect("client"),
        &twilio_server.url,
        Phone::parse("+15005550006").expect("phone"),
        secret.clone(),
    );
    let escalation = Arc::new(Escalation::new(rotation, store.clone(), Arc::new(caller)));
    let app = axum::Router::new()
        .route("/escalation/twilio", axum::routing::post(callback))
        .with_state(Arc::new(Callbacks {
            escalation: escalation.clone(),
            secret: secret.clone(),
        }));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let start: jiff::Timestamp = "2026-12-05T01:00:00Z".parse().expect("time");
    let at = |minutes: i64| start + jiff::SignedDuration::from_mins(minutes);
    let tick = json!({ "tick": true });
    let handle = |event: serde_json::Value, minutes: i64| {
        let escalation = escalation.clone();
        let secret = secret.clone();
        async move { escalation.handle(event, &secret, at(minutes)).await.expect("handled") }
    };

    handle(alarm("qrelay-ChatProbablyDownAlarm-1", "ALARM"), 0).await;
    handle(tick.clone(), 5).await;
    assert!(
        twilio.calls().is_empty(),
        "nobody is called before EscalateAfterMinutes"
    );
    handle(tick.clone(), 10).await;
    let calls = twilio.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].to.as_str(), calls[0].from.as_str()),
        ("+819011110001", "+15005550006")
    );
    assert!(
        calls[0].twiml.contains("1 を押してください") && calls[0].twiml.contains("ja-JP"),
        "{}",
        calls[0].twiml
    );
    // Call 1 goes unanswered; three minutes later, call 2.
    handle(tick.clone(), 12).await;
    assert_eq!(twilio.calls().len(), 1);
    handle(tick.clone(), 13).await;
    assert_eq!(twilio.calls().len(), 2);
    assert_eq!(twilio.calls()[1].to, "+819011110002");

    let forged = twilio.press_forged(1, "1").await;
    assert_eq!(
        forged.status, 403,
        "a callback not signed with the account's token is refused"
    );
    let answered = twilio.press(1, "1").await;
    assert_eq!(answered.status, 200, "{answered:?}");
    assert!(answered.body.contains("これ以上の電話はしません"), "{answered:?}");
    for minute in [16, 19, 40] {
        handle(tick.clone(), minute).await;
    }
    assert_eq!(twilio.calls().len(), 2, "no call 3 once someone acknowledged");

    // The alarm returns to OK; a new incident starts the rotation again, and OK stops it.
    handle(alarm("qrelay-ChatProbablyDownAlarm-1", "OK"), 41).await;
    handle(alarm("qrelay-DeadLettersPresentAlarm-1", "ALARM"), 50).await;
    handle(tick.clone(), 60).await;
    assert_eq!(twilio.calls().len(), 3);
    assert_eq!(
        twilio.calls()[2].to,
        "+819011110001",
        "a new incident starts with the first number"
    );
    handle(alarm("qrelay-DeadLettersPresentAlarm-1", "OK"), 61).await;
    for minute in [63, 70, 90] {
        handle(tick.clone(), minute).await;
    }
    assert_eq!(twilio.calls().len(), 3, "alarm OK stops the rotation");
    let late = twilio.press(2, "1").await;
    assert!(
        late.body.contains("すでに対応済みか"),
        "a key press after the incident: {late:?}"
    );
    server.abort();
}
