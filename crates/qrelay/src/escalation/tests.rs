//! The rotation's rules on the in-memory store with a recording caller: when a call is placed, who is next, what
//! acknowledges and what is refused. The DynamoDB store and Twilio's API (a fake) are covered by the integration
//! tests.

use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::control::MemoryStore;

const TOKEN: &str = "test-auth-token";
const CALLBACK: &str = "https://abc123.execute-api.ap-northeast-1.amazonaws.com/escalation/twilio";

#[derive(Default)]
struct Calls(Mutex<Vec<(Phone, String)>>);

#[async_trait]
impl Caller for Calls {
    async fn call(&self, to: &Phone, twiml: &str) -> Result<String, CallError> {
        let mut calls = self.0.lock().expect("lock");
        calls.push((to.clone(), twiml.to_owned()));
        Ok(format!("CA{}", calls.len()))
    }
}

impl Calls {
    fn to(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|(p, _)| p.as_str().to_owned())
            .collect()
    }

    fn last_twiml(&self) -> String {
        self.0.lock().expect("lock").last().expect("a call").1.clone()
    }
}

fn rotation() -> Rotation {
    Rotation {
        phones: vec![
            Phone::parse("+819011110001").expect("phone"),
            Phone::parse("+819011110002").expect("phone"),
        ],
        after: Duration::from_secs(600),
        ack_wait: Duration::from_secs(180),
        alarms: ["qrelay-chat-down".to_owned(), "qrelay-dead-letters".to_owned()].into(),
        callback_url: CALLBACK.into(),
        voice: Voice::En,
        rounds: 2,
    }
}

fn at(minutes: i64) -> Timestamp {
    let start: Timestamp = "2026-12-05T01:00:00Z".parse().expect("time");
    start + jiff::SignedDuration::from_mins(minutes)
}

fn change(name: &str, state: &str) -> AlarmChange {
    AlarmChange {
        alarm_name: name.into(),
        new_state: state.into(),
    }
}

fn setup() -> (Escalation, Arc<Calls>, Arc<MemoryStore>) {
    let calls = Arc::new(Calls::default());
    let store = Arc::new(MemoryStore::new());
    (Escalation::new(rotation(), store.clone(), calls.clone()), calls, store)
}

/// The incident id and a key press on the call, signed as Twilio signs it.
async fn press(escalation: &Escalation, store: &MemoryStore, digit: &str, token: &str) -> CallbackAnswer {
    let incident = store.incident().await.expect("read").value.id.unwrap_or_default();
    let query = format!("incident={incident}");
    let form = vec![
        ("CallSid".to_owned(), "CA1".to_owned()),
        ("Digits".to_owned(), digit.to_owned()),
        ("To".to_owned(), "+819011110002".to_owned()),
    ];
    let signed = signature(token, &format!("{CALLBACK}?{query}"), &form);
    escalation
        .callback(TOKEN, &query, &form, Some(&signed), at(14))
        .await
        .expect("callback")
}

#[test]
fn the_signature_is_twilios() {
    // The example in Twilio's documentation of its request validation.
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert!(twilio::verify("12345", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert!(!twilio::verify("54321", url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    assert!(!twilio::verify(
        "12345",
        "https://mycompany.com/myapp.php",
        &params,
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    ));
    assert!(!twilio::verify("12345", url, &params, "not base64!"));
}

#[tokio::test]
async fn call_one_unanswered_call_two_acknowledged_and_no_call_three() {
    let (escalation, calls, store) = setup();
    escalation
        .alarm(&change("qrelay-chat-down", "ALARM"), at(0))
        .await
        .expect("alarm");
    assert_eq!(
        escalation.tick(at(5)).await.expect("tick"),
        None,
        "not before EscalateAfter"
    );
    let first = escalation.tick(at(10)).await.expect("tick").expect("call 1");
    assert_eq!(first.as_str(), "+819011110001");
    let twiml = calls.last_twiml();
    assert!(twiml.contains("Press 1") && twiml.contains("10 minutes"), "{twiml}");
    assert!(twiml.contains(&format!("action=\"{CALLBACK}?incident=")), "{twiml}");
    assert_eq!(
        escalation.tick(at(11)).await.expect("tick"),
        None,
        "the first call waits for its answer"
    );
    let second = escalation.tick(at(13)).await.expect("tick").expect("call 2");
    assert_eq!(second.as_str(), "+819011110002");

    let answer = press(&escalation, &store, "1", TOKEN).await;
    assert_eq!(answer.status, 200);
    assert!(answer.twiml.contains("Nobody else will be called"), "{answer:?}");
    for minute in [16, 20, 60] {
        assert_eq!(
            escalation.tick(at(minute)).await.expect("tick"),
            None,
            "no call 3 at {minute}"
        );
    }
    assert_eq!(calls.to(), ["+819011110001", "+819011110002"]);
    let incident = store.incident().await.expect("read").value;
    assert_eq!(
        incident.acknowledged.as_ref().map(|(who, _)| who.as_str()),
        Some("+…0002")
    );
}

#[tokio::test]
async fn a_forged_or_wrong_callback_acknowledges_nothing() {
    let (escalation, calls, store) = setup();
    escalation
        .alarm(&change("qrelay-chat-down", "ALARM"), at(0))
        .await
        .expect("alarm");
    escalation.tick(at(10)).await.expect("tick").expect("call 1");
    let forged = press(&escalation, &store, "1", "someone-elses-token").await;
    assert_eq!(forged.status, 403);
    let unsigned = escalation
        .callback(TOKEN, "incident=x", &[("Digits".into(), "1".into())], None, at(11))
        .await
        .expect("callback");
    assert_eq!(unsigned.status, 403);
    let other_key = press(&escalation, &store, "2", TOKEN).await;
    assert_eq!(other_key.status, 200);
    assert!(other_key.twiml.contains("Not acknowledged"));
    assert_eq!(store.incident().await.expect("read").value.acknowledged, None);
    escalation
        .tick(at(13))
        .await
        .expect("tick")
        .expect("the rotation goes on: call 2");
    assert_eq!(calls.to().len(), 2);
}

#[tokio::test]
async fn the_rotation_stops_when_the_alarms_are_ok_and_a_late_key_press_does_nothing() {
    let (escalation, calls, store) = setup();
    escalation
        .alarm(&change("qrelay-chat-down", "ALARM"), at(0))
        .await
        .expect("alarm");
    escalation
        .alarm(&change("qrelay-dead-letters", "ALARM"), at(2))
        .await
        .expect("alarm");
    escalation.tick(at(10)).await.expect("tick").expect("call 1");
    let old_incident = store.incident().await.expect("read").value.id;
    escalation
        .alarm(&change("qrelay-chat-down", "OK"), at(11))
        .await
        .expect("ok");
    // One alarm is still on: the incident goes on.
    escalation.tick(at(13)).await.expect("tick").expect("call 2");
    escalation
        .alarm(&change("qrelay-dead-letters", "OK"), at(14))
        .await
        .expect("ok");
    for minute in [17, 30] {
        assert_eq!(escalation.tick(at(minute)).await.expect("tick"), None);
    }
    assert_eq!(calls.to().len(), 2);
    // A key press on a call of the incident that is over.
    let query = format!("incident={}", old_incident.expect("id"));
    let form = vec![("Digits".to_owned(), "1".to_owned())];
    let signed = signature(TOKEN, &format!("{CALLBACK}?{query}"), &form);
    let late = escalation
        .callback(TOKEN, &query, &form, Some(&signed), at(31))
        .await
        .expect("callback");
    assert!(late.twiml.contains("over or acknowledged already"), "{late:?}");
    assert_eq!(store.incident().await.expect("read").value, Incident::default());
}

#[tokio::test]
async fn other_alarms_are_ignored_and_the_rounds_are_bounded() {
    let (escalation, calls, _) = setup();
    escalation
        .alarm(&change("qrelay-consumer-errors", "ALARM"), at(0))
        .await
        .expect("alarm");
    assert_eq!(
        escalation.tick(at(30)).await.expect("tick"),
        None,
        "not a chat-down alarm"
    );
    escalation
        .alarm(&change("qrelay-chat-down", "ALARM"), at(0))
        .await
        .expect("alarm");
    let mut minute = 10;
    while minute < 120 {
        escalation.tick(at(minute)).await.expect("tick");
        minute += 3;
    }
    assert_eq!(
        calls.to(),
        ["+819011110001", "+819011110002", "+819011110001", "+819011110002"],
        "two rounds"
    );
}

#[tokio::test]
async fn racing_ticks_place_one_call() {
    let (escalation, calls, _) = setup();
    let escalation = Arc::new(escalation);
    escalation
        .alarm(&change("qrelay-chat-down", "ALARM"), at(0))
        .await
        .expect("alarm");
    let ticks = (0..6).map(|_| {
        let escalation = escalation.clone();
        tokio::spawn(async move { escalation.tick(at(10)).await.expect("tick") })
    });
    let placed = futures_util::future::join_all(ticks)
        .await
        .into_iter()
        .filter(|r| r.as_ref().expect("task").is_some())
        .count();
    assert_eq!(placed, 1);
    assert_eq!(calls.to().len(), 1);
}

#[test]
fn phone_numbers_are_e164() {
    for good in ["+819012345678", "+14155550100", "+4420794600"] {
        assert!(Phone::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "09012345678",
        "+0123456789",
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "+12",
        "+1234567890123456",
        "",
    ] {
        let err = Phone::parse(bad).expect_err(bad);
        assert!(err.contains("E.164"), "{bad}: {err}");
    }
    assert_eq!(Phone::parse("+819012345678").expect("ok").masked(), "+…5678");
}

#[tokio::test]
async fn the_lambda_event_shapes_are_told_apart() {
    let (escalation, calls, _) = setup();
    let secret = TwilioSecret::given(
        TwilioCredentials::parse(r#"{"account_sid":"AC1","auth_token":"test-auth-token"}"#).expect("creds"),
    );
    // The sample events of `events/`, as `cargo lambda invoke --data-file` sends them.
    let sample = |text: &str| -> serde_json::Value { serde_json::from_str(text).expect("json") };
    let mut sns = sample(include_str!("../../../../events/escalation-alarm.json"));
    let message = sns["Records"][0]["Sns"]["Message"]
        .as_str()
        .expect("message")
        .replace("qrelay-ChatProbablyDownAlarm-1A2B3C4D", "qrelay-chat-down");
    sns["Records"][0]["Sns"]["Message"] = message.into();
    escalation.handle(sns, &secret, at(0)).await.expect("sns");
    let tick = escalation
        .handle(
            sample(include_str!("../../../../events/escalation-tick.json")),
            &secret,
            at(10),
        )
        .await
        .expect("tick");
    assert_eq!(tick["called"], "+…0001");
    assert_eq!(calls.to().len(), 1);
    let http = sample(include_str!("../../../../events/escalation-twilio-callback.json"));
    let answer = escalation.handle(http, &secret, at(11)).await.expect("http");
    assert_eq!(answer["statusCode"], 403, "not signed by Twilio: {answer}");
    assert_eq!(answer["headers"]["content-type"], "text/xml; charset=utf-8");
    let err = escalation
        .handle(serde_json::json!({"hello": 1}), &secret, at(12))
        .await
        .expect_err("unknown");
    assert!(matches!(err, EscalationError::Event(_)));
}

#[test]
fn the_twilio_secret_names_what_is_missing_and_never_shows_the_token() {
    let err = TwilioCredentials::parse(r#"{"account_sid":"AC1"}"#).expect_err("no token");
    assert!(err.to_string().contains("auth_token"), "{err}");
    let err = TwilioCredentials::parse(r#"{"account_sid":"XX1","auth_token":"secret-value"}"#).expect_err("sid");
    assert!(!err.to_string().contains("secret-value"), "{err}");
    let creds = TwilioCredentials::parse(r#"{"account_sid":"AC1","auth_token":"secret-value"}"#).expect("ok");
    assert!(!format!("{creds:?}").contains("secret-value"));
}

#[tokio::test]
async fn the_twilio_caller_places_a_call_and_names_twilios_refusals_without_the_number() {
    let fake = chat_fakes::twilio::Twilio::new();
    let server = fake.serve().await;
    let http = crate::chat::http_client(Duration::from_secs(5)).expect("client");
    let from = Phone::parse("+15005550006").expect("phone");
    let caller = |token: &str| {
        TwilioCaller::new(
            http.clone(),
            &server.url,
            from.clone(),
            Arc::new(TwilioSecret::given(TwilioCredentials {
                account_sid: fake.account_sid.clone(),
                auth_token: token.to_owned(),
            })),
        )
    };
    let to = Phone::parse("+819011110001").expect("phone");
    let sid = caller(&fake.auth_token)
        .call(&to, "<Response><Say>hi</Say></Response>")
        .await
        .expect("placed");
    assert!(sid.starts_with("CA"), "{sid}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].to.as_str(), calls[0].from.as_str()),
        ("+819011110001", "+15005550006")
    );
    assert_eq!(calls[0].twiml, "<Response><Say>hi</Say></Response>");

    let refused = caller("wrong-token")
        .call(&to, "<Response/>")
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, CallError::Refused(d) if d.contains("20003")),
        "{refused}"
    );
    fake.faults.fail_with(Some(503));
    let down = caller(&fake.auth_token)
        .call(&to, "<Response/>")
        .await
        .expect_err("down");
    assert!(matches!(down, CallError::Unavailable(_)), "{down}");
    assert!(!down.to_string().contains("+8190") && !refused.to_string().contains("+8190"));
    assert_eq!(fake.calls().len(), 1, "nothing placed by a refused or failed request");
}
