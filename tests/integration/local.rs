//! The local runner over HTTP: its in-process queue dead-letters and redrives like SQS, its instructor page
//! controls work (for this machine's own page only) and warns before questions are dead-lettered, the board shows
//! what the chat would, the QR code carries the address phones use, and with `AWS_ENDPOINT_URL` it runs on moto's
//! SNS and SQS instead.

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
    let retried = admin(&running, "retry-now", json!({})).await;
    assert_eq!(
        retried["message"], "1 waiting question is being tried again now.",
        "a sentence, not a status code: {retried}"
    );

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

fn client() -> reqwest::Client {
    qrelay::chat::http_client(Duration::from_secs(30)).unwrap()
}

/// The status and JSON body of a request to the instructor page.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_instructor_page_answers_its_own_page_and_refuses_other_sites_and_rebinding_hosts() {
    let running = qrelay_local::start(LocalConfig::for_tests()).await.expect("start");
    let url = running.url();
    let port = running.addr.port();
    let own_origin = format!("http://127.0.0.1:{port}");
    let retry = || client().post(format!("{url}/admin/retry-now"));

    // Refused: each request is one a web page in the instructor's browser could make.
    let refused = [
        (
            "a cross-site fetch or form",
            retry().header("origin", "https://evil.example").json(&json!({})),
        ),
        (
            "a DNS-rebinding page: its own name, resolving to 127.0.0.1",
            retry()
                .header("host", format!("evil.example:{port}"))
                .header("origin", format!("http://evil.example:{port}"))
                .json(&json!({})),
        ),
        ("a sandboxed frame", retry().header("origin", "null").json(&json!({}))),
        (
            "another port on this machine",
            retry()
                .header("origin", format!("http://127.0.0.1:{}", port.wrapping_add(1)))
                .json(&json!({})),
        ),
        (
            "a cross-site request without Origin",
            retry().header("sec-fetch-site", "cross-site").json(&json!({})),
        ),
        (
            "a form post (an old browser sends no Origin)",
            retry()
                .header("content-type", "application/x-www-form-urlencoded")
                .body("down=true"),
        ),
        (
            "a rebinding page reading the state",
            client()
                .get(format!("{url}/admin/state.json"))
                .header("host", format!("rebind.evil.example:{port}")),
        ),
        (
            "a rebinding page switching the chat off",
            client()
                .post(format!("{url}/admin/outage"))
                .header("host", format!("127.0.0.1.evil.example:{port}"))
                .json(&json!({ "down": true })),
        ),
    ];
    for (what, request) in refused {
        let (status, body) = send(request).await;
        assert_eq!(status, 403, "{what} is refused: {body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: a JSON error that says why: {body}"
        );
    }
    let before = state(&running).await;
    assert_eq!(before["chat_down"], false, "no refused request switched the chat off");
    assert_eq!(
        before["guarantee"], "exactly once",
        "the page states what the chat (the board) promises: {before}"
    );

    // Accepted: the instructor page's own requests, as Chromium sends them, and a command-line client.
    let (status, body) = send(
        client()
            .post(format!("{url}/admin/outage"))
            .header("origin", &own_origin)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({ "down": true })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The chat is now down")),
        "{body}"
    );
    let (status, body) = send(
        client()
            .post(format!("http://localhost:{port}/admin/outage"))
            .header("origin", format!("http://localhost:{port}"))
            .json(&json!({ "down": false })),
    )
    .await;
    assert_eq!(status, 200, "localhost is this machine too: {body}");
    let (status, body) = send(retry().json(&json!({}))).await;
    assert_eq!(status, 200, "curl sends neither Origin nor Sec-Fetch-Site: {body}");

    let page = client().get(format!("{url}/admin")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers().get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY"),
        "no other site may frame the page and steal a click"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_qr_code_links_to_the_address_phones_use() {
    let qr = |running: &Running, host: Option<&str>| {
        let mut request = client().get(format!("{}/r/rust-101/qr.svg", running.url()));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move {
            let response = request.send().await.expect("qr");
            assert_eq!(response.status(), 200);
            response.text().await.expect("svg")
        }
    };
    let plain = qrelay_local::start(LocalConfig::for_tests()).await.expect("start");
    // A phone reaching the runner at its network address gets a plain-HTTP link, as the runner speaks HTTP only.
    let phone_view = qr(&plain, Some("192.0.2.10:8080")).await;
    let explicit = client()
        .get(format!("{}/r/rust-101/qr.svg", plain.url()))
        .header("host", "192.0.2.10:8080")
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .expect("qr")
        .text()
        .await
        .expect("svg");
    assert_eq!(phone_view, explicit, "http://192.0.2.10:8080/r/rust-101, not https");
    let on_loopback = qr(&plain, None).await;
    assert_ne!(on_loopback, phone_view, "without a public URL, the loopback address");
    plain.stop().await;

    // With a public URL, the QR code the instructor opens on this machine links to it.
    let public = qrelay_local::start(LocalConfig {
        public_url: Some(qrelay_local::PublicUrl::parse("http://192.0.2.10:8080").expect("url")),
        ..LocalConfig::for_tests()
    })
    .await
    .expect("start");
    assert_eq!(public.public_url(), "http://192.0.2.10:8080");
    assert_eq!(
        qr(&public, None).await,
        phone_view,
        "the projected QR code carries the public URL"
    );
    public.stop().await;
}

#[tokio::test]
async fn the_instructor_page_warns_before_questions_are_dead_lettered() {
    // Retries ten minutes apart, so that only this test moves the receive count (as a long outage would).
    let running = qrelay_local::start(LocalConfig {
        backoff: qrelay::consumer::Backoff {
            base: Duration::from_secs(600),
            cap: Duration::from_secs(600),
        },
        ..LocalConfig::for_tests()
    })
    .await
    .expect("start");
    let qrelay_local::Backend::Memory(queues) = &running.system.backend else {
        panic!("the in-process queue");
    };
    admin(&running, "outage", json!({ "down": true })).await;
    ask(&running, "through a long outage").await;
    let first = eventually(&running, "a failed attempt", |s| s["depths"]["in_flight"] == 1).await;
    assert_eq!(
        first["warnings"],
        json!([]),
        "one failure is no reason to worry: {first}"
    );

    // Eleven more receives, each failing, as the outage goes on: twelve of thirty.
    let receive = || {
        queues.queue.release_all();
        let got = queues.queue.receive(10, Duration::from_secs(600));
        assert!(got.len() <= 1, "one question in the queue");
        got.len()
    };
    for _ in 0..11 {
        assert_eq!(receive(), 1);
    }
    let warned = state(&running).await;
    assert_eq!(
        warned["warnings"],
        json!([
            "1 question has been tried 12 of 30 times without reaching the chat; at this rate it moves to the \
             dead-letter queue in about 143 minutes. End the outage or fix the chat before then (\"Retry waiting \
             questions now\" delivers at once)."
        ]),
        "{warned}"
    );

    // The rest of the budget, and one receive more: SQS moves it to the dead-letter queue.
    for _ in 12..30 {
        assert_eq!(receive(), 1);
    }
    assert_eq!(receive(), 0, "the 31st receive moves it");
    let dead = state(&running).await;
    assert_eq!(dead["depths"]["dead_letters"], 1, "{dead}");
    assert_eq!(
        dead["warnings"],
        json!([
            "1 question is in the dead-letter queue and will not be retried: once the chat works, \"Redrive dead \
             letters\" brings it back."
        ]),
        "{dead}"
    );
    let page = client()
        .get(format!("{}/admin", running.url()))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("id=\"warnings\" role=\"status\""),
        "the page shows the warnings"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_board_shows_the_message_as_the_chat_renders_it() {
    let running = qrelay_local::start(LocalConfig::for_tests()).await.expect("start");
    ask(&running, "**太字** <b>tag</b> @all").await;
    eventually(&running, "delivery", |s| s["on_board"] == 1).await;

    let page = client()
        .get(format!("{}/board", running.url()))
        .send()
        .await
        .expect("board")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("<h2 id=\"ch-rust-101\">#rust-101"),
        "grouped by channel: {page}"
    );
    assert!(page.contains("<strong>Anonymous question</strong>"), "{page}");
    assert!(
        page.contains(
            "<blockquote><p><strong>太字</strong> &lt;\u{200B}b&gt;tag&lt;\u{200B}/b&gt; @\u{200B}all</p></blockquote>"
        ),
        "the question as a quote, its HTML as text, the mention defused: {page}"
    );
    let raw = running.system.board.messages_after(0)[0].posted_at.to_string();
    assert!(!page.contains(&raw), "no raw UTC timestamp: {page}");
    assert!(page.contains("asked <time datetime="), "{page}");
    running.stop().await;
}

/// The local console is the deployed console's API without the sign-in, behind the instructor page's guard: a
/// room under review holds a question until it is approved from the console, and then it reaches the board once.
#[tokio::test]
async fn the_local_console_holds_a_room_under_review_until_a_question_is_approved() {
    let running = qrelay_local::start(LocalConfig::for_tests()).await.expect("start");
    let api = |path: &str| format!("{}/instructor/api/{path}", running.url());

    let (status, page) = {
        let response = client()
            .get(format!("{}/instructor", running.url()))
            .send()
            .await
            .expect("page");
        (response.status().as_u16(), response.text().await.expect("text"))
    };
    assert_eq!(status, 200);
    assert!(page.contains(r#""auth":"local""#), "the local page signs nobody in");

    // Another site's page can't switch a room (the guard answers before the console does).
    let (status, refused) = send(
        client()
            .put(api("rooms/rust-101"))
            .header("Origin", "https://evil.example")
            .json(&json!({ "state": "open" })),
    )
    .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("cross_origin")));

    let (status, switched) = send(client().put(api("rooms/rust-101")).json(&json!({ "state": "review" }))).await;
    assert_eq!(
        (status, switched["state"].as_str()),
        (200, Some("review")),
        "{switched}"
    );
    // The intake and the consumer trust a room's state for a second locally.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let id = ask(&running, "held for the instructor").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let (_, overview) = send(client().get(api("overview"))).await;
        if overview["held"].as_array().is_some_and(|h| !h.is_empty()) {
            break overview["held"].clone();
        }
        assert!(Instant::now() < deadline, "never held: {overview}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held[0]["id"], id.as_str());
    assert_eq!(running.system.board.len(), 0, "not posted while held");

    for _ in 0..2 {
        let (status, approved) = send(
            client()
                .post(api(&format!("rooms/rust-101/held/{id}/approve")))
                .json(&json!({})),
        )
        .await;
        assert_eq!(
            (status, approved["status"].as_str()),
            (200, Some("approved")),
            "{approved}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.system.board.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the approved question never reached the board"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(running.system.board.len(), 1, "approved twice, on the board once");
    running.stop().await;
}
