//! The form in a real browser (Debian's Chromium, headless, through ChromeDriver) against the local runner: a
//! student on a phone asks in Japanese with an `@all` in it, sees the confirmation, and the question appears on
//! the board neutralised; then through a simulated chat outage three questions wait and arrive once each.
//! Screenshots of the form (phone-sized, ja and en) are saved to `tests/artifacts/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use qrelay_local::{LocalConfig, Running};
use qrelay_testkit::process::{Server, free_port};

const CHROMIUM: &str = "/usr/bin/chromium";

/// ChromeDriver on a free loopback port; it and the Chromium it starts are stopped when this is dropped, or
/// when the test binary ends however it ends.
struct Driver {
    url: String,
    _server: Server,
}

impl Driver {
    async fn start() -> Self {
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let args = [format!("--port={port}"), "--allowed-ips=127.0.0.1".to_owned()];
        let server = Server::spawn(&program, &args).unwrap_or_else(|e| {
            panic!("{program} could not start ({e}); .ci/setup installs chromium and chromium-driver")
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while qrelay::chat::http_client(std::time::Duration::from_secs(30))
            .unwrap()
            .get(format!("{url}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { url, _server: server }
    }

    /// A headless Chromium with a phone-sized window and an empty profile, that reaches out to nothing but us.
    async fn browser(&self, profile: &std::path::Path) -> Client {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=390,844".into(),
            "--lang=ja".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args, "prefs": { "intl.accept_languages": "ja,en" } }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

async fn wait_for_text(browser: &Client, css: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(expected) {
                    return text;
                }
            }
        }
        assert!(Instant::now() < deadline, "{css} never showed {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The texts on the board, once at least `n` messages are there.
async fn board_texts(browser: &Client, running: &Running, n: usize) -> Vec<String> {
    browser.goto(&format!("{}/board", running.url())).await.expect("board");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut texts = Vec::new();
        for element in browser.find_all(Locator::Css(".msg .text")).await.expect("find") {
            // textContent, not the rendered text: WebDriver drops zero-width spaces from what it calls visible.
            texts.push(element.prop("textContent").await.expect("text").unwrap_or_default());
        }
        if texts.len() >= n {
            return texts;
        }
        assert!(
            Instant::now() < deadline,
            "the board shows {} of {n} messages: {texts:?}",
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn ask(browser: &Client, running: &Running, text: &str) {
    browser
        .goto(&format!("{}/r/rust-101", running.url()))
        .await
        .expect("form");
    let textarea = browser.find(Locator::Css("#text")).await.expect("textarea");
    textarea.send_keys(text).await.expect("typing");
    browser
        .find(Locator::Css("#send"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#status.ok", "送信しました").await;
    let left = browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        left.as_deref(),
        Some(""),
        "the form is cleared once the question is queued"
    );
}

async fn click(browser: &Client, running: &Running, page: &str, button: &str) {
    browser.goto(&format!("{}/{page}", running.url())).await.expect("page");
    browser
        .find(Locator::Css(button))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#result", "").await;
}

#[tokio::test]
async fn a_student_asks_from_a_phone_and_the_question_reaches_the_board_once_even_through_an_outage() {
    let running = qrelay_local::start(LocalConfig::for_tests())
        .await
        .expect("local runner");
    let driver = Driver::start().await;
    let profile = std::env::temp_dir().join(format!("qrelay-chromium-{}", std::process::id()));
    let browser = driver.browser(&profile).await;
    scenario(&browser, &running).await;
    let result = console_scenario(&browser, &running).await;
    browser.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&profile);
    running.stop().await;
    result
}

async fn scenario(browser: &Client, running: &Running) {
    // The form on a phone, in Japanese (from the browser's language) and in English; kept as artifacts.
    browser
        .goto(&format!("{}/r/rust-101", running.url()))
        .await
        .expect("form");
    wait_for_text(browser, "h1", "匿名で質問する").await;
    std::fs::write(
        artifacts().join("form-ja-phone.png"),
        browser.screenshot().await.expect("png"),
    )
    .expect("save");
    browser
        .goto(&format!("{}/r/rust-101?lang=en", running.url()))
        .await
        .expect("form");
    wait_for_text(browser, "h1", "Ask a question anonymously").await;
    std::fs::write(
        artifacts().join("form-en-phone.png"),
        browser.screenshot().await.expect("png"),
    )
    .expect("save");

    // A Japanese question with @all in it: confirmed, and on the board without a live mention.
    ask(browser, running, "ライフタイム注釈がよくわかりません @all").await;
    let texts = board_texts(browser, running, 1).await;
    assert!(texts[0].contains("ライフタイム注釈がよくわかりません"), "{texts:?}");
    assert!(
        texts[0].contains("@\u{200B}all") && !texts[0].contains("@all"),
        "neutralised: {:?}",
        texts[0]
    );

    // The chat goes down; three questions are still taken.
    click(browser, running, "admin", "#down").await;
    for n in 1..=3 {
        ask(browser, running, &format!("停止中の質問 {n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        board_texts(browser, running, 1).await.len(),
        1,
        "nothing reaches the board during the outage"
    );

    // The chat comes back: all three arrive, each once.
    click(browser, running, "admin", "#up").await;
    let texts = board_texts(browser, running, 4).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts_later = board_texts(browser, running, 4).await;
    assert_eq!(texts_later.len(), 4, "no duplicates appear later: {texts_later:?}");
    for n in 1..=3 {
        let copies = texts
            .iter()
            .filter(|t| t.ends_with(&format!("停止中の質問 {n}")))
            .count();
        assert_eq!(copies, 1, "question {n} once: {texts:?}");
    }
}

/// The instructor's console on the local runner, in the same browser (one Chromium per run): a paused room as the
/// student's page sees it, and open again; a room under review whose questions wait until one is approved and one
/// rejected; a dead letter moved back after a dry run. A screenshot of the console is kept.
async fn console_scenario(browser: &Client, running: &Running) {
    let console = format!("{}/instructor?lang=en", running.url());
    // Paused: the student's form says so, and a question sent anyway is refused with the text kept.
    switch_room(browser, &console, "paused").await;
    browser
        .goto(&format!("{}/r/rust-101", running.url()))
        .await
        .expect("form");
    wait_for_text(browser, "body", "一時停止").await;
    let textarea = browser.find(Locator::Css("#text")).await.expect("textarea");
    textarea.send_keys("止まっていますか").await.expect("typing");
    browser
        .find(Locator::Css("#send"))
        .await
        .expect("send")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#status", "一時停止").await;
    let kept = browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("止まっていますか"), "the text is kept");

    // Review: two questions wait for the instructor; one is approved, one rejected.
    switch_room(browser, &console, "review").await;
    let before = running.system.board.len();
    ask(browser, running, "確認してから投稿される質問").await;
    ask(browser, running, "投稿されない質問").await;
    browser.goto(&console).await.expect("console");
    wait_for_text(browser, "#held", "投稿されない質問").await;
    std::fs::write(
        artifacts().join("console-phone.png"),
        browser.screenshot().await.expect("png"),
    )
    .expect("save");
    for (text, action) in [
        ("確認してから投稿される質問", "Approve"),
        ("投稿されない質問", "Reject"),
    ] {
        let items = browser.find_all(Locator::Css("#held li")).await.expect("held");
        let mut clicked = false;
        for item in items {
            if item.text().await.unwrap_or_default().contains(text) {
                for button in item.find_all(Locator::Css("button")).await.expect("buttons") {
                    if button.text().await.unwrap_or_default() == action {
                        button.click().await.expect("click");
                        clicked = true;
                        break;
                    }
                }
                break;
            }
        }
        assert!(clicked, "no {action} button for {text:?}");
        wait_for_text(
            browser,
            "#status",
            if action == "Approve" { "Approved" } else { "Rejected" },
        )
        .await;
    }
    let texts = board_texts(browser, running, before + 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts = if texts.len() > before + 1 {
        texts
    } else {
        board_texts(browser, running, before + 1).await
    };
    assert_eq!(
        texts.len(),
        before + 1,
        "only the approved question is posted: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("確認してから投稿される質問")),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.contains("投稿されない質問")), "{texts:?}");
    switch_room(browser, &console, "open").await;

    // A dead letter, as a long outage leaves one: the console counts it, shows the dry run, then moves it back.
    let qrelay_local::Backend::Memory(queues) = &running.system.backend else {
        panic!("the browser test runs on the in-process queue");
    };
    let dead = qrelay_testkit::samples::question("rust-101", "長い停止で届かなかった質問");
    queues.dead_letters.send(
        qrelay::domain::QuestionMessage::from(&dead).to_json(),
        std::collections::HashMap::new(),
    );
    browser.goto(&console).await.expect("console");
    wait_for_text(browser, "#dead-summary", "1 question(s) could not reach the chat").await;
    browser
        .find(Locator::Css("#dry-run"))
        .await
        .expect("dry run")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#dry-run-result", "1 question(s) would move back").await;
    browser
        .find(Locator::Css("#move-back"))
        .await
        .expect("move")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#status", "Moved 1 question(s) back").await;
    let texts = board_texts(browser, running, before + 2).await;
    assert!(
        texts.iter().any(|t| t.contains("長い停止で届かなかった質問")),
        "{texts:?}"
    );
}

/// Switches room rust-101 on the console page at `console`, and waits until the form would see it.
async fn switch_room(browser: &Client, console: &str, state: &str) {
    browser.goto(console).await.expect("console");
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("input[name='state-rust-101'][value='{state}']")))
        .await
        .expect("the room's switch")
        .click()
        .await
        .expect("click");
    wait_for_text(browser, "#status", "Room rust-101 is").await;
    // The intake and the consumer trust a room's state for a second locally (10 s deployed).
    tokio::time::sleep(Duration::from_millis(1100)).await;
}
