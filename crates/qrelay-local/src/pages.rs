//! The local runner's own pages: the board (what the chat channel would show) and the instructor page. Both are
//! self-contained like the form: no external scripts, styles or fonts.

use qrelay::domain::Rooms;

/// The board: polls for new messages every second and shows them newest first, as text (never as HTML).
pub const BOARD: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>qrelay board</title>
<style>
:root { color-scheme: light dark; --bg:#fff; --fg:#1a1a1a; --muted:#555; --card:#f4f6f8; }
@media (prefers-color-scheme: dark) { :root { --bg:#121212; --fg:#f1f1f1; --muted:#bbb; --card:#1f1f1f; } }
body { margin:0; background:var(--bg); color:var(--fg); font:17px/1.5 system-ui, sans-serif; }
main { max-width:48rem; margin:0 auto; padding:1rem; }
.msg { background:var(--card); border-radius:8px; padding:0.75rem 1rem; margin:0.75rem 0; white-space:pre-wrap; overflow-wrap:anywhere; }
.meta { color:var(--muted); font-size:0.85rem; }
</style></head>
<body><main>
<h1>Chat board <span class="meta" id="count"></span></h1>
<p class="meta">What the course's chat channels receive, live. Each question appears once.</p>
<div id="messages"></div>
</main>
<script>
"use strict";
(function () {
  var after = 0, list = document.getElementById("messages"), count = document.getElementById("count");
  function add(m) {
    var div = document.createElement("div"); div.className = "msg"; div.dataset.id = m.id;
    var meta = document.createElement("div"); meta.className = "meta"; meta.textContent = "#" + m.channel + " · " + m.posted_at;
    var text = document.createElement("div"); text.className = "text"; text.textContent = m.text;
    div.appendChild(meta); div.appendChild(text); list.insertBefore(div, list.firstChild);
  }
  function poll() {
    fetch("board/messages.json?after=" + after).then(function (r) { return r.json(); }).then(function (ms) {
      ms.forEach(function (m) { add(m); after = m.seq; }); count.textContent = "(" + after + ")";
    }).catch(function () {}).then(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
</script></body></html>
"##;

/// The instructor page: queue and dead-letter depth, the outage switch, retry now, and the redrive.
pub fn admin(rooms: &Rooms) -> String {
    let links: String = rooms
        .iter()
        .map(|r| {
            let name = r.name();
            format!(
                "<li><a href=\"r/{name}\">/r/{name}</a> · <a href=\"r/{name}/qr.svg\">QR code</a> · channel #{}</li>",
                r.channel()
            )
        })
        .collect();
    ADMIN.replace("{{rooms}}", &links)
}

const ADMIN: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>qrelay instructor</title>
<style>
:root { color-scheme: light dark; }
body { margin:0; font:17px/1.5 system-ui, sans-serif; }
main { max-width:48rem; margin:0 auto; padding:1rem; }
button { min-height:44px; padding:0 1rem; margin:0.25rem 0.25rem 0.25rem 0; font:inherit; border-radius:8px; cursor:pointer; }
table { border-collapse:collapse; } td, th { padding:0.25rem 1rem 0.25rem 0; text-align:left; }
pre { white-space:pre-wrap; background:rgba(127,127,127,0.15); padding:0.75rem; border-radius:8px; }
</style></head>
<body><main>
<h1>Instructor</h1>
<h2>Rooms</h2><ul>{{rooms}}</ul>
<h2>Delivery</h2>
<table>
<tr><th>Chat</th><td id="chat">…</td></tr>
<tr><th>Waiting in the queue</th><td id="queue">…</td></tr>
<tr><th>Being delivered or backing off</th><td id="in_flight">…</td></tr>
<tr><th>Dead letters</th><td id="dead">…</td></tr>
<tr><th>On the board</th><td id="board">…</td></tr>
</table>
<p>
<button id="down">Simulate a chat outage</button>
<button id="up">End the outage</button>
<button id="retry">Retry waiting questions now</button>
</p>
<p>
<button id="dry">Redrive: dry run</button>
<button id="redrive">Redrive dead letters</button>
</p>
<pre id="result" aria-live="polite"></pre>
</main>
<script>
"use strict";
(function () {
  function $(id) { return document.getElementById(id); }
  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) })
      .then(function (r) { return r.text().then(function (t) { $("result").textContent = r.status + " " + t; refresh(); }); });
  }
  function refresh() {
    fetch("admin/state.json").then(function (r) { return r.json(); }).then(function (s) {
      $("chat").textContent = s.chat + (s.chat_down ? " (simulated outage)" : " (up)");
      $("queue").textContent = s.depths.queue; $("in_flight").textContent = s.depths.in_flight;
      $("dead").textContent = s.depths.dead_letters; $("board").textContent = s.on_board;
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
