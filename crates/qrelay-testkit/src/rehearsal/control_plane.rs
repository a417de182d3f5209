//! The tools the rehearsal drives, all against moto on loopback: the SAM transform and stack snapshots through
//! `control_plane.py` (boto3 and samtranslator from the project's `.venv`), and the real `sam deploy` with
//! `samconfig.toml`. Each runs with a cleared environment: moto's endpoint, test credentials, an empty home (so
//! no developer's `~/.aws` can point anything at a real account).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::process::Command;

use super::template::{REGION, Template};

const HELPER: &str = include_str!("control_plane.py");

/// The rehearsal's tools, pointed at one moto.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    root: PathBuf,
    python: PathBuf,
    sam: PathBuf,
    home: PathBuf,
    port: u16,
}

impl ControlPlane {
    /// Finds the tools in the project's `.venv` (what `.ci/setup` installs), else on `PATH`.
    pub fn new(root: &Path, work: &Path, moto_endpoint: &str) -> anyhow::Result<Self> {
        let port = moto_endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("moto's endpoint {moto_endpoint} has no port"))?;
        let venv = root.join(".venv/bin");
        let tool = |name: &str| {
            let path = venv.join(name);
            if path.exists() { path } else { PathBuf::from(name) }
        };
        let home = work.join("home");
        std::fs::create_dir_all(&home)?;
        Ok(Self {
            root: root.to_owned(),
            python: tool("python"),
            sam: tool("sam"),
            home,
            port,
        })
    }

    /// A command with the environment every tool gets: moto for every AWS service (S3 as `localhost`, the only
    /// host name moto reads a `TemplateURL`'s bucket from; still loopback), test credentials, the region.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            self.python
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("/usr/bin"))
                .display()
        );
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.port))
            .env("AWS_ENDPOINT_URL_S3", format!("http://localhost:{}", self.port))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SAM_CLI_TELEMETRY", "0")
            .env("SAM_CLI_DISABLE_VERSION_CHECK", "1")
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // .ci/leftovers finds the processes of a test run by this mark.
        if let Ok(mark) = std::env::var("QRELAY_TEST_RUN") {
            command.env("QRELAY_TEST_RUN", mark);
        }
        command
    }

    /// Runs a command of `control_plane.py` and returns its JSON answer.
    async fn helper(&self, args: &[&str]) -> anyhow::Result<Value> {
        let output = self
            .command(&self.python)
            .arg("-c")
            .arg(HELPER)
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {} (run .ci/setup to create .venv)", self.python.display()))?;
        if !output.status.success() {
            bail!(
                "control_plane.py {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout).context("control_plane.py answered no JSON")
    }

    /// The SAM transform of `source`, offline (moto has none), written to `transformed` too.
    pub async fn transform(&self, source: &Path, transformed: &Path) -> anyhow::Result<Template> {
        self.helper(&[
            "transform",
            &source.display().to_string(),
            &transformed.display().to_string(),
        ])
        .await?;
        let text = std::fs::read_to_string(transformed)?;
        Ok(Template::new(serde_json::from_str(&text)?))
    }

    /// Creates the SAM CLI's managed bucket stack the way moto can answer for it; returns the bucket.
    pub async fn bootstrap_bucket(&self) -> anyhow::Result<String> {
        let answer = self.helper(&["bootstrap-bucket"]).await?;
        answer["outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["OutputKey"] == "SourceBucket")
            .and_then(|o| o["OutputValue"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("the managed stack has no SourceBucket output: {answer}"))
    }

    /// What moto holds of a stack.
    pub async fn snapshot(&self, stack: &str) -> anyhow::Result<Snapshot> {
        let answer = self.helper(&["snapshot", stack]).await?;
        serde_json::from_value(answer).context("reading the stack snapshot")
    }

    /// Disables an event source mapping; returns its new state.
    pub async fn disable_mapping(&self, uuid: &str) -> anyhow::Result<String> {
        let answer = self.helper(&["disable-mapping", uuid]).await?;
        Ok(answer["state"].as_str().unwrap_or("(no state)").to_owned())
    }

    /// `sam deploy` of `template` as stack `stack`, with `samconfig.toml`'s settings except the change-set
    /// confirmation (nobody is there to answer) and the stack name and region (the rehearsal's).
    pub async fn sam_deploy(
        &self,
        template: &Path,
        stack: &str,
        parameters: &[(String, String)],
    ) -> anyhow::Result<Deployed> {
        let started = Instant::now();
        let mut command = self.command(&self.sam);
        command
            .arg("deploy")
            .arg("--template-file")
            .arg(template)
            .arg("--config-file")
            .arg(self.root.join("samconfig.toml"))
            .args(["--config-env", "default", "--stack-name", stack, "--region", REGION])
            .args(["--no-confirm-changeset", "--no-progressbar"]);
        if !parameters.is_empty() {
            command
                .arg("--parameter-overrides")
                .args(parameters.iter().map(|(k, v)| format!("{k}={v}")));
        }
        let output = command
            .output()
            .await
            .with_context(|| format!("running {} (run .ci/setup to create .venv)", self.sam.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(Deployed {
            ok: output.status.success(),
            seconds: started.elapsed().as_secs_f64(),
            output: text,
        })
    }
}

/// What `sam deploy` did.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub ok: bool,
    pub seconds: f64,
    pub output: String,
}

impl Deployed {
    /// The resources of its change set (`+ Add` lines), and the line that says how it ended.
    pub fn summary(&self) -> (usize, String) {
        let added = self
            .output
            .lines()
            .filter(|l| l.trim_start().starts_with("+ Add"))
            .count();
        let outcome = self
            .output
            .lines()
            .rev()
            .find(|l| l.contains("Successfully created/updated stack") || l.starts_with("Error"))
            .unwrap_or("(no outcome line)")
            .trim()
            .to_owned();
        (added, outcome)
    }
}

/// A created stack as moto answers for it (see `control_plane.py`'s `snapshot`).
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub stack: StackInfo,
    pub resources: Vec<StackResource>,
    /// Entries moto lists without logical id, type or physical id: resource types it does not implement.
    pub nameless_resources: usize,
    /// By logical id.
    pub functions: BTreeMap<String, Function>,
    pub mappings: Vec<Mapping>,
    /// By logical id.
    pub roles: BTreeMap<String, Role>,
    /// By logical id.
    pub log_groups: BTreeMap<String, LogGroup>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub id: String,
    pub status: String,
    pub outputs: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StackResource {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub physical_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub name: String,
    pub arn: String,
    pub role: String,
    pub timeout: Option<u64>,
    pub memory: Option<u64>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub architectures: Vec<String>,
    pub logging: Option<Value>,
    /// As moto reports them: values may be numbers where Lambda has only strings.
    pub environment: BTreeMap<String, Value>,
    /// The resource policy's statements (who may invoke it).
    pub permissions: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mapping {
    pub uuid: String,
    pub function_arn: Option<String>,
    pub source_arn: Option<String>,
    pub batch_size: Option<u64>,
    pub batching_window_seconds: Option<u64>,
    pub response_types: Vec<String>,
    pub maximum_concurrency: Option<u64>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub inline: BTreeMap<String, StoredPolicy>,
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoredPolicy {
    pub document: Value,
    /// `json`, or `python-repr` where moto mangled it.
    pub stored_as: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogGroup {
    pub name: String,
    pub arn: Option<String>,
    pub retention_days: Option<u64>,
}

/// Where each function's deployment package comes from.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// A folder holding only `bootstrap`, for `sam deploy` to zip.
    pub dir: PathBuf,
    pub origin: String,
    /// The ELF machine of the `bootstrap`: `aarch64`, `x86_64`, or `None` for the placeholder.
    pub machine: Option<&'static str>,
}

/// The package for function `logical_id` (binary `binary`): `sam build`'s output if `.ci/sam-check` built it,
/// else cargo-lambda's x86_64 fallback build, else a placeholder script (the rehearsal runs host builds of the
/// binaries anyway; what is uploaded only has to be what a real deploy would upload).
pub fn artifact(root: &Path, work: &Path, logical_id: &str, binary: &str) -> anyhow::Result<Artifact> {
    let dir = work.join("code").join(logical_id);
    std::fs::create_dir_all(&dir)?;
    let bootstrap = dir.join("bootstrap");
    let candidates = [
        (
            root.join(".aws-sam/build").join(logical_id).join("bootstrap"),
            format!(".aws-sam/build/{logical_id} (sam build, by .ci/sam-check)"),
        ),
        (
            root.join("target/lambda").join(binary).join("bootstrap"),
            format!("target/lambda/{binary} (cargo lambda build, .ci/sam-check's x86_64 fallback)"),
        ),
    ];
    for (path, origin) in candidates {
        if path.is_file() {
            std::fs::copy(&path, &bootstrap).with_context(|| format!("copying {}", path.display()))?;
            return Ok(Artifact {
                dir,
                origin,
                machine: elf_machine(&bootstrap),
            });
        }
    }
    std::fs::write(
        &bootstrap,
        "#!/bin/sh\necho 'placeholder: run .ci/sam-check to build the real bootstrap' >&2\nexit 1\n",
    )?;
    Ok(Artifact {
        dir,
        origin: "a placeholder script: nothing was built for Lambda (run .ci/sam-check first)".into(),
        machine: None,
    })
}

fn elf_machine(path: &Path) -> Option<&'static str> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    match u16::from_le_bytes([*bytes.get(18)?, *bytes.get(19)?]) {
        0xB7 => Some("aarch64"),
        0x3E => Some("x86_64"),
        _ => Some("another machine"),
    }
}

/// The transformed template with each function's `Code` a local folder, which `sam deploy` zips and uploads.
pub fn deployable(template: &Template, artifacts: &BTreeMap<String, Artifact>, path: &Path) -> anyhow::Result<()> {
    let mut json = template.json.clone();
    for (logical_id, artifact) in artifacts {
        json["Resources"][logical_id]["Properties"]["Code"] = Value::String(artifact.dir.display().to_string());
    }
    std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    Ok(())
}
