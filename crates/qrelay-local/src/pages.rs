//! The local runner's own pages: the board (what the chat channels would show) and the instructor page. Both are
//! self-contained like the form: no external scripts, styles or fonts. The board is rendered here, on the
//! server, so that every character of a question goes through one escaping function ([`markdown`]).

use jiff::tz::TimeZone;
use qrelay::domain::Rooms;

use crate::board::{BoardMessage, Channel};
use crate::markdown::{escape, message_html};

/// A delivery this much later than the question was asked is shown with its own time (an outage, a retry).
const SHOW_DELIVERY_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The board page with its channels rendered; a script polls for new messages every second and redraws them.
pub fn board(channels: &[Channel], delivered: usize, tz: &TimeZone) -> String {
    BOARD
        .replace("{{count}}", &delivered.to_string())
        .replace("{{zone}}", &escape(tz.iana_name().unwrap_or("the runner's TIME_ZONE")))
        .replace("{{channels}}", &board_channels(channels, tz))
}

/// The channels as HTML: a section per channel, its questions in the order they were asked, each as the chat
/// would render it, with the time of asking in `tz` (`HH:MM:SS`).
pub fn board_channels(channels: &[Channel], tz: &TimeZone) -> String {
    if channels.is_empty() {
        return "<p class=\"empty\">No questions yet. They appear here as the chat would show them.</p>".to_owned();
    }
    let mut out = String::new();
    for channel in channels {
        let name = escape(&channel.name);
        let n = channel.messages.len();
        let noun = if n == 1 { "question" } else { "questions" };
        out.push_str(&format!(
            "<section aria-labelledby=\"ch-{name}\"><h2 id=\"ch-{name}\">#{name} <span class=\"meta\">{n} {noun}</span></h2>\n<ol class=\"msgs\">\n"
        ));
        for message in &channel.messages {
            out.push_str(&message_item(message, tz));
        }
        out.push_str("</ol></section>\n");
    }
    out
}

fn message_item(message: &BoardMessage, tz: &TimeZone) -> String {
    let asked = message.asked_at();
    let mut meta = format!("asked {}", time(asked, tz));
    if message.posted_at.duration_since(asked) >= SHOW_DELIVERY_AFTER {
        meta.push_str(&format!(" · delivered {}", time(message.posted_at, tz)));
    }
    format!(
        "<li class=\"msg\" data-id=\"{id}\"><p class=\"meta\">{meta}</p><div class=\"text\">{text}</div></li>\n",
        id = escape(&message.id),
        text = message_html(&message.text),
    )
}

/// `<time>` with the local clock time, `HH:MM:SS`, and the exact instant for machines.
fn time(at: jiff::Timestamp, tz: &TimeZone) -> String {
    let zoned = at.to_zoned(tz.clone());
    format!(
        "<time datetime=\"{}\">{}</time>",
        zoned.timestamp().strftime("%Y-%m-%dT%H:%M:%SZ"),
        zoned.strftime("%H:%M:%S")
    )
}

const BOARD: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>qrelay board</title>
<style>
:root { color-scheme: light dark; --bg:#fff; --fg:#1a1a1a; --muted:#4d4d4d; --card:#f4f6f8; --quote:#0b57d0; }
@media (prefers-color-scheme: dark) { :root { --bg:#121212; --fg:#f1f1f1; --muted:#c4c4c4; --card:#1f1f1f; --quote:#8ab4f8; } }
body { margin:0; background:var(--bg); color:var(--fg); font:17px/1.5 system-ui, -apple-system, "Hiragino Sans", "Noto Sans JP", sans-serif; }
main { max-width:48rem; margin:0 auto; padding:1rem; }
h2 { margin:1.5rem 0 0.5rem; font-size:1.2rem; }
.msgs { list-style:none; margin:0; padding:0; }
.msg { background:var(--card); border-radius:8px; padding:0.75rem 1rem; margin:0.75rem 0; overflow-wrap:anywhere; }
.msg p { margin:0; }
.msg blockquote { margin:0.5rem 0 0; padding:0 0 0 0.75rem; border-left:4px solid var(--quote); }
.meta { color:var(--muted); font-size:0.9rem; font-weight:normal; }
</style></head>
<body><main>
<h1>Chat board <span class="meta">(<span id="count">{{count}}</span> delivered)</span></h1>
<p class="meta">What the course's chat channels receive, live, as the chat shows it: each room's questions in the
order they were asked, each once. Times are {{zone}} time.</p>
<div id="channels">{{channels}}</div>
</main>
<script>
"use strict";
(function () {
  var count = document.getElementById("count"), channels = document.getElementById("channels");
  var after = parseInt(count.textContent, 10) || 0;
  function redraw() {
    return fetch("board/channels.html").then(function (r) { return r.text(); }).then(function (html) {
      channels.innerHTML = html;
    });
  }
  function poll() {
    fetch("board/messages.json?after=" + after).then(function (r) { return r.json(); }).then(function (ms) {
      if (ms.length === 0) { return; }
      after = ms[ms.length - 1].seq; count.textContent = after;
      return redraw();
    }).catch(function () {}).then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script></body></html>
"##;

/// The instructor page: queue and dead-letter depth, warnings, the outage switch, retry now, and the redrive.
pub fn admin(rooms: &Rooms) -> String {
    let links: String = rooms
        .iter()
        .map(|r| {
            let name = r.name();
            format!(
                "<li><a href=\"r/{name}\">/r/{name}</a> · <a href=\"r/{name}/qr.svg\">QR code</a> · channel #{}</li>",
                escape(r.channel())
            )
        })
        .collect();
    ADMIN.replace("{{rooms}}", &links)
}

const ADMIN: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>qrelay instructor</title>
<style>
:root { color-scheme: light dark; --bg:#fff; --fg:#1a1a1a; --warn-bg:#fff4e5; --warn-fg:#5c3200; --warn-border:#b35c00; --accent:#0b57d0; }
@media (prefers-color-scheme: dark) { :root { --bg:#121212; --fg:#f1f1f1; --warn-bg:#3a2600; --warn-fg:#ffe0b2; --warn-border:#ffb74d; --accent:#8ab4f8; } }
body { margin:0; background:var(--bg); color:var(--fg); font:17px/1.5 system-ui, sans-serif; }
main { max-width:48rem; margin:0 auto; padding:1rem; }
a { color:var(--accent); }
button { min-height:44px; padding:0 1rem; margin:0.25rem 0.25rem 0.25rem 0; font:inherit; border-radius:8px; cursor:pointer; }
table { border-collapse:collapse; } td, th { padding:0.25rem 1rem 0.25rem 0; text-align:left; }
#warnings:empty, #result:empty { display:none; }
#warnings p { background:var(--warn-bg); color:var(--warn-fg); border-left:6px solid var(--warn-border); padding:0.75rem 1rem; border-radius:8px; margin:0.75rem 0; }
#result { background:rgba(127,127,127,0.15); padding:0.75rem; border-radius:8px; }
</style></head>
<body><main>
<h1>Instructor</h1>
<p><a href="instructor">The instructor's console</a>: pause a room, review held questions, redrive (as deployed, without the sign-in). This page adds the local tools.</p>
<div id="warnings" role="status" aria-live="polite"></div>
<h2>Rooms</h2><ul>{{rooms}}</ul>
<h2>Delivery</h2>
<table>
<tr><th scope="row">Chat</th><td id="chat">…</td></tr>
<tr><th scope="row">Waiting in the queue</th><td id="queue">…</td></tr>
<tr><th scope="row">Being delivered or backing off</th><td id="in_flight">…</td></tr>
<tr><th scope="row">Dead letters</th><td id="dead">…</td></tr>
<tr><th scope="row">On the board</th><td id="board">…</td></tr>
</table>
<p>
<button id="down" type="button">Simulate a chat outage</button>
<button id="up" type="button">End the outage</button>
<button id="retry" type="button">Retry waiting questions now</button>
</p>
<p>
<button id="dry" type="button">Redrive: dry run</button>
<button id="redrive" type="button">Redrive dead letters</button>
</p>
<p id="result" aria-live="polite"></p>
</main>
<script>
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }
  var shown = "";
  function say(r, body) {
    var text = (body && body.message) || (body && body.error && body.error.message) || ("The runner answered " + r.status + ".");
    $("result").textContent = text;
  }
  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) })
      .then(function (r) { return r.json().catch(function () { return null; }).then(function (b) { say(r, b); refresh(); }); })
      .catch(function () { $("result").textContent = "The runner did not answer: is it still running?"; });
  }
  function refresh() {
    fetch("admin/state.json").then(function (r) { return r.json(); }).then(function (s) {
      $("chat").textContent = s.chat + ", " + s.guarantee + (s.chat_down ? " (simulated outage)" : " (up)");
      $("queue").textContent = s.depths.queue; $("in_flight").textContent = s.depths.in_flight;
      $("dead").textContent = s.depths.dead_letters; $("board").textContent = s.on_board;
      var joined = s.warnings.join("\n");
      if (joined !== shown) {
        shown = joined; var box = $("warnings"); box.textContent = "";
        s.warnings.forEach(function (w) { var p = document.createElement("p"); p.textContent = w; box.appendChild(p); });
      }
    }).catch(function () {});
  }
  $("down").onclick = function () { post("admin/outage", { down: true }); };
  $("up").onclick = function () { post("admin/outage", { down: false }); };
  $("retry").onclick = function () { post("admin/retry-now"); };
  $("dry").onclick = function () { post("admin/redrive", { dry_run: true }); };
  $("redrive").onclick = function () { post("admin/redrive", {}); };
  refresh(); setInterval(refresh, 1000);
})();
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: usize, channel: &str, text: &str, asked: &str, posted: &str) -> BoardMessage {
        BoardMessage {
            seq,
            id: format!("id-{seq}"),
            channel: channel.to_owned(),
            text: text.to_owned(),
            posted_at: posted.parse().expect("time"),
            submitted_at: Some(asked.parse().expect("time")),
        }
    }

    fn tokyo() -> TimeZone {
        TimeZone::get("Asia/Tokyo").expect("bundled tzdb")
    }

    #[test]
    fn a_message_shows_rendered_text_and_the_local_clock_time() {
        let m = message(
            1,
            "rust-101",
            "❓ **Anonymous question** · 2026-11-22 18:30 JST\n> <b>hi</b> @\u{200B}all",
            "2026-11-22T09:30:05.123456789Z",
            "2026-11-22T09:30:06Z",
        );
        let html = board_channels(
            &[Channel {
                name: "rust-101".into(),
                messages: vec![m],
            }],
            &tokyo(),
        );
        assert!(
            html.contains("<h2 id=\"ch-rust-101\">#rust-101 <span class=\"meta\">1 question</span></h2>"),
            "{html}"
        );
        assert!(
            html.contains("<p class=\"meta\">asked <time datetime=\"2026-11-22T09:30:05Z\">18:30:05</time></p>"),
            "local HH:MM:SS, no nanoseconds, no delivery time when prompt: {html}"
        );
        assert!(html.contains("<strong>Anonymous question</strong>"), "{html}");
        assert!(
            html.contains("<blockquote><p>&lt;b&gt;hi&lt;/b&gt; @\u{200B}all</p></blockquote>"),
            "{html}"
        );
        assert!(!html.contains("**") && !html.contains("<b>"), "{html}");
    }

    #[test]
    fn a_late_delivery_shows_both_times() {
        let m = message(1, "general", "q", "2026-11-22T09:30:00Z", "2026-11-22T09:42:10Z");
        let html = board_channels(
            &[Channel {
                name: "general".into(),
                messages: vec![m],
            }],
            &tokyo(),
        );
        assert!(html.contains("asked <time datetime=\"2026-11-22T09:30:00Z\">18:30:00</time> · delivered <time datetime=\"2026-11-22T09:42:10Z\">18:42:10</time>"), "{html}");
    }

    #[test]
    fn an_empty_board_says_so() {
        let page = board(&[], 0, &tokyo());
        assert!(page.contains("No questions yet"), "{page}");
        assert!(page.contains("Times are Asia/Tokyo time."), "{page}");
    }

    #[test]
    fn channel_names_are_escaped() {
        let m = message(1, "a\"<x>", "q", "2026-11-22T09:30:00Z", "2026-11-22T09:30:00Z");
        let html = board_channels(
            &[Channel {
                name: "a\"<x>".into(),
                messages: vec![m],
            }],
            &tokyo(),
        );
        assert!(!html.contains("<x>") && html.contains("#a&quot;&lt;x&gt;"), "{html}");
    }
}
