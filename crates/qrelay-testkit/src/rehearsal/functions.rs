//! Runs a function's real binary as Lambda would run the deployed function: with exactly the environment
//! variables the stack gave it, plus what Lambda itself sets (the Runtime API's address, the function's name and
//! memory, the log format from `LoggingConfig`, region and credentials), AWS pointed at moto through a
//! [`Recorder`], and its events served by the [`RuntimeApi`] stand-in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::recorder::{Call, Recorder};
use super::template::REGION;
use crate::process::Server;
use crate::runtime_api::RuntimeApi;

/// One function process, stopped when dropped.
#[derive(Debug)]
pub struct RunningFunction {
    pub logical_id: String,
    api: RuntimeApi,
    recorder: Recorder,
    log: PathBuf,
    /// The function's process id, to notice when it exits instead of answering.
    pid_file: PathBuf,
    _server: Server,
}

/// What one invocation answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `false` for an error answer (`/error` or `/init/error`).
    pub ok: bool,
    pub body: Value,
}

/// What Lambda itself adds to a function's environment, beside the configured variables.
#[derive(Debug, Clone)]
pub struct LambdaContext {
    pub function_name: String,
    pub function_arn: String,
    pub memory_mb: u64,
    pub log_group: String,
    /// `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`, from the function's `LoggingConfig`.
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

impl RunningFunction {
    /// Starts `binary` with `configured` (the stack's variables for it) and Lambda's own, its AWS calls going to
    /// `moto` through a recorder. The process writes its log to `work/<logical_id>-<n>.log`.
    pub async fn start(
        binary: &Path,
        logical_id: &str,
        configured: &BTreeMap<String, String>,
        lambda: &LambdaContext,
        moto: &str,
        work: &Path,
    ) -> anyhow::Result<Self> {
        let api = RuntimeApi::start_as(&lambda.function_arn).await?;
        let recorder = Recorder::start(moto).await?;
        let mut environment: Vec<(String, String)> = configured.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let own = [
            ("AWS_LAMBDA_RUNTIME_API", api.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", lambda.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", lambda.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", lambda.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "rehearsal".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            // Not something Lambda sets: the one redirection that points the SDK at moto.
            ("AWS_ENDPOINT_URL", recorder.url.clone()),
        ];
        environment.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
        environment.extend(
            lambda
                .log_format
                .iter()
                .map(|f| ("AWS_LAMBDA_LOG_FORMAT".to_owned(), f.clone())),
        );
        environment.extend(
            lambda
                .log_level
                .iter()
                .map(|l| ("AWS_LAMBDA_LOG_LEVEL".to_owned(), l.clone())),
        );
        // .ci/leftovers finds the processes of a test run by this mark; nothing in qrelay reads it.
        if let Ok(mark) = std::env::var("QRELAY_TEST_RUN") {
            environment.push(("QRELAY_TEST_RUN".to_owned(), mark));
        }

        let log = (1..)
            .map(|n| work.join(format!("{logical_id}-{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        let pid_file = log.with_extension("pid");
        let file = std::fs::File::create(&log)?;
        let errors = file.try_clone()?;
        // `env -i` gives the function exactly this environment (the watchdog around it keeps the caller's); the
        // shell notes its process id first, which `exec` hands on to env and then to the function.
        let mut args = vec![
            "-c".to_owned(),
            r#"echo $$ > "$0"; exec env -i "$@""#.to_owned(),
            pid_file.display().to_string(),
        ];
        args.extend(environment.iter().map(|(k, v)| format!("{k}={v}")));
        args.push(binary.display().to_string());
        let server = Server::spawn_with("sh", &args, |command| {
            command.stdout(file).stderr(errors);
        })
        .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            logical_id: logical_id.to_owned(),
            api,
            recorder,
            log,
            pid_file,
            _server: server,
        })
    }

    /// Invokes the function with `event` and waits for its answer (an error at start answers too); fails at once
    /// if the process exits instead, with the end of its log.
    pub async fn invoke(&mut self, event: Value) -> anyhow::Result<Invocation> {
        let id = self.api.invoke(event).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let answer = loop {
            if let Ok(answer) = tokio::time::timeout(Duration::from_millis(200), self.api.answer()).await {
                break answer?;
            }
            if self.exited() {
                anyhow::bail!(
                    "{} exited instead of answering; its log ends: {}",
                    self.logical_id,
                    self.log_tail(3).replace('\n', " / ")
                );
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer within 30 s",
                self.logical_id
            );
        };
        anyhow::ensure!(
            answer.request_id == id || answer.request_id == "init",
            "{} answered another invocation",
            self.logical_id
        );
        let body = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
        Ok(Invocation { ok: answer.ok, body })
    }

    /// The AWS calls the function made so far.
    pub fn calls(&self) -> Vec<Call> {
        self.recorder.calls()
    }

    /// The last `lines` lines of the function's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the process (`SIGSTOP`), as Lambda freezes an execution environment between invocations: its timers
    /// don't run and its sockets go unread, while the world around it (servers closing idle connections) goes on.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Lets a [frozen](Self::freeze) process run again (`SIGCONT`).
    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = std::fs::read_to_string(&self.pid_file).context("the function's pid file")?;
        let status = std::process::Command::new("kill")
            .args(["-s", name, pid.trim()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -s {name} {} failed", pid.trim());
        Ok(())
    }

    /// Whether the process has ended (gone, or a zombie its watchdog has not reaped yet).
    fn exited(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(&self.pid_file) else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }
}
