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
        self.browser_with(profile, &[]).await
    }

    /// The same, with more command-line switches (`--blink-settings=scriptEnabled=false`: a phone without JavaScript).
    async fn browser_with(&self, profile: &std::path::Path, extra: &[&str]) -> Client {
        self.session(profile, extra, None).await
    }

    /// A phone's screen of exactly `width` x `height` CSS pixels (ChromeDriver's mobile emulation: a desktop
    /// window can't be narrower than 500 px).
    async fn phone(&self, profile: &std::path::Path, width: u32, height: u32) -> Client {
        let metrics = serde_json::json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true } });
        self.session(profile, &[], Some(metrics)).await
    }

    async fn session(&self, profile: &std::path::Path, extra: &[&str], emulation: Option<serde_json::Value>) -> Client {
        let mut args = vec![
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
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), {
            let mut options =
                serde_json::json!({ "binary": CHROMIUM, "args": args, "prefs": { "intl.accept_languages": "ja,en" } });
            if let Some(emulation) = emulation {
                options["mobileEmulation"] = emulation;
            }
            options
        });
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
        // Read in one script: the board re-renders as messages arrive, so elements found one call earlier may be
        // gone by the next (a stale element). textContent, not the rendered text: WebDriver drops zero-width spaces
        // from what it calls visible.
        let read = browser
            .execute(
                "return Array.from(document.querySelectorAll('.msg .text'), e => e.textContent);",
                vec![],
            )
            .await
            .expect("read the board");
        let texts: Vec<String> = serde_json::from_value(read).expect("a list of texts");
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
    press_send(browser).await;
    wait_for_text(browser, "#status.ok", "送信しました").await;
    assert_eq!(
        text_value(browser).await,
        "",
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
    console_scenario(&browser, &running).await;
    let result = form_scenario(&browser, &running).await;
    browser.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&profile);
    // A phone without JavaScript: a second session of the same driver.
    let no_js_profile = std::env::temp_dir().join(format!("qrelay-chromium-nojs-{}", std::process::id()));
    let no_js = driver
        .browser_with(&no_js_profile, &["--blink-settings=scriptEnabled=false"])
        .await;
    without_javascript(&no_js, &running).await;
    no_js.close().await.expect("close the browser");
    let _ = std::fs::remove_dir_all(&no_js_profile);
    // Send stays on screen while typing, on a 320x568 and a 390x844 phone with the on-screen keyboard open: the
    // screen left above the keyboard (260 and 300 px high) is what the page gets.
    for (width, height, keyboard) in [(320, 568, 260), (390, 844, 300)] {
        let phone_profile = std::env::temp_dir().join(format!("qrelay-chromium-{width}-{}", std::process::id()));
        let phone = driver.phone(&phone_profile, width, height - keyboard).await;
        send_stays_visible(&phone, &running, width, height).await;
        phone.close().await.expect("close the browser");
        let _ = std::fs::remove_dir_all(&phone_profile);
    }
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
    press_send(browser).await;
    wait_for_text(browser, "#status", "一時停止").await;
    assert_eq!(text_value(browser).await, "止まっていますか", "the text is kept");

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

/// Loses the answers to `POST /questions` while `lose` is set: the question goes through, its `202` never
/// comes back (a phone on a train going through a tunnel).
#[derive(Default)]
struct LoseAnswers {
    lose: std::sync::atomic::AtomicBool,
}

impl qrelay_testkit::proxy::Observer for LoseAnswers {
    fn lose_answer(&self, method: &axum::http::Method, path: &str) -> bool {
        method == axum::http::Method::POST
            && path.ends_with("/questions")
            && self.lose.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn text_value(browser: &Client) -> String {
    browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

async fn press_send(browser: &Client) {
    browser
        .find(Locator::Css("#send"))
        .await
        .expect("send")
        .click()
        .await
        .expect("click");
}

/// How many board messages end with `text`.
async fn on_board(browser: &Client, running: &Running, text: &str) -> usize {
    board_texts(browser, running, 0)
        .await
        .iter()
        .filter(|t| t.ends_with(text))
        .count()
}

/// Waits until the board has `text` (at least once).
async fn until_on_board(browser: &Client, running: &Running, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_board(browser, running, text).await == 0 {
        assert!(Instant::now() < deadline, "{text:?} never reached the board");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The student's phone on a bad network, through a proxy that can lose answers: a lost answer ends in an error
/// with the text kept and Send usable, and the retry is posted once; an edit after a lost answer is sent as a new
/// question and posted; a reload keeps the draft; Send stays visible with the keyboard open on a small phone. Then
/// the join screen, the board, and axe-core on every page.
async fn form_scenario(browser: &Client, running: &Running) {
    let lose = std::sync::Arc::new(LoseAnswers::default());
    let proxy = qrelay_testkit::proxy::Proxy::start(&running.url(), lose.clone())
        .await
        .expect("proxy");
    let form = format!("{}/r/rust-101?lang=en", proxy.url);
    let lose_answers = |on: bool| lose.lose.store(on, std::sync::atomic::Ordering::SeqCst);

    // A lost answer: after the form's timeout (15 s) the student is told, keeps the text, and can send again.
    browser.goto(&form).await.expect("form");
    let text = "What does the borrow checker check?";
    browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .send_keys(text)
        .await
        .expect("typing");
    lose_answers(true);
    press_send(browser).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = browser
            .find(Locator::Css("#status"))
            .await
            .expect("status")
            .text()
            .await
            .unwrap_or_default();
        if status.contains("did not answer") {
            break;
        }
        assert!(Instant::now() < deadline, "no error after a lost answer: {status:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(text_value(browser).await, text, "the text is kept");
    let enabled = browser
        .find(Locator::Css("#send"))
        .await
        .expect("send")
        .is_enabled()
        .await
        .expect("enabled");
    assert!(enabled, "Send works again");
    lose_answers(false);
    press_send(browser).await;
    wait_for_text(browser, "#status.ok", "Sent").await;
    until_on_board(browser, running, text).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        on_board(browser, running, text).await,
        1,
        "sent twice under one id, posted once"
    );

    // An edit after a lost answer is a new question, said so, and the edited text is posted.
    browser.goto(&form).await.expect("form");
    let original = "Is a slice a pointer?";
    let edited = "Is a slice a pointer and a length?";
    browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .send_keys(original)
        .await
        .expect("typing");
    lose_answers(true);
    press_send(browser).await;
    wait_for_text(browser, "#status", "did not answer").await;
    lose_answers(false);
    let textarea = browser.find(Locator::Css("#text")).await.expect("textarea");
    textarea.clear().await.expect("clear");
    textarea.send_keys(edited).await.expect("typing");
    press_send(browser).await;
    let said = wait_for_text(browser, "#status.ok", "Sent").await;
    assert!(
        said.contains("new question"),
        "the page says the edit goes as a new question: {said:?}"
    );
    until_on_board(browser, running, edited).await;

    // A draft survives a reload.
    browser.goto(&form).await.expect("form");
    let draft = "A draft the student has not sent";
    browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .send_keys(draft)
        .await
        .expect("typing");
    browser.refresh().await.expect("reload");
    let deadline = Instant::now() + Duration::from_secs(10);
    while text_value(browser).await != draft {
        assert!(
            Instant::now() < deadline,
            "the draft was lost on reload: {:?}",
            text_value(browser).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The join screen, projected: the QR code fills most of a 1920x1080 screen.
    // The page itself gets 1920x1080: the browser's frame is added around it.
    let frame = browser
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .expect("frame");
    let frame = |i: usize| frame[i].as_u64().unwrap_or(0) as u32;
    browser
        .set_window_size(1920 + frame(0), 1080 + frame(1))
        .await
        .expect("projector");
    browser
        .goto(&format!("{}/r/rust-101/join", running.url()))
        .await
        .expect("join");
    wait_for_text(browser, "h1", "rust-101").await;
    let qr_height = browser
        .execute(
            "return document.querySelector('.qr svg').getBoundingClientRect().height;",
            vec![],
        )
        .await
        .expect("measure");
    let qr_height = qr_height.as_f64().unwrap_or_default();
    assert!(
        qr_height >= 0.6 * 1080.0 * 0.9,
        "the QR code fills most of the screen: {qr_height} px"
    );
    std::fs::write(
        artifacts().join("join-1920x1080.png"),
        browser.screenshot().await.expect("png"),
    )
    .expect("save");
    browser.goto(&format!("{}/board", running.url())).await.expect("board");
    wait_for_text(browser, "body", edited).await;
    std::fs::write(artifacts().join("board.png"), browser.screenshot().await.expect("png")).expect("save");
    browser.set_window_size(390, 844).await.expect("phone");

    // No accessibility violations on any page a student or the instructor sees.
    for (page, path) in [
        ("form", "/r/rust-101"),
        ("form, English", "/r/rust-101?lang=en"),
        ("join screen", "/r/rust-101/join"),
        ("board", "/board"),
        ("admin", "/admin"),
        ("console", "/instructor?lang=en"),
        ("404", "/no-such-page"),
    ] {
        browser.goto(&format!("{}{path}", running.url())).await.expect("page");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let violations = axe(browser).await;
        assert!(
            violations.is_empty(),
            "axe-core finds violations on the {page} ({path}): {violations:#?}"
        );
    }
}

/// axe-core's violations on the current page (npm's axe-core, which .ci/setup installs into .node/).
async fn axe(browser: &Client) -> Vec<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.node/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run .ci/setup (it installs axe-core from npm)", path.display()));
    browser.execute(&source, vec![]).await.expect("inject axe-core");
    let result = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.map(v => \
               ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) }))))\
               .catch(e => done([{ id: 'axe-failed', help: String(e) }]));",
            vec![],
        )
        .await
        .expect("axe.run");
    result.as_array().cloned().unwrap_or_default()
}

/// A phone without JavaScript: an over-long paste goes to the server, which refuses it with the text kept (no
/// `maxlength` cut it short), and the counter, which only the script can keep, is not shown.
async fn without_javascript(browser: &Client, running: &Running) {
    browser
        .goto(&format!("{}/r/rust-101?lang=en", running.url()))
        .await
        .expect("form");
    let counter_shown = browser
        .find(Locator::Css("#counter"))
        .await
        .expect("counter")
        .is_displayed()
        .await
        .expect("shown");
    assert!(!counter_shown, "no counter without JavaScript");
    let long = "あ".repeat(1001) + " end";
    browser
        .find(Locator::Css("#text"))
        .await
        .expect("textarea")
        .send_keys(&long)
        .await
        .expect("paste");
    press_send(browser).await;
    wait_for_text(browser, "#status", "too long").await;
    assert_eq!(text_value(browser).await, long, "the whole text is kept, nothing cut");
}

/// With the keyboard open (the page gets only the screen above it), typing in the question keeps Send on screen.
async fn send_stays_visible(browser: &Client, running: &Running, width: u32, height: u32) {
    browser
        .goto(&format!("{}/r/rust-101", running.url()))
        .await
        .expect("form");
    // Focused as a tap on its visible part would (its middle may be under the sticky Send bar already).
    browser
        .execute("document.getElementById('text').focus();", vec![])
        .await
        .expect("focus");
    let textarea = browser.find(Locator::Css("#text")).await.expect("textarea");
    textarea
        .send_keys("キーボードが開いていても送信ボタンが見えますか？ 長めの質問を書いています。")
        .await
        .expect("typing");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let measured = browser
        .execute(
            "const r = document.getElementById('send').getBoundingClientRect();\
             return { top: r.top, bottom: r.bottom, height: r.height, viewport: window.innerHeight,\
                      width: window.innerWidth, focused: document.activeElement && document.activeElement.id };",
            vec![],
        )
        .await
        .expect("measure");
    let number = |key: &str| measured[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(number("width"), f64::from(width), "the phone's width: {measured}");
    assert_eq!(measured["focused"], "text", "typing: {measured}");
    assert!(
        number("top") >= 0.0 && number("bottom") <= number("viewport") && number("height") > 0.0,
        "Send is off screen with the keyboard open on a {width}x{height} phone: {measured}"
    );
    std::fs::write(
        artifacts().join(format!("form-keyboard-{width}x{height}.png")),
        browser.screenshot().await.expect("png"),
    )
    .expect("save");
}
