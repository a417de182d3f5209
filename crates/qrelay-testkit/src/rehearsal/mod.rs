//! The deploy rehearsal: proves, offline, that the real `sam deploy` of `template.yaml` creates a wired system.
//!
//! 1. The SAM transform runs offline (samtranslator, the SAM CLI's own; moto has none), and the real `sam deploy`
//!    with `samconfig.toml` packages `sam build`'s output and deploys the transformed template to moto's
//!    CloudFormation, once per scenario (defaults, webhook, every optional parameter), all three at once.
//! 2. What moto skips (SNS subscriptions, the queue policy, the secret, alarms, the HTTP API) or mangles
//!    (`Architectures`, `LoggingConfig`, inline policies, log group ARNs, outputs, ...) is announced as found,
//!    and filled from the transformed template where the system needs it, or checked on the template instead.
//! 3. The wiring is checked on the live resources: subscription, queue policy, receive budget, event source
//!    mapping, each function's environment (against the README's table and `REQUIRED` lists and the stack) and
//!    role (naming only its own resources).
//! 4. The real binaries run with exactly the environment the stack gave them: a question in through intake,
//!    posted after `put-secret-value`, another dead-lettered through an outage and redriven; every AWS call they
//!    made is replayed against their roles.
//! 5. `Rules` and parameter constraints, which moto ignores, are evaluated here: three deploys must be refused.
//!
//! Everything it starts (moto, the functions) is owned by a guard from [`crate::process`], so nothing outlives it.

pub mod after_class;
pub mod console;
pub mod control_plane;
pub mod functions;
pub mod iam;
pub mod journey;
pub mod readme;
pub mod recorder;
pub mod report;
pub mod scenarios;
pub mod stack;
pub mod template;
pub mod wiring;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use aws_config::SdkConfig;
use rocketchat_fake::FakeRocketChat;
use tokio::task::JoinHandle;

use self::control_plane::{Artifact, ControlPlane, Deployed};
use self::functions::{LambdaContext, RunningFunction};
use self::journey::{Functions, Plan};
use self::report::Report;
use self::scenarios::{Expect, Scenario};
use self::stack::Stack;
use self::template::{Parameters, Template};
use self::wiring::{FunctionSpec, Messaging};
use crate::moto::Moto;

/// What to rehearse.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace root (binaries, README, samconfig.toml, `.aws-sam/build`).
    pub root: PathBuf,
    /// The SAM template to deploy: `template.yaml`, or a mutated copy.
    pub template: PathBuf,
    /// Only these scenarios (all when empty).
    pub only: Vec<String>,
    /// Build the functions' host binaries first (`cargo build -p intake -p consumer -p redrive`).
    pub build: bool,
}

/// Runs the rehearsal, printing as it goes; the report holds the verdict.
pub async fn rehearse(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    let root = &options.root;
    let work = root.join("target/deploy-rehearsal");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    println!(
        "deploy rehearsal of {}: sam deploy to moto, then the wiring and the real binaries",
        options.template.display()
    );
    if options.build {
        build_binaries(root)?;
    }

    let moto = Moto::try_start().await?;
    neutralise_docker(&moto).await?;
    let sdk = moto.sdk_config().await;
    let control = ControlPlane::new(root, &work, &moto.endpoint)?;
    println!("moto on {} (work files in {})", moto.endpoint, work.display());

    let template = control
        .transform(&options.template, &work.join("transformed.json"))
        .await?;
    report.gap(
        "has no AWS::Serverless-2016-10-31 transform",
        "running samtranslator, the SAM CLI's own, offline, and giving its output to sam deploy",
    );
    let specs = wiring::functions(&template);
    let mut artifacts = BTreeMap::new();
    for spec in &specs {
        let artifact = control_plane::artifact(root, &work, &spec.logical_id, &spec.binary)?;
        println!("{} ({}): uploading {}", spec.logical_id, spec.binary, artifact.origin);
        artifacts.insert(spec.logical_id.clone(), artifact);
    }
    let deployable = work.join("deployable.json");
    control_plane::deployable(&template, &artifacts, &deployable)?;
    let bucket = control.bootstrap_bucket().await?;
    report.gap(
        "returns no Outputs for a stack made by a change set, so `sam deploy --resolve-s3` would refuse the bucket \
         stack it just made",
        "creating the same stack from the SAM CLI's own template with CreateStack before the first deploy",
    );
    println!("SAM CLI's bucket: {bucket}");

    let chat = FakeRocketChat::start().await;
    for channel in ["general", "rust-course"] {
        chat.add_channel(channel);
    }
    let existing_secret = crate::world::create_secret(
        &sdk,
        "qrelay-course/chat",
        &serde_json::json!({ "user_id": "REPLACE_ME", "token": "REPLACE_ME" }),
    )
    .await?;
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let table = readme::configuration_table(&readme)?;

    let scenarios: Vec<Scenario> = scenarios::all(&chat.url(), &existing_secret)
        .into_iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|o| o == s.name))
        .collect();
    // CloudFormation's verdict on each scenario's parameters, then every accepted deploy at once.
    let mut plans = Vec::new();
    for scenario in scenarios {
        let verdict = verdict(&template, &scenario);
        let deploy = match (&verdict, &scenario.expect) {
            (Ok(_), Expect::Deploy) => {
                let (control, deployable, stack) = (control.clone(), deployable.clone(), scenario.stack_name());
                let parameters = scenario.parameters.clone();
                Some(tokio::spawn(async move {
                    control.sam_deploy(&deployable, &stack, &parameters).await
                }))
            }
            _ => None,
        };
        plans.push((scenario, verdict, deploy));
    }

    let context = Context {
        root,
        work: &work,
        template: &template,
        specs: &specs,
        artifacts: &artifacts,
        table: &table,
        control: &control,
        sdk: &sdk,
        moto: &moto,
        chat: &chat,
    };
    let all_parameters: Vec<String> = template.json["Parameters"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for (scenario, verdict, deploy) in plans {
        report.scenario(scenario.name, scenario.what);
        if scenario.name == "all-optional" {
            let unset: Vec<&String> = all_parameters
                .iter()
                .filter(|p| !scenario.parameters.iter().any(|(k, _)| k == *p))
                .collect();
            report.check(
                unset.is_empty(),
                format!("it sets every parameter the template declares (unset: {unset:?})"),
            );
        }
        if let Err(e) = run_scenario(&context, &scenario, verdict, deploy, &mut report).await {
            report.fail(format!("the scenario could not go on: {e:#}"));
        }
    }
    report.print_summary(started.elapsed().as_secs_f64());
    Ok(report)
}

/// What every scenario shares.
pub(crate) struct Context<'a> {
    root: &'a Path,
    work: &'a Path,
    template: &'a Template,
    specs: &'a [FunctionSpec],
    artifacts: &'a BTreeMap<String, Artifact>,
    table: &'a [readme::Variable],
    control: &'a ControlPlane,
    sdk: &'a SdkConfig,
    moto: &'a Moto,
    chat: &'a FakeRocketChat,
}

impl Context<'_> {
    /// The function that runs `binary`.
    pub(crate) fn spec(&self, binary: &str) -> anyhow::Result<&FunctionSpec> {
        self.specs
            .iter()
            .find(|s| s.binary == binary)
            .with_context(|| format!("the template has no {binary} function"))
    }
}

/// CloudFormation's answer to a scenario's parameters: the full set of values, or the refusals.
fn verdict(template: &Template, scenario: &Scenario) -> Result<Parameters, Vec<String>> {
    let parameters = template.parameters(&scenario.parameters)?;
    match template.broken_rules(&parameters) {
        Ok(broken) if broken.is_empty() => Ok(parameters),
        Ok(broken) => Err(broken),
        Err(e) => Err(vec![format!("the rules could not be evaluated: {e:#}")]),
    }
}

async fn run_scenario(
    context: &Context<'_>,
    scenario: &Scenario,
    verdict: Result<Parameters, Vec<String>>,
    deploy: Option<JoinHandle<anyhow::Result<Deployed>>>,
    report: &mut Report,
) -> anyhow::Result<()> {
    report.step("parameters, Rules and constraints (moto ignores them: evaluated by the rehearsal)");
    report.gap(
        "ignores CloudFormation's Rules and parameter constraints (AllowedPattern, AllowedValues, MinValue, ...)",
        "evaluating them on the transformed template for each scenario's parameters",
    );
    let parameters = match (verdict, &scenario.expect) {
        (Ok(parameters), Expect::Deploy) => {
            report.check(true, "CloudFormation would accept these parameters");
            parameters
        }
        (Err(refusals), Expect::Refused(name)) => {
            let named = refusals.iter().any(|r| r.contains(name));
            report.check(
                named,
                format!("CloudFormation would refuse the deploy, citing {name}: {refusals:?}"),
            );
            explain_secret_refusal(context, scenario, report).await;
            return Ok(());
        }
        (Ok(_), Expect::Refused(name)) => {
            report.fail(format!(
                "CloudFormation would accept this deploy, but it must be refused ({name})"
            ));
            return Ok(());
        }
        (Err(refusals), Expect::Deploy) => {
            report.fail(format!("CloudFormation would refuse this deploy: {refusals:?}"));
            return Ok(());
        }
    };

    let stack_name = scenario.stack_name();
    let deployed = deploy.context("no deploy was started")?.await??;
    let (added, outcome) = deployed.summary();
    let ok = report.check(
        deployed.ok,
        format!(
            "sam deploy --stack-name {stack_name} (samconfig.toml): {outcome} ({added} resources in the change set, \
             {:.1} s)",
            deployed.seconds
        ),
    );
    if !ok {
        let tail: Vec<&str> = deployed.output.lines().rev().take(20).collect();
        report.note(tail.into_iter().rev().collect::<Vec<_>>().join("\n    "));
        return Ok(());
    }
    let snapshot = context.control.snapshot(&stack_name).await?;
    report.check(
        snapshot.stack.status == "CREATE_COMPLETE",
        format!("the stack is {}", snapshot.stack.status),
    );

    report.step("what moto created, and what it skipped");
    let stack = Stack::settle(context.template, &stack_name, parameters, snapshot, context.sdk, report).await?;
    let m = Messaging::of(&stack)?;
    let (intake, consumer, redrive) = (
        context.spec("intake")?,
        context.spec("consumer")?,
        context.spec("redrive")?,
    );
    let console = context.spec("console")?;
    let consumer_timeout = stack
        .snapshot
        .functions
        .get(&consumer.logical_id)
        .and_then(|f| f.timeout);
    wiring::check_messaging(&stack, context.template, &m, consumer_timeout, report).await?;
    if let Some(mapping) = wiring::check_mapping(&stack, &m, consumer, report)? {
        let state = context.control.disable_mapping(&mapping.uuid).await?;
        report.gap(
            "would run the consumer in Docker on every SendMessage to a queue with an event source mapping",
            "checking its settings, disabling it, and playing it with the testkit's SqsPoller in front of the \
             consumer's real binary",
        );
        report.note(format!("mapping {} is now {state}", mapping.uuid));
    }

    report.step("each function: settings, environment, role");
    // The functions this stack has: the digest and the escalation only with their parameters.
    let active: BTreeSet<&str> = context
        .template
        .active_resources(&stack.conditions)
        .map(|(id, _)| id)
        .collect();
    let specs: Vec<&FunctionSpec> = context
        .specs
        .iter()
        .filter(|s| active.contains(s.logical_id.as_str()))
        .collect();
    let absent: Vec<&str> = context
        .specs
        .iter()
        .filter(|s| !active.contains(s.logical_id.as_str()))
        .map(|s| s.binary.as_str())
        .collect();
    if !absent.is_empty() {
        report.note(format!(
            "not in this stack (their conditions are false): {}",
            absent.join(", ")
        ));
    }
    let mut environments = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for spec in specs.iter().copied() {
        wiring::check_function_settings(
            &stack,
            context.template,
            spec,
            &context.artifacts[&spec.logical_id],
            report,
        )?;
        let environment = wiring::environment(&stack, context.template, spec, report)?;
        wiring::check_environment(&stack, spec, &environment, context.table, report).await?;
        let live_role = &stack.snapshot.functions[&spec.logical_id].role;
        let role_id = stack
            .snapshot
            .roles
            .iter()
            .find(|(_, r)| r.arn == *live_role)
            .map(|(id, _)| id.clone())
            .with_context(|| format!("{}'s role {live_role} is not a role of the stack", spec.binary))?;
        let statements = wiring::effective_statements(&stack, context.template, &role_id, report)?;
        let own = wiring::own_resources(&stack, spec, &environment).await?;
        wiring::check_role(&stack, spec, &role_id, &statements, &own, report);
        roles.insert(spec.binary.clone(), (role_id, statements));
        environments.insert(spec.binary.clone(), environment);
    }
    let distinct: std::collections::BTreeSet<&String> = roles.values().map(|(id, _)| id).collect();
    // SAM gives each EventBridge Scheduler schedule (the digest's) a role the scheduler assumes to invoke its
    // function: checked apart, as allowed to do that and nothing else.
    let scheduler_roles = wiring::check_scheduler_roles(&stack, context.template, report);
    report.check(
        distinct.len() == specs.len() && stack.snapshot.roles.len() == specs.len() + scheduler_roles,
        format!(
            "one role per function and no other role but the schedules' ({} functions, {} distinct roles, {} \
             schedule roles, {} roles in the stack)",
            specs.len(),
            distinct.len(),
            scheduler_roles,
            stack.snapshot.roles.len()
        ),
    );

    let routes = wiring::check_api(&stack, context.template, intake, console, report)?;
    wiring::check_alarms(&stack, context.template, report).await?;
    let outputs = wiring::outputs(&stack, context.template, report)?;
    report.step("the stack's outputs (evaluated from the template)");
    for (name, value) in &outputs {
        report.note(format!("{name} = {value}"));
    }

    report.step("the real binaries with the stack's configuration");
    report.note(
        "each gets exactly its Environment.Variables (as moto reports them, with the fills above) plus what Lambda \
         sets itself and AWS_ENDPOINT_URL pointing at moto through a recording proxy",
    );
    let mut running = Vec::new();
    for spec in [intake, consumer, redrive] {
        running.push(start_function(context, &stack, spec, &environments[&spec.binary]).await?);
    }
    let [intake_run, consumer_run, redrive_run]: [RunningFunction; 3] =
        running.try_into().map_err(|_| anyhow::anyhow!("three functions"))?;
    let mut functions = Functions {
        intake: intake_run,
        consumer: consumer_run,
        redrive: redrive_run,
    };
    let plan = plan(&stack, scenario, &outputs)?;
    let journey = journey::run(&stack, &m, &routes, &mut functions, context.chat, &plan, report).await;
    let completed = journey.is_ok();
    if let Err(e) = journey {
        report.fail(format!("the journey stopped: {e:#}"));
        for f in [&functions.intake, &functions.consumer, &functions.redrive] {
            let tail = f.log_tail(8);
            if !tail.is_empty() {
                report.note(format!("{} log ({}):\n{tail}", f.logical_id, f.log_path().display()));
            }
        }
    }

    // The instructor's console: the first sign-in, the token's claims, the console's own binary behind them, and a
    // paused room seen by a new intake.
    report.step("the instructor's console: first sign-in, the console API, a paused room");
    let console_calls = match console::check(context, &stack, &environments, &routes, &plan, report).await {
        Ok(calls) => calls,
        Err(e) => {
            report.fail(format!("the console check stopped: {e:#}"));
            Vec::new()
        }
    };

    // After class and the escalation, where this stack has them.
    report.step("after class and the escalation: the digest mailed through SES, an alarm and a tick");
    let after_calls = match after_class::check(context, &stack, &environments, report).await {
        Ok(calls) => calls,
        Err(e) => {
            report.fail(format!("the after-class check stopped: {e:#}"));
            Vec::new()
        }
    };

    let mut secret_arns = BTreeMap::new();
    if let Some(id) = environments["consumer"].get("CHAT_SECRET_ID") {
        if let Ok(arn) = stack.secret_arn(id).await {
            secret_arns.insert(id.clone(), arn);
        }
    }
    let mut calls: Vec<_> = [&functions.intake, &functions.consumer, &functions.redrive]
        .into_iter()
        .zip(["intake", "consumer", "redrive"])
        .map(|(f, binary)| (binary.to_owned(), f.calls(), roles[binary].1.clone()))
        .collect();
    for (binary, made) in console_calls.into_iter().chain(after_calls) {
        calls.push((binary.clone(), made, roles[&binary].1.clone()));
    }
    journey::replay_calls(&m, &calls, &secret_arns, completed, report);
    Ok(())
}

/// Why an existing secret's ARN without its suffix must be refused: the consumer's role grants
/// `secretsmanager:GetSecretValue` on the ARN as given, and IAM matches it to no secret.
async fn explain_secret_refusal(context: &Context<'_>, scenario: &Scenario, report: &mut Report) {
    let Some((_, given)) = scenario
        .parameters
        .iter()
        .find(|(name, _)| name == wiring::EXISTING_SECRET_PARAMETER)
    else {
        return;
    };
    let secrets = aws_sdk_secretsmanager::Client::new(context.sdk);
    let Ok(Some(full)) = secrets.describe_secret().secret_id(given).send().await.map(|d| d.arn) else {
        return;
    };
    let role = iam::Statement::all_of(&serde_json::json!({ "Statement": [{
        "Sid": "ReadChatSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": given
    }]}));
    let denied = iam::allowing(&role, "secretsmanager:GetSecretValue", &full).is_none();
    report.note(format!(
        "why: deployed, the consumer's role would grant GetSecretValue on {given}, which IAM {} to the secret's ARN \
         {full}: the consumer would be refused its credentials and every question would dead-letter",
        if denied {
            "does not match"
        } else {
            "matches (unexpectedly)"
        }
    ));
}

pub(crate) async fn start_function(
    context: &Context<'_>,
    stack: &Stack,
    spec: &FunctionSpec,
    environment: &BTreeMap<String, String>,
) -> anyhow::Result<RunningFunction> {
    let live = &stack.snapshot.functions[&spec.logical_id];
    let logging = stack
        .resolver
        .resolve(&context.template.resource(&spec.logical_id).context("declared")?["Properties"]["LoggingConfig"])?;
    let lambda = LambdaContext {
        function_name: live.name.clone(),
        function_arn: live.arn.clone(),
        memory_mb: live.memory.unwrap_or(128),
        log_group: logging["LogGroup"].as_str().unwrap_or_default().to_owned(),
        log_format: logging["LogFormat"].as_str().map(str::to_owned),
        log_level: logging["ApplicationLogLevel"].as_str().map(str::to_owned),
    };
    let binary = context.root.join("target/debug").join(&spec.binary);
    anyhow::ensure!(
        binary.exists(),
        "{} is not built: run `cargo build -p {}` (or the rehearsal without --no-build)",
        binary.display(),
        spec.binary
    );
    RunningFunction::start(
        &binary,
        &spec.logical_id,
        environment,
        &lambda,
        &context.moto.endpoint,
        context.work,
    )
    .await
}

/// The room, its channel, the chat kind and the secret of a scenario, from the stack's own configuration.
fn plan(stack: &Stack, scenario: &Scenario, outputs: &BTreeMap<String, String>) -> anyhow::Result<Plan> {
    let rooms = stack.parameters.get("Rooms").cloned().unwrap_or_default();
    let channel = rooms
        .split(',')
        .find_map(|entry| {
            let (room, channel) = entry.split_once('=').unwrap_or((entry, entry));
            (room == scenario.room).then(|| channel.trim_start_matches('#').to_owned())
        })
        .with_context(|| format!("room {} is not in Rooms {rooms}", scenario.room))?;
    Ok(Plan {
        room: scenario.room.to_owned(),
        channel,
        chat_kind: stack.parameters.get("ChatKind").cloned().unwrap_or_default(),
        secret_arn: outputs
            .get("ChatSecretArn")
            .cloned()
            .context("the stack has no ChatSecretArn output: where would the instructor put the credentials?")?,
    })
}

/// Builds the functions' host binaries, which the rehearsal runs (the uploaded packages are for Lambda).
fn build_binaries(root: &Path) -> anyhow::Result<()> {
    println!("== cargo build -p intake -p consumer -p redrive -p console -p qrelay-digest -p escalation");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "-p",
            "intake",
            "-p",
            "consumer",
            "-p",
            "redrive",
            "-p",
            "console",
            "-p",
            "qrelay-digest",
            "-p",
            "escalation",
        ])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build of the functions failed");
    Ok(())
}

/// moto would try Docker to run a function whenever a queue with an event source mapping gets a message; the
/// rehearsal plays the mapping itself, so moto's Lambda is told never to use Docker.
async fn neutralise_docker(moto: &Moto) -> anyhow::Result<()> {
    let client = qrelay::chat::http_client(std::time::Duration::from_secs(10))?;
    let response = client
        .post(format!("{}/moto-api/config", moto.endpoint))
        .body(r#"{"lambda": {"use_docker": false}}"#)
        .send()
        .await
        .context("configuring moto")?;
    anyhow::ensure!(
        response.status().is_success(),
        "moto refused its configuration: {}",
        response.status()
    );
    Ok(())
}
