//! Runs the release binaries as Lambda would: moto for AWS, the Rocket.Chat fake for the chat (both behind the
//! timing proxy of `downstream`), and the Runtime API stand-in in front of each process.
//!
//! Each function runs against plain HTTP proxies, and intake and the consumer also against HTTPS ones (as real AWS
//! always is): the same proxies' HTTPS twins, trusted through `SSL_CERT_FILE`, so a cold start pays its TLS
//! handshakes and a warm invocation shows whether it reuses its connections.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use qrelay_testkit::moto::Moto;
use qrelay_testkit::runtime_api::RuntimeApi;
use qrelay_testkit::world::{self, World, WorldSpec};
use rocketchat_fake::FakeRocketChat;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::Options;
use crate::downstream::{self, Downstream, Waited};
use crate::stats::Summary;

/// The binaries built and sized, the floor first.
pub const BINARIES: [&str; 4] = ["noop", "intake", "consumer", "redrive"];

/// The functions also measured over HTTPS.
pub const OVER_TLS: [&str; 2] = ["intake", "consumer"];

/// What is measured: a label and the binary it runs. `intake-form` is intake's first request being a student
/// opening the form (the usual first request of a course), `intake` its first being a question (which reads the
/// room's state from the instructor's table, as deployed), `intake-no-table` the same without a table: the
/// difference is what the room-state read costs.
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("noop", "noop"),
    ("intake-form", "intake"),
    ("intake", "intake"),
    ("intake-no-table", "intake"),
    ("consumer", "consumer"),
    ("redrive", "redrive"),
];

pub fn build_release_binaries(root: &Path) -> anyhow::Result<()> {
    eprintln!("== cargo build --release (intake, consumer, redrive, noop)");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "intake",
            "-p",
            "consumer",
            "-p",
            "redrive",
            "-p",
            "qrelay-bench",
            "--bin",
            "intake",
        ])
        .args(["--bin", "consumer", "--bin", "redrive", "--bin", "noop"])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    Ok(())
}

/// moto, the chat fake, the timing proxies in front of them, and the resources the functions use.
pub struct Environment {
    _moto: Moto,
    pub chat: FakeRocketChat,
    /// What the functions use as `AWS_ENDPOINT_URL` and `CHAT_URL`: moto and the chat behind the timing proxy.
    moto_proxy: Downstream,
    chat_proxy: Downstream,
    /// The same over HTTPS: `https://127.0.0.1:PORT`, a certificate from the test CA.
    moto_tls: Downstream,
    chat_tls: Downstream,
    /// Time the functions spent waiting on moto and the chat.
    pub waited: Arc<Waited>,
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub secret_id: String,
    /// The instructor's table (room states, held questions, flood counters), as the template creates it.
    pub control_table: String,
    pub home: PathBuf,
}

impl Environment {
    pub async fn start() -> anyhow::Result<Self> {
        let moto = Moto::try_start().await?;
        let sdk = moto.sdk_config().await;
        // Not subscribed: the measured publishes would otherwise fill the queue, and moto's fan-out to it would
        // count as intake's waiting time.
        let spec = WorldSpec {
            subscribe: false,
            ..WorldSpec::named("bench")
        };
        let world = World::create(&sdk, &spec).await?;
        let endpoint = moto.endpoint.clone();
        let chat = FakeRocketChat::start().await;
        chat.add_channel("general");
        chat.add_channel("rust-course");
        let secret_id = "bench/chat".to_owned();
        world::create_secret(&sdk, &secret_id, &world::rocketchat_secret()).await?;
        let control_table = world::create_control_table(&sdk, "bench-control").await?;
        // Lambda has no ~/.aws: an empty home keeps the developer's AWS files out of the measurement.
        let home = std::env::temp_dir().join(format!("qrelay-bench-home-{}", std::process::id()));
        std::fs::create_dir_all(&home)?;
        let waited = Arc::new(Waited::default());
        let moto_proxy = downstream::start(&endpoint, waited.clone()).await?;
        let chat_proxy = downstream::start(&chat.url(), waited.clone()).await?;
        let moto_tls = downstream::start_tls(&endpoint, waited.clone()).await?;
        let chat_tls = downstream::start_tls(&chat.url(), waited.clone()).await?;
        Ok(Self {
            _moto: moto,
            chat,
            moto_proxy,
            chat_proxy,
            moto_tls,
            chat_tls,
            waited,
            topic_arn: world.topic_arn,
            queue_url: world.queue_url,
            queue_arn: world.queue_arn,
            dlq_url: world.dlq_url,
            dlq_arn: world.dlq_arn,
            secret_id,
            control_table,
            home,
        })
    }

    /// TLS handshakes the HTTPS proxies completed so far (connections opened to them).
    pub fn handshakes(&self) -> u64 {
        self.moto_tls.handshakes().unwrap_or(0) + self.chat_tls.handshakes().unwrap_or(0)
    }

    /// What the timing proxy adds to one call, which the split counts as the function's own time: the difference
    /// of the medians of the same small request to the chat fake, straight and through the proxy, alternately, a
    /// thousand times each; then the same through the HTTPS proxy, on one reused connection.
    pub async fn proxy_overhead(&self) -> anyhow::Result<(Duration, Duration)> {
        let client = qrelay::chat::http_client(Duration::from_secs(10))?;
        let tls_client = downstream::tls_client()?;
        let (mut straight, mut proxied, mut over_tls) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..1000 {
            for (client, base, took) in [
                (&client, self.chat.url(), &mut straight),
                (&client, self.chat_proxy.url.clone(), &mut proxied),
                (&tls_client, self.chat_tls.url.clone(), &mut over_tls),
            ] {
                let started = Instant::now();
                let response = client.get(format!("{base}/api/info")).send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "the chat fake answered {}",
                    response.status()
                );
                response.bytes().await?;
                took.push(started.elapsed());
            }
        }
        self.waited.take();
        let (straight, proxied, over_tls) = (Summary::of(&straight), Summary::of(&proxied), Summary::of(&over_tls));
        eprintln!(
            "timing proxy calibration: median {:.3} ms straight, {:.3} ms through the proxy, {:.3} ms through the \
             HTTPS proxy (one connection)",
            straight.p50_ms, proxied.p50_ms, over_tls.p50_ms
        );
        let overhead = |p: f64| Duration::from_secs_f64(((p - straight.p50_ms) / 1000.0).max(0.0));
        Ok((overhead(proxied.p50_ms), overhead(over_tls.p50_ms)))
    }

    /// The environment Lambda would give the function, plus its configuration as template.yaml sets it.
    /// Over HTTPS when `tls`, with the test CA as `SSL_CERT_FILE`.
    fn env(&self, label: &str, function: &str, runtime_api: &str, tls: bool) -> Vec<(String, String)> {
        let (moto, chat) = if tls {
            (&self.moto_tls, &self.chat_tls)
        } else {
            (&self.moto_proxy, &self.chat_proxy)
        };
        let mut env: Vec<(&str, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.into()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
            ("AWS_ENDPOINT_URL", moto.url.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("HOME", self.home.display().to_string()),
            ("ROOMS", "general,rust-101=rust-course".into()),
        ];
        match function {
            "intake" => {
                env.push(("TOPIC_ARN", self.topic_arn.clone()));
                if label != "intake-no-table" {
                    env.push(("CONTROL_TABLE", self.control_table.clone()));
                }
            }
            "consumer" => env.extend([
                ("CONTROL_TABLE", self.control_table.clone()),
                ("CHAT_URL", chat.url.clone()),
                ("CHAT_SECRET_ID", self.secret_id.clone()),
                ("QUEUE_URL", self.queue_url.clone()),
                ("DEAD_LETTER_QUEUE_URL", self.dlq_url.clone()),
            ]),
            "redrive" => env.extend([
                ("QUEUE_URL", self.queue_url.clone()),
                ("QUEUE_ARN", self.queue_arn.clone()),
                ("DEAD_LETTER_QUEUE_URL", self.dlq_url.clone()),
                ("DEAD_LETTER_QUEUE_ARN", self.dlq_arn.clone()),
            ]),
            _ => {}
        }
        if tls {
            env.push(("SSL_CERT_FILE", downstream::ca_file().display().to_string()));
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// An event for one invocation of `function`; the consumer gets a new question each time, so each is posted.
fn event(root: &Path, function: &str) -> anyhow::Result<Value> {
    Ok(match function {
        "intake" | "intake-no-table" => {
            serde_json::from_str(&std::fs::read_to_string(root.join("events/intake-post-json.json"))?)?
        }
        "intake-form" => serde_json::from_str(&std::fs::read_to_string(root.join("events/intake-get-form.json"))?)?,
        "consumer" => {
            // A new text each time: the consumer posts the same text in the same room once a minute at most.
            let id = uuid::Uuid::new_v4();
            let question = json!({
                "v": 1, "id": id, "room": "rust-101", "text": format!("ベンチマークの質問 benchmark question {id}"),
                "nickname": null, "submitted_at": jiff::Timestamp::now(),
            });
            let envelope =
                json!({ "Type": "Notification", "MessageId": uuid::Uuid::new_v4(), "Message": question.to_string() });
            json!({ "Records": [{
                "messageId": uuid::Uuid::new_v4(), "receiptHandle": "bench", "body": envelope.to_string(),
                "attributes": { "ApproximateReceiveCount": "1" }, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench", "awsRegion": "us-east-1",
            }]})
        }
        "redrive" => json!({ "dry_run": true }),
        _ => json!({}),
    })
}

/// Checks that an answer is the success the function should give, so a fast failure is never measured as speed.
fn check(function: &str, ok: bool, body: &[u8]) -> anyhow::Result<()> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let good = ok
        && match function {
            "intake" | "intake-no-table" => value["statusCode"] == 202,
            "intake-form" => value["statusCode"] == 200,
            "consumer" => value["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
            "redrive" => value["dry_run"] == true,
            _ => true,
        };
    anyhow::ensure!(good, "{function} answered {}", String::from_utf8_lossy(body));
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionResult {
    pub name: &'static str,
    /// Against the HTTPS proxies (test CA through `SSL_CERT_FILE`) rather than plain HTTP ones.
    pub tls: bool,
    /// Process start to first response.
    pub cold: Summary,
    /// Of that, the time spent waiting on moto or the chat, and the rest: the function's own time.
    pub cold_waited: Summary,
    pub cold_own: Summary,
    /// Calls to moto or the chat during the first invocation.
    pub cold_calls: u64,
    pub warm: Summary,
    pub warm_own: Summary,
    /// Over HTTPS: TLS handshakes in the last cold start, and over the whole warm run (its process's first
    /// connections included); a client that reuses its connections does about one per upstream, not one per call.
    pub cold_handshakes: Option<u64>,
    pub warm_handshakes: Option<u64>,
    pub peak_rss_kib: u64,
}

impl FunctionResult {
    pub fn label(&self) -> String {
        if self.tls {
            format!("{} https", self.name)
        } else {
            self.name.to_owned()
        }
    }
}

fn spawn(
    env: &Environment,
    root: &Path,
    (label, binary): (&str, &str),
    api: &RuntimeApi,
    tls: bool,
) -> anyhow::Result<Child> {
    let path = root.join("target/release").join(binary);
    Command::new(&path)
        .env_clear()
        .envs(env.env(label, binary, &api.addr.to_string(), tls))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {}", path.display()))
}

pub async fn measure_function(
    env: &Environment,
    root: &Path,
    (function, binary): (&'static str, &'static str),
    options: Options,
    tls: bool,
) -> anyhow::Result<FunctionResult> {
    let mut api = RuntimeApi::start().await?;
    let mut cold = Vec::with_capacity(options.spawns);
    let mut cold_handshakes = 0;
    for _ in 0..options.spawns {
        let id = api.invoke(event(root, function)?).await?;
        env.waited.take();
        let handshakes = env.handshakes();
        let started = Instant::now();
        let mut child = spawn(env, root, (function, binary), &api, tls)?;
        cold.push(answered(env, &mut api, function, &id, started).await?);
        cold_handshakes = env.handshakes() - handshakes;
        child.kill().await?;
    }

    let handshakes = env.handshakes();
    let mut child = spawn(env, root, (function, binary), &api, tls)?;
    let mut warm = Vec::with_capacity(options.warm);
    for _ in 0..options.warm {
        let id = api.invoke(event(root, function)?).await?;
        env.waited.take();
        let started = Instant::now();
        warm.push(answered(env, &mut api, function, &id, started).await?);
    }
    let warm_handshakes = env.handshakes() - handshakes;
    let peak_rss_kib = child.id().map(peak_rss_kib).transpose()?.unwrap_or(0);
    child.kill().await?;
    let summary =
        |timings: &[Timing], part: fn(&Timing) -> Duration| Summary::of(&timings.iter().map(part).collect::<Vec<_>>());
    Ok(FunctionResult {
        name: function,
        tls,
        cold: summary(&cold, |t| t.took),
        cold_waited: summary(&cold, |t| t.waited),
        cold_own: summary(&cold, Timing::own),
        cold_calls: cold.last().map_or(0, |t| t.calls),
        warm: summary(&warm, |t| t.took),
        warm_own: summary(&warm, Timing::own),
        cold_handshakes: tls.then_some(cold_handshakes),
        warm_handshakes: tls.then_some(warm_handshakes),
        peak_rss_kib,
    })
}

/// One invocation: how long it took, and how much of that, in how many calls, was spent on moto or the chat.
struct Timing {
    took: Duration,
    waited: Duration,
    calls: u64,
}

impl Timing {
    /// The function's own time.
    fn own(&self) -> Duration {
        self.took.saturating_sub(self.waited)
    }
}

/// Waits for the answer to invocation `id`, started at `started`, checks it and splits its time.
async fn answered(
    env: &Environment,
    api: &mut RuntimeApi,
    function: &str,
    id: &str,
    started: Instant,
) -> anyhow::Result<Timing> {
    let answer = api.answer().await?;
    let (waited, calls) = env.waited.take();
    anyhow::ensure!(
        answer.request_id == id || answer.request_id == "init",
        "an answer to another invocation"
    );
    check(function, answer.ok, &answer.body)?;
    Ok(Timing {
        took: answer.at.duration_since(started),
        waited,
        calls,
    })
}

/// `VmHWM` of a process, in KiB.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct Size {
    pub name: &'static str,
    pub arch: &'static str,
    pub bytes: u64,
    pub zip_bytes: Option<u64>,
}

/// Sizes of the x86_64 release binaries, and of the arm64 `bootstrap` files that `cargo lambda build --release
/// --arm64` (or `.ci/sam-check`) left in `target/lambda/`, zipped as Lambda would receive them.
pub fn artifact_sizes(root: &Path) -> anyhow::Result<Vec<Size>> {
    let mut sizes = Vec::new();
    for name in BINARIES {
        let x86 = root.join("target/release").join(name);
        sizes.push(Size {
            name,
            arch: "x86_64",
            bytes: std::fs::metadata(&x86)?.len(),
            zip_bytes: zip_size(&x86),
        });
        let arm = root.join("target/lambda").join(name).join("bootstrap");
        if let Ok(meta) = std::fs::metadata(&arm) {
            sizes.push(Size {
                name,
                arch: "arm64",
                bytes: meta.len(),
                zip_bytes: zip_size(&arm),
            });
        }
    }
    Ok(sizes)
}

/// The size of a zip holding `file` as `bootstrap`, made with Python's zipfile (deflate), as SAM would upload.
fn zip_size(file: &Path) -> Option<u64> {
    let out = std::env::temp_dir().join(format!("qrelay-bench-{}.zip", std::process::id()));
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[1], 'bootstrap')";
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .arg(&out)
        .status()
        .ok()?;
    let size = status
        .success()
        .then(|| std::fs::metadata(&out).ok().map(|m| m.len()))
        .flatten();
    let _ = std::fs::remove_file(&out);
    size
}
