//! Handler tests: the real handler on the same `events/*.json` files `cargo lambda invoke` uses, with a fake
//! publisher, for every status the intake function answers with.

use std::sync::Mutex;

use async_trait::async_trait;
use lambda_http::{Body, Response};
use proptest::prelude::*;

use super::error::ErrorCode;
use super::*;

/// Records what it is asked to publish; fails every publish when `failing`.
#[derive(Default)]
struct FakePublisher {
    published: Mutex<Vec<QuestionMessage>>,
    /// The id of every publish asked for, failed ones included.
    attempted: Mutex<Vec<QuestionId>>,
    failing: bool,
}

#[async_trait]
impl QuestionPublisher for FakePublisher {
    async fn publish(&self, question: &QuestionMessage) -> anyhow::Result<String> {
        self.attempted.lock().expect("lock").push(question.id);
        if self.failing {
            anyhow::bail!("SNS is unreachable (fake)");
        }
        self.published.lock().expect("lock").push(question.clone());
        Ok(format!("msg-{}", question.id))
    }
}

fn intake_with(publisher: Arc<FakePublisher>) -> Intake {
    Intake::new(
        Rooms::parse("general,rust-101").expect("rooms"),
        Limits::default(),
        publisher,
    )
}

macro_rules! event {
    ($name:literal) => {
        lambda_http::request::from_str(include_str!(concat!("../../../../events/", $name))).expect($name)
    };
}

fn body_text(response: &Response<Body>) -> String {
    String::from_utf8(response.body().as_ref().to_vec()).expect("utf-8 body")
}

fn body_json(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", body_text(response)))
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_json_question_is_queued_after_it_is_published() {
    let publisher = Arc::new(FakePublisher::default());
    let response = intake_with(publisher.clone())
        .handle(event!("intake-post-json.json"))
        .await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = body_json(&response);
    assert_eq!(body["status"], "queued");
    let published = publisher.published.lock().expect("lock");
    assert_eq!(published.len(), 1, "exactly one publish");
    assert_eq!(
        body["id"],
        published[0].id.to_string(),
        "the answered id is the published id"
    );
    assert_eq!(published[0].room, "rust-101");
    assert_eq!(published[0].nickname.as_deref(), Some("たろう"));
    assert!(
        published[0].text.starts_with("所有権と借用"),
        "text published as typed: {}",
        published[0].text
    );
}

#[tokio::test]
async fn nothing_identifying_reaches_the_published_document() {
    let publisher = Arc::new(FakePublisher::default());
    intake_with(publisher.clone())
        .handle(event!("intake-post-json.json"))
        .await;
    let json = publisher.published.lock().expect("lock")[0].to_json();
    for needle in ["203.0.113.42", "iPhone", "Mozilla", "session=abc", "JKJaXmPLvHcESHA"] {
        assert!(!json.contains(needle), "published document leaks {needle:?}: {json}");
    }
}

#[tokio::test]
async fn a_plain_form_post_is_answered_with_a_redirect_to_the_form() {
    let publisher = Arc::new(FakePublisher::default());
    let response = intake_with(publisher.clone())
        .handle(event!("intake-post-form.json"))
        .await;

    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "Post/Redirect/Get: {}",
        body_text(&response)
    );
    assert_eq!(header(&response, "location"), Some("./?sent=1&lang=en"));
    let published = publisher.published.lock().expect("lock");
    assert_eq!(published.len(), 1);
    assert_eq!(
        (published[0].room.as_str(), published[0].text.as_str()),
        ("general", "What is a lifetime?")
    );
    assert_eq!(published[0].nickname, None, "a blank nickname is no nickname");
}

#[tokio::test]
async fn sns_failure_gives_503_and_nothing_is_reported_as_queued() {
    let publisher = Arc::new(FakePublisher {
        failing: true,
        ..Default::default()
    });
    let response = intake_with(publisher.clone())
        .handle(event!("intake-post-json.json"))
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "retry-after"), Some("5"));
    let body = body_json(&response);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body.get("status").is_none() && body.get("id").is_none(),
        "no queued answer: {body}"
    );
    assert!(
        !body.to_string().contains("fake"),
        "the cause stays in our logs: {body}"
    );
}

#[tokio::test]
async fn sns_failure_on_a_plain_form_post_keeps_the_students_text() {
    let publisher = Arc::new(FakePublisher {
        failing: true,
        ..Default::default()
    });
    let response = intake_with(publisher).handle(event!("intake-post-form.json")).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = body_text(&response);
    assert!(
        html.contains(">What is a lifetime?</textarea>"),
        "text kept in the form"
    );
    assert!(
        html.contains("please wait a moment and send it again"),
        "error explained in English"
    );
}

#[tokio::test]
async fn bad_requests_get_their_own_status_and_code() {
    let cases: [(&str, Request, StatusCode, &str); 9] = [
        (
            "empty text",
            event!("intake-post-empty-text.json"),
            StatusCode::BAD_REQUEST,
            "empty_text",
        ),
        (
            "too long",
            event!("intake-post-too-long.json"),
            StatusCode::BAD_REQUEST,
            "text_too_long",
        ),
        (
            "unknown room",
            event!("intake-post-unknown-room.json"),
            StatusCode::BAD_REQUEST,
            "unknown_room",
        ),
        (
            "malformed",
            event!("intake-post-malformed.json"),
            StatusCode::BAD_REQUEST,
            "malformed_body",
        ),
        (
            "over 16 KiB",
            event!("intake-post-too-large.json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "text/plain",
            event!("intake-post-text-plain.json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "DELETE",
            event!("intake-delete-questions.json"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "unknown path",
            event!("intake-get-unknown-path.json"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown room form",
            event!("intake-get-unknown-room.json"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (what, request, status, code) in cases {
        let publisher = Arc::new(FakePublisher::default());
        let response = intake_with(publisher.clone()).handle(request).await;
        assert_eq!(response.status(), status, "{what}: {}", body_text(&response));
        assert_eq!(header(&response, "content-type"), Some("application/json"), "{what}");
        let body = body_json(&response);
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: message"
        );
        assert!(
            publisher.published.lock().expect("lock").is_empty(),
            "{what}: nothing published"
        );
    }
}

#[tokio::test]
async fn wrong_method_names_the_allowed_one() {
    let response = intake_with(Arc::default())
        .handle(event!("intake-delete-questions.json"))
        .await;
    assert_eq!(header(&response, "allow"), Some("POST"));
}

#[tokio::test]
async fn the_form_is_served_in_the_negotiated_language() {
    let intake = intake_with(Arc::default());

    let ja = intake.handle(event!("intake-get-form.json")).await;
    assert_eq!(ja.status(), StatusCode::OK);
    assert_eq!(header(&ja, "content-type"), Some("text/html; charset=utf-8"));
    let html = body_text(&ja);
    assert!(
        html.contains("<html lang=\"ja\">") && html.contains("<strong>general</strong>"),
        "ja, default room"
    );
    assert!(html.contains("action=\"questions\""), "posts relative to the root");

    let en = body_text(&intake.handle(event!("intake-get-room-form-en.json")).await);
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("<strong>rust-101</strong>"),
        "?lang=en wins, room bound"
    );
    assert!(en.contains("action=\"../questions\""), "posts relative to /r/rust-101");
    assert!(
        en.contains("href=\"rust-101?lang=ja\""),
        "language switch stays in the room"
    );
}

#[tokio::test]
async fn a_named_stage_is_not_part_of_the_route() {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-get-room-form-en.json")).expect("json");
    event["rawPath"] = "/prod/r/rust-101".into();
    event["requestContext"]["stage"] = "prod".into();
    let request = lambda_http::request::from_str(&event.to_string()).expect("event");
    let response = intake_with(Arc::default()).handle(request).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
}

#[tokio::test]
async fn a_retry_with_the_same_submission_id_keeps_the_questions_identity() {
    let publisher = Arc::new(FakePublisher::default());
    let intake = intake_with(publisher.clone());
    let id = "0b7a3f0e-3c55-4f5e-9b1e-2a6d5c4b3a21";
    for _ in 0..2 {
        let request = json_post(&serde_json::json!({ "text": "retry me", "submission_id": id }).to_string());
        let response = intake.handle(request).await;
        assert_eq!(body_json(&response)["id"], id);
    }
    let bad = intake.handle(json_post(r#"{"text":"x","submission_id":"1234"}"#)).await;
    assert_eq!(body_json(&bad)["error"]["code"], "invalid_submission_id");
}

fn json_post(body: &str) -> Request {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-post-json.json")).expect("json");
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any body under any content type and headers gets a 2xx or 4xx answer, as JSON unless a browser posted a
    /// form and asked for HTML; never a panic, never a 5xx while publishing works.
    #[test]
    fn any_request_gets_a_2xx_or_4xx_answer(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        json_body in "\\PC{0,300}",
        content_type in prop_oneof![
            Just("application/json"), Just("application/x-www-form-urlencoded"), Just("text/plain"),
            Just("application/json; charset=utf-8"), Just(""), Just("multipart/form-data; boundary=x"),
        ],
        accept in prop_oneof![Just("application/json"), Just("*/*"), Just("text/html"), Just("")],
        path in prop_oneof![
            Just("/questions".to_owned()), Just("/".to_owned()), Just("/r/rust-101".to_owned()), "/[a-z/]{0,12}",
        ],
        method in prop_oneof![Just("POST"), Just("GET"), Just("PUT")],
        use_json_body in any::<bool>(),
        language in "[a-zA-Z,;=. 0-9-]{0,40}",
    ) {
        let body = if use_json_body { json_body.into_bytes() } else { body };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("https://example.com{path}"))
            .header("content-type", content_type)
            .header("accept", accept)
            .header("accept-language", language)
            .body(Body::from(body))
            .expect("request");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let response = runtime.block_on(intake_with(Arc::default()).handle(request));
        let status = response.status();
        prop_assert!(status.is_success() || status.is_client_error() || status.is_redirection(), "status {status}");
        let content_type = header(&response, "content-type").unwrap_or_default();
        if status.is_client_error() && !accept.contains("text/html") {
            prop_assert_eq!(content_type, "application/json");
            let body = body_json(&response);
            prop_assert!(body["error"]["code"].is_string(), "error body {}", body);
        }
    }
}

#[tokio::test]
async fn a_rooms_qr_code_links_to_its_form_as_the_student_reaches_it() {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-get-room-form-en.json")).expect("json");
    event["rawPath"] = "/prod/r/rust-101/qr.svg".into();
    event["requestContext"]["stage"] = "prod".into();
    let request = lambda_http::request::from_str(&event.to_string()).expect("event");
    let intake = intake_with(Arc::default());

    let response = intake.handle(request).await;

    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    assert_eq!(header(&response, "content-type"), Some("image/svg+xml"));
    let expected = qr::svg("https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod/r/rust-101").expect("qr");
    assert_eq!(
        body_text(&response),
        expected,
        "encodes the public form link, stage included"
    );

    let mut unknown = event.clone();
    unknown["rawPath"] = "/prod/r/python/qr.svg".into();
    let response = intake
        .handle(lambda_http::request::from_str(&unknown.to_string()).expect("event"))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no QR code for an unknown room"
    );
}

#[tokio::test]
async fn query_parameters_work_without_api_gateway_too() {
    let request = http::Request::builder()
        .uri("http://127.0.0.1:3000/r/rust-101?lang=en&sent=1")
        .header("accept-language", "ja")
        .body(Body::Empty)
        .expect("request");
    let html = body_text(&intake_with(Arc::default()).handle(request).await);
    assert!(html.contains("<html lang=\"en\">"), "?lang=en read from the URI");
}

fn get(uri: &str, cookie: Option<&str>) -> Request {
    let mut request = http::Request::builder()
        .uri(format!("http://127.0.0.1:3000{uri}"))
        .header("accept", "text/html");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Body::Empty).expect("request")
}

#[tokio::test]
async fn sent_is_said_once_right_after_the_redirect_and_not_by_a_reopened_link() {
    let intake = intake_with(Arc::default());
    let sent = strings::Strings::of(Lang::En).sent;

    let redirect = intake.handle(event!("intake-post-form.json")).await;
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let cookie = header(&redirect, "set-cookie").expect("the redirect sets the one-time cookie");
    assert!(
        cookie.starts_with("qrelay_sent=1;") && cookie.contains("Path=/") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // The notice is the status paragraph's text (the script carries the word too, for its own use).
    let notice = format!(r#"role="status" aria-live="polite">{sent}</p>"#);
    let right_after = intake.handle(get("/?sent=1&lang=en", Some("qrelay_sent=1"))).await;
    assert!(
        body_text(&right_after).contains(&notice),
        "confirmed right after the redirect"
    );
    let cleared = header(&right_after, "set-cookie").expect("the page clears the cookie");
    assert!(
        cleared.starts_with("qrelay_sent=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    let reopened = body_text(&intake.handle(get("/?sent=1&lang=en", None)).await);
    assert!(
        !reopened.contains(&notice) && reopened.contains(r#"aria-live="polite"></p>"#),
        "a reopened ?sent=1 link claims nothing"
    );
}

#[tokio::test]
async fn the_one_time_cookie_is_scoped_to_the_stage() {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-post-form.json")).expect("json");
    event["rawPath"] = "/prod/questions".into();
    event["requestContext"]["stage"] = "prod".into();
    let response = intake_with(Arc::default())
        .handle(lambda_http::request::from_str(&event.to_string()).expect("event"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = header(&response, "set-cookie").expect("cookie");
    assert!(cookie.contains("Path=/prod/;"), "{cookie}");
}

#[tokio::test]
async fn the_join_screen_shows_the_room_its_qr_code_and_the_short_link() {
    let intake = intake_with(Arc::default());
    for (lang, words) in [("ja", "匿名で質問する"), ("en", "Ask a question anonymously")] {
        let response = intake.handle(get(&format!("/r/rust-101/join?lang={lang}"), None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{lang}");
        assert_eq!(header(&response, "content-type"), Some("text/html; charset=utf-8"));
        let html = body_text(&response);
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")) && html.contains(words),
            "{lang}"
        );
        assert!(html.contains("rust-101"), "the room's name");
        assert!(html.contains("<svg") && !html.contains("<?xml"), "the QR code inline");
        assert!(
            html.contains("<p class=\"link\">127.0.0.1:3000/r/rust-101</p>"),
            "the short link"
        );
        assert!(html.contains("<main>") && html.contains("<h1>"), "landmark and heading");
    }
    let unknown = intake.handle(get("/r/python/join", None)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_join_screen_links_through_the_stage() {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-get-form.json")).expect("json");
    event["rawPath"] = "/prod/r/rust-101/join".into();
    event["requestContext"]["stage"] = "prod".into();
    event["headers"]["host"] = "abc.example.com".into();
    let html = body_text(
        &intake_with(Arc::default())
            .handle(lambda_http::request::from_str(&event.to_string()).expect("event"))
            .await,
    );
    assert!(html.contains("abc.example.com/prod/r/rust-101</p>"), "{html}");
}

#[tokio::test]
async fn favicon_ico_is_an_icon() {
    let response = intake_with(Arc::default()).handle(get("/favicon.ico", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("image/x-icon"));
    let bytes = response.body().as_ref();
    assert_eq!(&bytes[..6], &[0, 0, 1, 0, 1, 0], "an ICO with one image");
    let size = u32::from_le_bytes(bytes[14..18].try_into().expect("4 bytes")) as usize;
    assert_eq!(bytes.len(), 22 + size, "the directory's size matches the image");
}

#[tokio::test]
async fn the_404_page_has_a_main_landmark_and_a_heading() {
    let response = intake_with(Arc::default()).handle(get("/nope?lang=en", None)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = body_text(&response);
    assert!(html.contains("<main><h1>") && html.contains("</main>"), "{html}");
    assert!(html.contains("<meta name=\"robots\" content=\"noindex\">"), "{html}");
}

#[tokio::test]
async fn room_pages_are_not_indexed_and_every_form_is_described() {
    let intake = intake_with(Arc::default());
    let room = body_text(&intake.handle(get("/r/rust-101", None)).await);
    assert!(room.contains("<meta name=\"robots\" content=\"noindex\">"));
    let root = body_text(&intake.handle(get("/", None)).await);
    assert!(root.contains("<meta name=\"robots\" content=\"index\">"));
    for html in [&room, &root] {
        assert!(
            html.contains("<meta name=\"description\" content=\""),
            "meta description"
        );
        assert!(
            html.contains("<link rel=\"icon\" href=\"data:image/svg+xml;base64,"),
            "a favicon"
        );
    }
}

#[tokio::test]
async fn without_javascript_nothing_cuts_the_text_and_the_counter_is_hidden() {
    let html = body_text(&intake_with(Arc::default()).handle(get("/r/rust-101", None)).await);
    let textarea = &html[html.find("<textarea").expect("textarea")..];
    let textarea = &textarea[..textarea.find('>').expect("tag end")];
    assert!(!textarea.contains("maxlength"), "no silent cut: {textarea}");
    assert!(
        html.contains("<p id=\"counter\" class=\"counter\" hidden>"),
        "counter hidden until the script runs"
    );
    assert!(
        !html.contains("id=\"counter\" class=\"counter\" aria-live"),
        "the counter is not a live region"
    );
}

#[tokio::test]
async fn a_no_js_paste_far_over_the_limit_is_refused_with_the_text_kept() {
    // 1500 emoji: 18 KB form-encoded, over the 16 KiB body limit; the text comes back, refused, not cut.
    let text = "😀".repeat(1500);
    let publisher = Arc::new(FakePublisher::default());
    let response = intake_with(publisher.clone())
        .handle(form_post(&[("text", &text), ("room", "rust-101"), ("lang", "en")]))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body_text(&response);
    assert!(html.contains(&format!(">{text}</textarea>")), "the text is kept");
    let message = strings::Strings::of(Lang::En).errors.get(ErrorCode::TextTooLong);
    assert!(html.contains(&message.replace('\'', "&#39;")), "explained");
    assert!(
        publisher.attempted.lock().expect("lock").is_empty(),
        "nothing published"
    );
}

#[tokio::test]
async fn an_over_long_json_body_is_still_a_413() {
    let body = serde_json::json!({ "text": "x".repeat(20_000) }).to_string();
    let request = http::Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:3000/questions")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = intake_with(Arc::default()).handle(request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A plain form post (`application/x-www-form-urlencoded`, `Accept: text/html`) of `fields`, as a browser without
/// JavaScript sends the form.
fn form_post(fields: &[(&str, &str)]) -> Request {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-post-form.json")).expect("json");
    event["body"] = serde_urlencoded::to_string(fields).expect("form encoding").into();
    event["isBase64Encoded"] = false.into();
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

/// The `submission_id` the rendered form will send with the next post.
fn hidden_submission_id(html: &str) -> &str {
    let marker = "name=\"submission_id\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no submission_id field: {html}"))
        + marker.len();
    let len = html[start..].find('"').expect("the value is quoted");
    &html[start..start + len]
}

#[tokio::test]
async fn a_resend_after_a_503_page_reuses_the_posted_submission_id() {
    // The publish may have reached SNS even though its answer did not reach us: a resend of the 503 page must be
    // the same question, or the consumer would post it twice.
    let publisher = Arc::new(FakePublisher {
        failing: true,
        ..Default::default()
    });
    let id = "0b7a3f0e-3c55-4f5e-9b1e-2a6d5c4b3a21";
    let posted = form_post(&[
        ("text", "What is a lifetime?"),
        ("room", "general"),
        ("lang", "en"),
        ("submission_id", id),
    ]);

    let response = intake_with(publisher).handle(posted).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = body_text(&response);
    assert_eq!(hidden_submission_id(&html), id, "the resend is the same question");
}

#[tokio::test]
async fn a_503_page_for_a_post_without_an_id_carries_the_id_it_was_published_under() {
    // A page cached from before the form sent ids posts none; the question got one here, and may be queued under
    // it: the resend must carry that one.
    let publisher = Arc::new(FakePublisher {
        failing: true,
        ..Default::default()
    });
    let response = intake_with(publisher.clone())
        .handle(form_post(&[("text", "What is a lifetime?"), ("lang", "en")]))
        .await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let attempted = publisher.attempted.lock().expect("lock").clone();
    assert_eq!(attempted.len(), 1, "one publish attempted");
    assert_eq!(
        hidden_submission_id(&body_text(&response)),
        attempted[0].to_string(),
        "the page carries the id of the attempted publish"
    );
}

#[tokio::test]
async fn the_error_pages_of_a_plain_form_post_keep_a_valid_posted_id_and_renew_an_invalid_one() {
    let id = "0b7a3f0e-3c55-4f5e-9b1e-2a6d5c4b3a21";
    let too_long = "x".repeat(Limits::default().question_chars + 1);
    let cases = [
        (
            "text too long",
            vec![("text", too_long.as_str()), ("submission_id", id)],
            ErrorCode::TextTooLong,
            Some(id),
        ),
        (
            "empty text",
            vec![("text", " "), ("submission_id", id)],
            ErrorCode::EmptyText,
            Some(id),
        ),
        (
            "unknown room",
            vec![("text", "q"), ("room", "python"), ("submission_id", id)],
            ErrorCode::UnknownRoom,
            Some(id),
        ),
        (
            "invalid id",
            vec![("text", "q"), ("submission_id", "1234")],
            ErrorCode::InvalidSubmissionId,
            None,
        ),
        (
            "a UUID that is not v4",
            vec![("text", "q"), ("submission_id", "0b7a3f0e-3c55-1f5e-9b1e-2a6d5c4b3a21")],
            ErrorCode::InvalidSubmissionId,
            None,
        ),
    ];
    for (what, fields, code, kept) in cases {
        let publisher = Arc::new(FakePublisher::default());
        let mut fields = fields;
        fields.push(("lang", "en"));

        let response = intake_with(publisher.clone()).handle(form_post(&fields)).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let html = body_text(&response);
        let message = strings::Strings::of(Lang::En).errors.get(code);
        let escaped = message
            .replace('&', "&amp;")
            .replace('\'', "&#39;")
            .replace('"', "&quot;");
        assert!(html.contains(&escaped), "{what}: the page explains {code:?}");
        let rendered = hidden_submission_id(&html);
        match kept {
            Some(id) => assert_eq!(rendered, id, "{what}: nothing was published, the id is kept"),
            None => {
                assert!(
                    QuestionId::parse(rendered).is_some(),
                    "{what}: a fresh valid id, not {rendered:?}"
                );
                assert!(
                    fields.iter().all(|(_, v)| *v != rendered),
                    "{what}: the invalid id is not sent back"
                );
            }
        }
        assert!(
            publisher.published.lock().expect("lock").is_empty(),
            "{what}: nothing published"
        );
    }
}

#[tokio::test]
async fn a_paused_room_refuses_questions_with_409_and_publishes_nothing() {
    use crate::control::{CachedRooms, ControlStore, MemoryStore};
    let store = Arc::new(MemoryStore::new());
    let publisher = Arc::new(FakePublisher::default());
    let intake = intake_with(publisher.clone())
        .with_control(Arc::new(CachedRooms::new(store.clone(), std::time::Duration::ZERO)));
    let room = RoomName::parse("rust-101").expect("room");
    store
        .set_room_state(&room, RoomState::Paused, jiff::Timestamp::now())
        .await
        .expect("pause");

    let form = intake.handle(event!("intake-get-room-form-en.json")).await;
    assert_eq!(form.status(), 200);
    assert!(
        body_text(&form).contains("paused questions"),
        "the form says so before anyone types"
    );

    let response = intake.handle(event!("intake-post-json.json")).await;
    assert_eq!(response.status(), 409);
    let body = body_json(&response);
    assert_eq!(body["error"]["code"], "room_paused", "{body}");
    assert!(
        publisher.attempted.lock().expect("lock").is_empty(),
        "nothing published"
    );

    // Without JavaScript: the form again, with the text kept and the reason.
    let response = intake
        .handle(form_post(&[("text", "まだ質問できますか"), ("room", "rust-101")]))
        .await;
    assert_eq!(response.status(), 409);
    let page = body_text(&response);
    assert!(page.contains("まだ質問できますか"), "the text is kept");
    assert!(page.contains("一時停止"), "the page says questions are paused");

    store
        .set_room_state(&room, RoomState::Open, jiff::Timestamp::now())
        .await
        .expect("open");
    let response = intake.handle(event!("intake-post-json.json")).await;
    assert_eq!(response.status(), 202, "open again: taken");
}

#[tokio::test]
async fn the_console_page_is_served_only_where_a_console_is_configured() {
    let publisher = Arc::new(FakePublisher::default());
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/intake-get-form.json")).expect("json");
    event["rawPath"] = "/instructor".into();
    event["requestContext"]["http"]["path"] = "/instructor".into();
    let get = || lambda_http::request::from_str(&event.to_string()).expect("event");
    assert_eq!(intake_with(publisher.clone()).handle(get()).await.status(), 404);
    let intake = intake_with(publisher).with_console_page(crate::console::PageAuth::Cognito {
        region: "ap-northeast-1".into(),
        client_id: "4example0clientid0000000000".into(),
    });
    let response = intake.handle(get()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), Some("text/html; charset=utf-8"));
    let csp = header(&response, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("connect-src 'self' https://cognito-idp.ap-northeast-1.amazonaws.com;"),
        "the page may reach its own API and Cognito, nothing else: {csp}"
    );
}
