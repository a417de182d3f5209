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
    let result = scenario(&browser, &running).await;
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
