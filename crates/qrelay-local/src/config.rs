//! The local runner's own configuration: where it listens and the address phones use, rooms, limits, which chat,
//! and whether to use SNS and SQS at `AWS_ENDPOINT_URL`, read once from the environment and the command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
    /// Where to listen: loopback by default; `0.0.0.0:8080` lets a phone on the same network try the form. Port 0
    /// picks a free port.
    pub listen: SocketAddr,
    /// The address students' phones use (`--public-url`): printed, and encoded in the QR codes. `None`: the
    /// listen address, or this machine's LAN address when listening on all interfaces.
    pub public_url: Option<PublicUrl>,
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

/// A site's origin as students reach it: `http` or `https`, a host and an optional port, no path
/// (`http://192.168.1.20:3000`, `https://qa.example.org`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    scheme: &'static str,
    authority: String,
}

impl PublicUrl {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed; a path is not: the routes are at the root).
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = if let Some(rest) = raw.strip_prefix("http://") {
            ("http", rest)
        } else if let Some(rest) = raw.strip_prefix("https://") {
            ("https", rest)
        } else {
            anyhow::bail!("{raw:?} is not an http:// or https:// URL");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        anyhow::ensure!(
            !authority.is_empty()
                && authority
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)),
            "{raw:?}: give only the scheme, host and port, e.g. http://192.168.1.20:3000"
        );
        Ok(Self {
            scheme,
            authority: authority.to_ascii_lowercase(),
        })
    }

    /// The URL for a server reached directly over plain HTTP at `addr`.
    pub fn http(addr: SocketAddr) -> Self {
        Self {
            scheme: "http",
            authority: addr.to_string(),
        }
    }

    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `host[:port]`, as a `Host` header carries it.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// The chat the local consumer posts to: the board unless the environment names a real one.
///
/// - `QRELAY_LOCAL_CHAT_KIND` (any `CHAT_KIND`: `rocketchat`, `webhook`, `slack`, `mattermost`, `discord`,
///   `googlechat`, `teams`, …) with `QRELAY_LOCAL_CHAT_SECRET`, the secret's JSON as Secrets Manager would hold it, and
///   `QRELAY_LOCAL_CHAT_URL` for the kinds that need a server;
/// - or, for Rocket.Chat, `QRELAY_LOCAL_CHAT_URL` + `QRELAY_LOCAL_CHAT_USER_ID` + `QRELAY_LOCAL_CHAT_TOKEN`;
/// - or `QRELAY_LOCAL_WEBHOOK_URL` for an incoming webhook.
fn chat_choice(env: &dyn Source) -> anyhow::Result<ChatChoice> {
    if env.get("QRELAY_LOCAL_CHAT_KIND").is_some() {
        let kind = config::chat_kind(&LocalChat(env))?;
        let json = config::required(env, "QRELAY_LOCAL_CHAT_SECRET")?;
        let secret = ChatSecret::parse(&json).context("QRELAY_LOCAL_CHAT_SECRET")?;
        return Ok(ChatChoice::Chat { kind, secret });
    }
    Ok(
        match (env.get("QRELAY_LOCAL_CHAT_URL"), env.get("QRELAY_LOCAL_WEBHOOK_URL")) {
            (Some(url), _) => ChatChoice::Chat {
                kind: ChatKind::RocketChat { url },
                secret: ChatSecret::RocketChat {
                    user_id: config::required(env, "QRELAY_LOCAL_CHAT_USER_ID")?,
                    token: config::required(env, "QRELAY_LOCAL_CHAT_TOKEN")?,
                },
            },
            (None, Some(webhook_url)) => ChatChoice::Chat {
                kind: ChatKind::Webhook,
                secret: ChatSecret::Webhook { webhook_url },
            },
            (None, None) => ChatChoice::Board,
        },
    )
}

/// The local runner's chat variables under the names the consumer's configuration reads (`CHAT_KIND`,
/// `CHAT_URL`), everything else as it is.
struct LocalChat<'a>(&'a dyn Source);

impl Source for LocalChat<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "CHAT_KIND" => self.0.get("QRELAY_LOCAL_CHAT_KIND"),
            "CHAT_URL" => self.0.get("QRELAY_LOCAL_CHAT_URL"),
            other => self.0.get(other),
        }
    }
}

const USAGE: &str = "usage: qrelay-local [--listen ADDR] [--port N] [--public-url URL]";

impl LocalConfig {
    /// Reads `QRELAY_PORT` (default 3000), `ROOMS` (default `general,rust-101`), `TIME_ZONE`, `MAX_*_CHARS`,
    /// `AWS_ENDPOINT_URL`, and, to post to a real chat, `QRELAY_LOCAL_CHAT_URL` + `QRELAY_LOCAL_CHAT_USER_ID` +
    /// `QRELAY_LOCAL_CHAT_TOKEN` or `QRELAY_LOCAL_WEBHOOK_URL`. The command line wins: `--port N`, `--listen ADDR`
    /// (`0.0.0.0:8080`, `0.0.0.0` with the port from `--port`, or `[::]:8080`) and `--public-url URL`.
    pub fn from_env_and_args(args: &[String]) -> anyhow::Result<Self> {
        let env = config::ProcessEnv;
        let cli = CommandLine::parse(args)?;
        if cli.help {
            println!("{USAGE}   (environment: see README, \"Run it locally\")");
            std::process::exit(0);
        }
        let port = match cli.port {
            Some(port) => port,
            None => config::parsed_or(&env, "QRELAY_PORT", 3000u16)?,
        };
        let listen = cli
            .listen
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        let rooms = match env.get("ROOMS") {
            Some(_) => config::rooms(&env)?,
            None => Rooms::parse("general,rust-101").context("default rooms")?,
        };
        let tz = env.get("TIME_ZONE").unwrap_or_else(|| "Asia/Tokyo".into());
        let chat = chat_choice(&env)?;
        let (limits, question_cap) = match &chat {
            // The board shows what Rocket.Chat would, and Rocket.Chat takes every question the limits allow.
            ChatChoice::Board => (config::limits(&env)?, None),
            ChatChoice::Chat { .. } => config::limits_for_chat(&LocalChat(&env))?,
        };
        if let Some(cap) = question_cap {
            tracing::warn!("{cap}");
        }
        Ok(Self {
            listen,
            public_url: cli.public_url,
            rooms,
            limits,
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

    /// Defaults for tests: loopback, a free port, the board, in-process queues.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            public_url: None,
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

/// What the command line says; the environment fills in the rest.
#[derive(Debug, Default, PartialEq)]
struct CommandLine {
    port: Option<u16>,
    listen: Option<SocketAddr>,
    public_url: Option<PublicUrl>,
    help: bool,
}

impl CommandLine {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut cli = Self::default();
        let mut listen_ip = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .with_context(|| format!("{flag} needs {what}; {USAGE}"))
            };
            match flag {
                "--port" | "-p" => cli.port = Some(value("a number")?.parse().context("--port")?),
                "--listen" | "-l" => {
                    let raw = value("an address such as 0.0.0.0:8080")?;
                    match raw.parse::<SocketAddr>() {
                        Ok(addr) => cli.listen = Some(addr),
                        Err(_) => {
                            listen_ip = Some(raw.parse::<IpAddr>().with_context(|| {
                                format!("--listen {raw:?}: expected an address such as 0.0.0.0:8080 or 0.0.0.0")
                            })?)
                        }
                    }
                }
                "--public-url" => cli.public_url = Some(PublicUrl::parse(&value("a URL")?)?),
                "--help" | "-h" => cli.help = true,
                other => anyhow::bail!("unknown argument {other:?}; {USAGE}"),
            }
        }
        // `--listen 0.0.0.0` takes its port from `--port` (or the default); an explicit `--port` also overrides
        // the port of `--listen 0.0.0.0:8080`, since it was given for that purpose.
        if let Some(ip) = listen_ip {
            cli.listen = Some(SocketAddr::new(ip, cli.port.unwrap_or(3000)));
        } else if let (Some(listen), Some(port)) = (cli.listen.as_mut(), cli.port) {
            listen.set_port(port);
        }
        Ok(cli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<CommandLine> {
        CommandLine::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn listen_takes_an_address_with_or_without_a_port() {
        let cases: [(&[&str], &str); 5] = [
            (&["--listen", "0.0.0.0:8080"], "0.0.0.0:8080"),
            (&["--listen=0.0.0.0:8080"], "0.0.0.0:8080"),
            (&["--listen", "0.0.0.0"], "0.0.0.0:3000"),
            (&["--listen", "0.0.0.0", "--port", "4000"], "0.0.0.0:4000"),
            (&["--listen", "[::]:8080"], "[::]:8080"),
        ];
        for (args, expected) in cases {
            let cli = parse(args).expect("valid");
            assert_eq!(cli.listen, Some(expected.parse().expect("addr")), "{args:?}");
        }
        assert!(parse(&["--listen", "phone"]).is_err(), "not an address");
        assert!(parse(&["--listen"]).is_err(), "missing value");
        assert_eq!(parse(&[]).expect("empty").listen, None, "loopback by default");
    }

    #[test]
    fn a_public_url_is_an_origin_without_a_path() {
        let url = PublicUrl::parse("http://192.168.1.20:3000/").expect("valid");
        assert_eq!(url.to_string(), "http://192.168.1.20:3000");
        assert_eq!(url.authority(), "192.168.1.20:3000");
        assert_eq!(
            PublicUrl::parse("https://QA.example.org").expect("valid").to_string(),
            "https://qa.example.org"
        );
        for bad in [
            "192.168.1.20:3000",
            "ftp://x",
            "http://",
            "http://x/path",
            "http://x\"><script>",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad:?} is refused");
        }
    }
}

#[cfg(test)]
mod chat_tests {
    use super::*;

    #[test]
    fn any_chat_kind_can_be_tried_locally_with_its_secret() {
        let slack = chat_choice(&[
            ("QRELAY_LOCAL_CHAT_KIND", "slack"),
            ("QRELAY_LOCAL_CHAT_SECRET", r#"{"bot_token":"xoxb-local"}"#),
        ])
        .expect("slack");
        let ChatChoice::Chat { kind, secret } = slack else {
            panic!("a real chat");
        };
        assert_eq!(kind, ChatKind::Slack);
        assert_eq!(
            secret,
            ChatSecret::BotToken {
                bot_token: "xoxb-local".into()
            }
        );

        let mattermost = chat_choice(&[
            ("QRELAY_LOCAL_CHAT_KIND", "mattermost"),
            ("QRELAY_LOCAL_CHAT_URL", "http://127.0.0.1:8065"),
            ("QRELAY_LOCAL_CHAT_SECRET", r#"{"bot_token":"t"}"#),
        ])
        .expect("mattermost");
        assert!(matches!(
            mattermost,
            ChatChoice::Chat { kind: ChatKind::Mattermost { url }, .. } if url == "http://127.0.0.1:8065"
        ));
    }

    #[test]
    fn a_local_chat_without_what_it_needs_is_refused_by_name_and_never_quoted() {
        let no_secret = chat_choice(&[("QRELAY_LOCAL_CHAT_KIND", "discord")]).expect_err("no secret");
        assert!(
            format!("{no_secret:#}").contains("QRELAY_LOCAL_CHAT_SECRET"),
            "{no_secret:#}"
        );
        let bad = chat_choice(&[
            ("QRELAY_LOCAL_CHAT_KIND", "discord"),
            ("QRELAY_LOCAL_CHAT_SECRET", r#"{"bot":"s3cr3t"}"#),
        ])
        .expect_err("not a secret shape");
        assert!(
            !format!("{bad:#}").contains("s3cr3t"),
            "the error does not quote it: {bad:#}"
        );
        let no_url = chat_choice(&[
            ("QRELAY_LOCAL_CHAT_KIND", "mattermost"),
            ("QRELAY_LOCAL_CHAT_SECRET", r#"{"bot_token":"t"}"#),
        ])
        .expect_err("mattermost needs its server");
        assert!(format!("{no_url:#}").contains("CHAT_URL"), "{no_url:#}");
        let unknown = chat_choice(&[("QRELAY_LOCAL_CHAT_KIND", "irc")]).expect_err("unknown");
        assert!(format!("{unknown:#}").contains("CHAT_KIND"), "{unknown:#}");
    }

    #[test]
    fn a_discord_question_limit_is_lowered_locally_too() {
        let (limits, cap) = config::limits_for_chat(&LocalChat(&[
            ("QRELAY_LOCAL_CHAT_KIND", "discord"),
            ("MAX_QUESTION_CHARS", "1000"),
        ]))
        .expect("valid");
        assert!(cap.is_some(), "lowered: {limits:?}");
    }
}
