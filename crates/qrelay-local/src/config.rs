//! The local runner's own configuration: the port, rooms, limits, which chat, and whether to use SNS and SQS at
//! `AWS_ENDPOINT_URL`, read once from the environment and the command line.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Context as _;
use qrelay::chat::ChatKind;
use qrelay::chat::secret::ChatSecret;
use qrelay::config::{self, Source};
use qrelay::consumer::Backoff;
use qrelay::domain::{Limits, Rooms};
use qrelay_testkit::world::MAX_RECEIVE_COUNT;

/// Which chat the local consumer posts to.
#[derive(Debug, Clone)]
pub enum ChatChoice {
    /// The built-in board page.
    Board,
    /// A real chat (Rocket.Chat or an incoming webhook), with credentials given for local use only.
    Chat { kind: ChatKind, secret: ChatSecret },
}

/// How the local runner is set up.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub rooms: Rooms,
    pub limits: Limits,
    pub time_zone: jiff::tz::TimeZone,
    /// Shorter than in AWS by default, so a simulated outage resolves within seconds of its end.
    pub backoff: Backoff,
    pub chat: ChatChoice,
    /// `AWS_ENDPOINT_URL`: use SNS and SQS there (moto) instead of in-process queues.
    pub aws_endpoint: Option<String>,
    /// Receives before a question becomes a dead letter (30, as in the template; tests use fewer).
    pub max_receive_count: u32,
    /// Whether the consumer prints its metrics line per batch, as it does in Lambda's log.
    pub emit_metrics: bool,
}

impl LocalConfig {
    /// Reads `QRELAY_PORT` (default 3000), `ROOMS` (default `general,rust-101`), `TIME_ZONE`, `MAX_*_CHARS`,
    /// `AWS_ENDPOINT_URL`, and, to post to a real chat, `QRELAY_LOCAL_CHAT_URL` + `QRELAY_LOCAL_CHAT_USER_ID` +
    /// `QRELAY_LOCAL_CHAT_TOKEN` or `QRELAY_LOCAL_WEBHOOK_URL`. `--port N` on the command line wins.
    pub fn from_env_and_args(args: &[String]) -> anyhow::Result<Self> {
        let env = config::ProcessEnv;
        let mut port = config::parsed_or(&env, "QRELAY_PORT", 3000u16)?;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" | "-p" => {
                    port = args
                        .next()
                        .context("--port needs a number")?
                        .parse()
                        .context("--port")?
                }
                "--help" | "-h" => {
                    println!("usage: qrelay-local [--port N]   (environment: see README, \"Run it locally\")");
                    std::process::exit(0);
                }
                other => anyhow::bail!("unknown argument {other:?}; usage: qrelay-local [--port N]"),
            }
        }
        let rooms = match env.get("ROOMS") {
            Some(_) => config::rooms(&env)?,
            None => Rooms::parse("general,rust-101").context("default rooms")?,
        };
        let tz = env.get("TIME_ZONE").unwrap_or_else(|| "Asia/Tokyo".into());
        let chat = match (env.get("QRELAY_LOCAL_CHAT_URL"), env.get("QRELAY_LOCAL_WEBHOOK_URL")) {
            (Some(url), _) => ChatChoice::Chat {
                kind: ChatKind::RocketChat { url },
                secret: ChatSecret::RocketChat {
                    user_id: config::required(&env, "QRELAY_LOCAL_CHAT_USER_ID")?,
                    token: config::required(&env, "QRELAY_LOCAL_CHAT_TOKEN")?,
                },
            },
            (None, Some(webhook_url)) => ChatChoice::Chat {
                kind: ChatKind::Webhook,
                secret: ChatSecret::Webhook { webhook_url },
            },
            (None, None) => ChatChoice::Board,
        };
        Ok(Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            rooms,
            limits: config::limits(&env)?,
            time_zone: jiff::tz::TimeZone::get(&tz).with_context(|| format!("TIME_ZONE {tz:?}"))?,
            backoff: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(10),
            },
            chat,
            aws_endpoint: env.get("AWS_ENDPOINT_URL"),
            max_receive_count: MAX_RECEIVE_COUNT,
            emit_metrics: true,
        })
    }

    /// Defaults for tests: a free port, the board, in-process queues.
    pub fn for_tests() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            rooms: Rooms::parse("general,rust-101").expect("valid rooms"),
            limits: Limits::default(),
            time_zone: jiff::tz::TimeZone::get("Asia/Tokyo").expect("bundled tzdb"),
            backoff: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(2),
            },
            chat: ChatChoice::Board,
            aws_endpoint: None,
            max_receive_count: MAX_RECEIVE_COUNT,
            emit_metrics: true,
        }
    }
}
