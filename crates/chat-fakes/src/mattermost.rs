//! A fake of Mattermost's REST API v4: the three calls qrelay makes, answering as <https://developers.mattermost.com/api-documentation/>
//! documents.
//!
//! - `GET /api/v4/teams/name/{team_name}/channels/name/{channel_name}`: 200 and the channel object; 404 when the
//!   team or channel does not exist (or the bot can't see it), 403 when the bot is not on the team.
//! - `POST /api/v4/posts` with `{channel_id, message, props}`: 201 and the post object. 403 when the bot is not a
//!   member of the channel, 400 for a message over 16,383 characters or a client-set `id`. Mattermost has no
//!   idempotency key a client can rely on: the same body sent twice is stored twice (the duplicate).
//! - `GET /api/v4/channels/{channel_id}/posts?per_page=…` (default 60, at most 200): `{"order": [ids, newest
//!   first], "posts": {id: post}}`, each post with its `props`.
//! - Errors are Mattermost's AppError JSON `{"id", "message", "detailed_error", "request_id", "status_code"}`; a
//!   missing or wrong token answers 401. The rate limiter (the `throttled` library) answers 429 `limit exceeded`
//!   with `X-Ratelimit-Limit`, `X-Ratelimit-Remaining`, `X-Ratelimit-Reset` (SECONDS until the limit resets, not a
//!   time) and `Retry-After` (seconds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::lock;
use crate::{Faults, Running};

/// Mattermost's limit on a post's `message`, in characters (runes): `PostMessageMaxRunesV2`.
pub const MAX_MESSAGE_RUNES: usize = 16_383;

/// A post the fake stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPost {
    pub id: String,
    pub channel_id: String,
    pub message: String,
    pub props: Value,
}

/// A channel the fake knows.
#[derive(Debug, Clone)]
struct Channel {
    id: String,
    team: String,
    name: String,
    /// Whether the bot is a member (false: 403 on posting).
    member: bool,
}

/// The fake's state: shared with the handlers, inspected by tests.
#[derive(Debug)]
pub struct Mattermost {
    token: Mutex<String>,
    /// Teams the bot is on; a channel of another team answers 403 on lookup.
    teams: Mutex<Vec<String>>,
    channels: Mutex<Vec<Channel>>,
    posts: Mutex<Vec<StoredPost>>,
    /// Answer 429 with this many seconds in `X-Ratelimit-Reset` and `Retry-After` while set.
    rate_limited: Mutex<Option<u64>>,
    next_id: AtomicU64,
    calls: Mutex<HashMap<&'static str, usize>>,
    pub faults: Faults,
}

impl Mattermost {
    /// A fake accepting `token`, with `channels` given as `(team, channel name)`, the bot on each team and in each
    /// channel.
    pub fn new(token: &str, channels: &[(&str, &str)]) -> Arc<Self> {
        let fake = Arc::new(Self {
            token: Mutex::new(token.to_owned()),
            teams: Mutex::new(Vec::new()),
            channels: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
            rate_limited: Mutex::new(None),
            next_id: AtomicU64::new(1),
            calls: Mutex::new(HashMap::new()),
            faults: Faults::default(),
        });
        for (team, channel) in channels {
            fake.add_channel(team, channel, true);
        }
        fake
    }

    pub async fn serve(self: &Arc<Self>) -> Running {
        Running::serve(self.router()).await
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/api/v4/teams/name/{team}/channels/name/{channel}",
                get(channel_by_name),
            )
            .route("/api/v4/posts", post(create_post))
            .route("/api/v4/channels/{channel_id}/posts", get(channel_posts))
            .with_state(self.clone())
    }

    /// Adds a channel of `team` (the bot on the team), with the bot a member of it or not. Returns its id.
    pub fn add_channel(&self, team: &str, name: &str, member: bool) -> String {
        let mut teams = lock(&self.teams);
        if !teams.iter().any(|t| t == team) {
            teams.push(team.to_owned());
        }
        let id = self.new_id();
        lock(&self.channels).push(Channel {
            id: id.clone(),
            team: team.to_owned(),
            name: name.to_owned(),
            member,
        });
        id
    }

    /// Adds a channel of a team the bot is not on (lookup answers 403).
    pub fn add_foreign_team_channel(&self, team: &str, name: &str) {
        let id = self.new_id();
        lock(&self.channels).push(Channel {
            id,
            team: team.to_owned(),
            name: name.to_owned(),
            member: false,
        });
    }

    /// The id of `team`'s channel `name`, if it exists.
    pub fn channel_id(&self, team: &str, name: &str) -> Option<String> {
        lock(&self.channels)
            .iter()
            .find(|c| c.team == team && c.name == name)
            .map(|c| c.id.clone())
    }

    /// Replaces the token: the old one answers 401 from now on.
    pub fn set_token(&self, token: &str) {
        *lock(&self.token) = token.to_owned();
    }

    /// Answers 429 with `secs` until the reset while set.
    pub fn rate_limit(&self, secs: Option<u64>) {
        *lock(&self.rate_limited) = secs;
    }

    /// The posts stored, oldest first.
    pub fn posts(&self) -> Vec<StoredPost> {
        lock(&self.posts).clone()
    }

    /// How many requests of `kind` (`lookup`, `create`, `posts`) were answered.
    pub fn calls(&self, kind: &'static str) -> usize {
        lock(&self.calls).get(kind).copied().unwrap_or(0)
    }

    fn count(&self, kind: &'static str) {
        *lock(&self.calls).entry(kind).or_default() += 1;
    }

    /// Mattermost's ids: 26 lowercase letters and digits.
    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        format!("{n:0>26}")
            .chars()
            .map(|c| if c == '0' { 'a' } else { c })
            .collect()
    }

    /// A forced failure, the rate limit, or a refused token.
    fn common_refusal(&self, headers: &HeaderMap) -> Option<Response> {
        if let Some(status) = self.faults.failing() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(app_error(status, "fake.failing.app_error", "The server failed."));
        }
        if let Some(secs) = *lock(&self.rate_limited) {
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("x-ratelimit-limit", "10".to_owned()),
                        ("x-ratelimit-remaining", "0".to_owned()),
                        ("x-ratelimit-reset", secs.to_string()),
                        ("retry-after", secs.to_string()),
                    ],
                    "limit exceeded\n",
                )
                    .into_response(),
            );
        }
        let expected = format!("Bearer {}", lock(&self.token));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return Some(app_error(
                StatusCode::UNAUTHORIZED,
                "api.context.session_expired.app_error",
                "Invalid or expired session, please login again.",
            ));
        }
        None
    }

    async fn deliver(&self, response: Response, stored: bool) -> Response {
        let hold = if stored { self.faults.lose_this_answer() } else { None };
        if let Some(delay) = hold.or(self.faults.slowness()) {
            tokio::time::sleep(delay).await;
        }
        response
    }
}

fn app_error(status: StatusCode, id: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "id": id,
            "message": message,
            "detailed_error": "",
            "request_id": "fakerequestidaaaaaaaaaaaaa",
            "status_code": status.as_u16(),
        })),
    )
        .into_response()
}

fn forbidden() -> Response {
    app_error(
        StatusCode::FORBIDDEN,
        "api.context.permissions.app_error",
        "You do not have the appropriate permissions.",
    )
}

fn post_json(p: &StoredPost) -> Value {
    json!({
        "id": p.id,
        "create_at": 1_763_800_000_000u64,
        "update_at": 1_763_800_000_000u64,
        "edit_at": 0,
        "delete_at": 0,
        "is_pinned": false,
        "user_id": "botuseridaaaaaaaaaaaaaaaaa",
        "channel_id": p.channel_id,
        "root_id": "",
        "original_id": "",
        "message": p.message,
        "type": "",
        "props": p.props,
        "hashtags": "",
        "pending_post_id": "",
        "metadata": {},
    })
}

async fn channel_by_name(
    State(fake): State<Arc<Mattermost>>,
    Path((team, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    fake.count("lookup");
    if let Some(refusal) = fake.common_refusal(&headers) {
        return fake.deliver(refusal, false).await;
    }
    let channel = lock(&fake.channels)
        .iter()
        .find(|c| c.team == team && c.name == name)
        .cloned();
    let on_team = lock(&fake.teams).contains(&team);
    let answer = match channel {
        Some(_) if !on_team => forbidden(),
        Some(c) => Json(json!({
            "id": c.id,
            "team_id": format!("team{:a>22}", ""),
            "type": "O",
            "display_name": c.name,
            "name": c.name,
            "header": "",
            "purpose": "",
            "delete_at": 0,
        }))
        .into_response(),
        None => app_error(
            StatusCode::NOT_FOUND,
            "app.channel.get_by_name.missing.app_error",
            "Channel does not exist.",
        ),
    };
    fake.deliver(answer, false).await
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    props: Option<Value>,
}

async fn create_post(
    State(fake): State<Arc<Mattermost>>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Response {
    fake.count("create");
    if let Some(refusal) = fake.common_refusal(&headers) {
        return fake.deliver(refusal, false).await;
    }
    let channel = lock(&fake.channels).iter().find(|c| c.id == body.channel_id).cloned();
    let refusal = match channel {
        None => Some(app_error(
            StatusCode::NOT_FOUND,
            "app.channel.get.existing.app_error",
            "Unable to find the existing channel.",
        )),
        Some(c) if !c.member => Some(forbidden()),
        Some(_) if !body.id.is_empty() => Some(app_error(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_body_param.app_error",
            "Invalid or missing post in request body.",
        )),
        Some(_) if body.message.chars().count() > MAX_MESSAGE_RUNES => Some(app_error(
            StatusCode::BAD_REQUEST,
            "model.post.is_valid.message_length.app_error",
            "Post Message property is longer than the maximum permitted length.",
        )),
        Some(_) => None,
    };
    if let Some(refusal) = refusal {
        return fake.deliver(refusal, false).await;
    }
    let stored = StoredPost {
        id: fake.new_id(),
        channel_id: body.channel_id,
        message: body.message,
        props: body.props.unwrap_or_else(|| json!({})),
    };
    lock(&fake.posts).push(stored.clone());
    fake.deliver((StatusCode::CREATED, Json(post_json(&stored))).into_response(), true)
        .await
}

#[derive(Debug, Deserialize)]
struct PostsQuery {
    per_page: Option<usize>,
    page: Option<usize>,
}

async fn channel_posts(
    State(fake): State<Arc<Mattermost>>,
    Path(channel_id): Path<String>,
    Query(query): Query<PostsQuery>,
    headers: HeaderMap,
) -> Response {
    fake.count("posts");
    if let Some(refusal) = fake.common_refusal(&headers) {
        return fake.deliver(refusal, false).await;
    }
    let channel = lock(&fake.channels).iter().find(|c| c.id == channel_id).cloned();
    match channel {
        None => {
            let e = app_error(
                StatusCode::NOT_FOUND,
                "app.channel.get.existing.app_error",
                "Unable to find the existing channel.",
            );
            return fake.deliver(e, false).await;
        }
        Some(c) if !c.member => return fake.deliver(forbidden(), false).await,
        Some(_) => {}
    }
    let per_page = query.per_page.unwrap_or(60).min(200);
    let page = query.page.unwrap_or(0);
    let (order, posts) = {
        let stored = lock(&fake.posts);
        let newest: Vec<&StoredPost> = stored
            .iter()
            .rev()
            .filter(|p| p.channel_id == channel_id)
            .skip(page * per_page)
            .take(per_page)
            .collect();
        let order: Vec<String> = newest.iter().map(|p| p.id.clone()).collect();
        let posts: serde_json::Map<String, Value> = newest.iter().map(|p| (p.id.clone(), post_json(p))).collect();
        (order, posts)
    };
    let answer = Json(json!({
        "order": order,
        "posts": posts,
        "next_post_id": "",
        "prev_post_id": "",
        "has_next": false,
    }));
    fake.deliver(answer.into_response(), false).await
}
