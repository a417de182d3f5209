//! The wiring of a deployed stack, checked on the live resources: topic → queue subscription, the queue policy,
//! the receive budget, the event source mapping, each function's settings, environment (against the README's
//! table, the configuration's `REQUIRED` lists and the live resources) and role (one per function, naming only
//! that function's own resources). Where moto skipped or mangled something, the check says so and uses the
//! transformed template, resolved against the live resources, instead.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use serde_json::Value;

use super::control_plane::{Artifact, Mapping};
use super::iam::Statement;
use super::readme;
use super::report::Report;
use super::stack::{Stack, log_group_arn, queue_arn_of_url};
use super::template::Template;

// The template's logical ids the wiring is about (tests/integration/template.rs holds the template to them too).
pub const TOPIC: &str = "QuestionTopic";
pub const QUEUE: &str = "QuestionQueue";
pub const DEAD_LETTER_QUEUE: &str = "DeadLetterQueue";
pub const ALARM_TOPIC: &str = "AlarmTopic";
pub const CHAT_SECRET: &str = "ChatSecret";
pub const EXISTING_SECRET_PARAMETER: &str = "ExistingChatSecretArn";

/// The SQS receives before a question is dead-lettered: the consumer's backoff schedule spans about six hours
/// with it (README "Delivery").
pub const MAX_RECEIVE_COUNT: u64 = 30;
/// Fourteen days, the longest SQS keeps a message.
const FOURTEEN_DAYS: &str = "1209600";

/// A function of the stack: its logical id and the workspace binary it runs (`Metadata.BuildProperties.Binary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
}

/// The stack's functions, from the transformed template.
pub fn functions(template: &Template) -> Vec<FunctionSpec> {
    template
        .resources()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(id, r)| FunctionSpec {
            logical_id: id.to_owned(),
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or(id)
                .to_owned(),
        })
        .collect()
}

/// What a configuration variable must hold in a deployed stack.
#[derive(Debug, Clone, Copy)]
enum Holds {
    /// `Ref` of this resource (a topic's ARN, a queue's URL).
    Ref(&'static str),
    /// `Fn::GetAtt <resource>.Arn`.
    Arn(&'static str),
    /// This parameter's value.
    Parameter(&'static str),
    /// The full ARN (with its six-character suffix) of the chat secret: the stack's own or the existing one.
    ChatSecret,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// The stack's region.
    Region,
    /// The issuer URL of this user pool's tokens (`https://cognito-idp.<region>.amazonaws.com/<pool id>`).
    Issuer(&'static str),
    /// What the transformed template resolves it to (compared with moto's value in [`environment`]): for values
    /// made of resources moto skips, such as the alarms' names and the API's address.
    AsTemplated,
}

/// Every variable the template may set, and what it must hold.
const EXPECTED: [(&str, Holds); 30] = [
    ("TOPIC_ARN", Holds::Ref(TOPIC)),
    ("QUEUE_URL", Holds::Ref(QUEUE)),
    ("QUEUE_ARN", Holds::Arn(QUEUE)),
    ("DEAD_LETTER_QUEUE_URL", Holds::Ref(DEAD_LETTER_QUEUE)),
    ("DEAD_LETTER_QUEUE_ARN", Holds::Arn(DEAD_LETTER_QUEUE)),
    ("CHAT_SECRET_ID", Holds::ChatSecret),
    ("ROOMS", Holds::Parameter("Rooms")),
    ("CHAT_KIND", Holds::Parameter("ChatKind")),
    ("CHAT_URL", Holds::Parameter("ChatUrl")),
    ("TIME_ZONE", Holds::Parameter("TimeZone")),
    ("MAX_QUESTION_CHARS", Holds::Parameter("MaxQuestionChars")),
    ("MAX_NICKNAME_CHARS", Holds::Parameter("MaxNicknameChars")),
    ("REDRIVE_MODE", Holds::OneOf(&["copy", "native"])),
    ("CONTROL_TABLE", Holds::Ref(CONTROL_TABLE)),
    ("FLOOD_THRESHOLD", Holds::Parameter("FloodThreshold")),
    ("HELD_DAYS", Holds::Parameter("HeldQuestionDays")),
    ("COGNITO_REGION", Holds::Region),
    ("COGNITO_CLIENT_ID", Holds::Ref(USER_POOL_CLIENT)),
    ("COGNITO_ISSUER", Holds::Issuer(USER_POOL)),
    ("RETENTION_DAYS", Holds::Parameter("RetentionDays")),
    ("DIGEST_EMAIL", Holds::Parameter("DigestEmail")),
    ("DIGEST_LANGUAGE", Holds::Parameter("InstructorLanguage")),
    ("DIGEST_TOPIC_ARN", Holds::Ref("DigestRequestTopic")),
    ("ESCALATION_PHONES", Holds::Parameter("EscalationPhones")),
    ("ESCALATE_AFTER_MINUTES", Holds::Parameter("EscalateAfterMinutes")),
    ("ESCALATION_LANGUAGE", Holds::Parameter("InstructorLanguage")),
    ("ESCALATION_ALARMS", Holds::AsTemplated),
    ("ESCALATION_CALLBACK_URL", Holds::AsTemplated),
    ("TWILIO_SECRET_ID", Holds::Ref("TwilioSecret")),
    ("TWILIO_FROM", Holds::Parameter("TwilioFromNumber")),
];

/// The instructor's table, user pool and the console's app client.
pub const CONTROL_TABLE: &str = "ControlTable";
pub const USER_POOL: &str = "InstructorUserPool";
pub const USER_POOL_CLIENT: &str = "InstructorUserPoolClient";
/// The authorizer every console route must carry.
pub const CONSOLE_AUTHORIZER: &str = "InstructorJwt";

/// The live names of the stack's messaging resources.
#[derive(Debug, Clone)]
pub struct Messaging {
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

impl Messaging {
    pub fn of(stack: &Stack) -> anyhow::Result<Self> {
        Ok(Self {
            topic_arn: stack.reference(TOPIC)?,
            queue_url: stack.reference(QUEUE)?,
            queue_arn: stack.attribute(QUEUE, "Arn")?,
            dlq_url: stack.reference(DEAD_LETTER_QUEUE)?,
            dlq_arn: stack.attribute(DEAD_LETTER_QUEUE, "Arn")?,
        })
    }
}

/// Topic → queue → dead-letter queue, as created (and filled).
pub async fn check_messaging(
    stack: &Stack,
    template: &Template,
    m: &Messaging,
    consumer_timeout: Option<u64>,
    report: &mut Report,
) -> anyhow::Result<()> {
    report.step("messaging: topic -> queue -> dead-letter queue");
    let subscriptions = stack.subscriptions(&m.topic_arn).await?;
    let to_queue: Vec<&BTreeMap<String, String>> = subscriptions
        .iter()
        .filter(|s| s.get("Protocol").map(String::as_str) == Some("sqs") && s.get("Endpoint") == Some(&m.queue_arn))
        .collect();
    report.check(
        to_queue.len() == 1 && subscriptions.len() == 1,
        format!(
            "the question topic has exactly one subscription, the question queue's (found {}: {:?})",
            subscriptions.len(),
            subscriptions
                .iter()
                .map(|s| s.get("Endpoint").cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        ),
    );
    for subscription in to_queue {
        let raw = subscription
            .get("RawMessageDelivery")
            .map(String::as_str)
            .unwrap_or("false");
        report.check(
            raw == "false",
            format!(
                "the subscription delivers the standard SNS envelope, as the template and ARCHITECTURE.md promise \
                 (RawMessageDelivery {raw})"
            ),
        );
    }

    let queue = stack.queue_attributes(&m.queue_url).await?;
    let dlq = stack.queue_attributes(&m.dlq_url).await?;
    check_queue_policy(queue.get("Policy"), m, report);

    let redrive: Value = queue
        .get("RedrivePolicy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    report.check(
        redrive["deadLetterTargetArn"] == m.dlq_arn.as_str(),
        format!(
            "the queue dead-letters into the stack's DLQ ({})",
            redrive["deadLetterTargetArn"]
        ),
    );
    let receives = redrive["maxReceiveCount"]
        .as_u64()
        .or_else(|| redrive["maxReceiveCount"].as_str()?.parse().ok());
    report.check(
        receives == Some(MAX_RECEIVE_COUNT),
        format!(
            "maxReceiveCount is {MAX_RECEIVE_COUNT}, the budget the consumer's backoff (about 6 hours) assumes \
             (live: {receives:?})"
        ),
    );
    let visibility: u64 = queue.get("VisibilityTimeout").and_then(|v| v.parse().ok()).unwrap_or(0);
    if let Some(timeout) = consumer_timeout {
        report.check(
            visibility >= 6 * timeout,
            format!("the queue's visibility timeout {visibility} s is at least 6 x the consumer's {timeout} s"),
        );
    }
    for (name, attributes) in [("queue", &queue), ("DLQ", &dlq)] {
        report.check(
            attributes.get("MessageRetentionPeriod").map(String::as_str) == Some(FOURTEEN_DAYS)
                && attributes.get("SqsManagedSseEnabled").map(String::as_str) == Some("true"),
            format!(
                "the {name} keeps messages 14 days, encrypted with SQS-managed keys (retention {:?}, SSE {:?})",
                attributes.get("MessageRetentionPeriod"),
                attributes.get("SqsManagedSseEnabled")
            ),
        );
    }

    // moto stores the DLQ's RedriveAllowPolicy and never returns it.
    if !dlq.contains_key("RedriveAllowPolicy") {
        report.gap(
            "stores the DLQ's RedriveAllowPolicy but never returns it",
            "resolving the transformed template's policy against the live queues",
        );
        let declared = template
            .resource(DEAD_LETTER_QUEUE)
            .map(|r| stack.resolver.resolve(&r["Properties"]["RedriveAllowPolicy"]))
            .transpose()?
            .unwrap_or_default();
        report.check(
            declared["redrivePermission"] == "byQueue"
                && declared["sourceQueueArns"] == serde_json::json!([m.queue_arn]),
            format!("only the question queue may dead-letter into the DLQ and be redriven to: {declared}"),
        );
    }
    Ok(())
}

fn check_queue_policy(policy: Option<&String>, m: &Messaging, report: &mut Report) {
    let policy: Value = policy.and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let statements = Statement::all_of(&policy);
    report.check(
        statements.len() == 1,
        format!(
            "the queue policy has exactly one statement (found {})",
            statements.len()
        ),
    );
    let Some(raw) = policy["Statement"]
        .as_array()
        .and_then(|s| s.first())
        .or(policy.get("Statement"))
    else {
        report.fail("the question queue has no policy: SNS could not deliver into it in AWS");
        return;
    };
    report.check(
        raw["Effect"] == "Allow"
            && raw["Principal"]["Service"] == "sns.amazonaws.com"
            && raw["Action"] == "sqs:SendMessage"
            && raw["Resource"] == m.queue_arn.as_str(),
        format!(
            "the queue policy lets SNS send to this queue and do nothing else (Effect {}, Principal {}, Action {}, \
             Resource {})",
            raw["Effect"], raw["Principal"], raw["Action"], raw["Resource"]
        ),
    );
    let source = &raw["Condition"]["ArnEquals"]["aws:SourceArn"];
    report.check(
        source == m.topic_arn.as_str(),
        format!(
            "the queue policy's aws:SourceArn is the topic the queue is subscribed to and intake publishes to \
             ({source}; expected {})",
            m.topic_arn
        ),
    );
}

/// The consumer's SQS event source mapping, as created (before the rehearsal neutralises it).
pub fn check_mapping(
    stack: &Stack,
    m: &Messaging,
    consumer: &FunctionSpec,
    report: &mut Report,
) -> anyhow::Result<Option<Mapping>> {
    report.step("the consumer's event source mapping");
    let consumer_arn = stack.attribute(&consumer.logical_id, "Arn")?;
    let (mine, others): (Vec<&Mapping>, Vec<&Mapping>) = stack
        .snapshot
        .mappings
        .iter()
        .partition(|mapping| mapping.function_arn.as_deref() == Some(consumer_arn.as_str()));
    report.check(
        mine.len() == 1 && others.is_empty(),
        format!(
            "the consumer has exactly one event source and no other function has one ({} and {})",
            mine.len(),
            others.len()
        ),
    );
    let Some(mapping) = mine.first() else {
        return Ok(None);
    };
    report.check(
        mapping.source_arn.as_deref() == Some(m.queue_arn.as_str()),
        format!("it reads the question queue ({:?})", mapping.source_arn),
    );
    report.check(
        mapping.response_types == ["ReportBatchItemFailures"],
        format!(
            "FunctionResponseTypes is ReportBatchItemFailures, or one failed question retries its batch ({:?})",
            mapping.response_types
        ),
    );
    report.check(
        mapping.batch_size.is_some_and(|b| (1..=10).contains(&b)),
        format!("a batch is at most 10 questions ({:?})", mapping.batch_size),
    );
    report.check(
        mapping.batching_window_seconds.is_some_and(|w| w <= 1),
        format!(
            "it waits at most 1 s to fill a batch, so a question shows about a second after it was sent ({:?})",
            mapping.batching_window_seconds
        ),
    );
    report.check(
        mapping.maximum_concurrency.is_some_and(|c| (2..=1000).contains(&c)),
        format!(
            "ScalingConfig.MaximumConcurrency paces the chat within SQS's 2 to 1000 ({:?})",
            mapping.maximum_concurrency
        ),
    );
    report.check(
        mapping.state.as_deref() == Some("Enabled"),
        format!("it is enabled ({:?})", mapping.state),
    );
    Ok(Some((*mapping).clone()))
}

/// Each function's runtime settings: what moto keeps live, what it drops checked on the template.
pub fn check_function_settings(
    stack: &Stack,
    template: &Template,
    spec: &FunctionSpec,
    artifact: &Artifact,
    report: &mut Report,
) -> anyhow::Result<()> {
    let live = stack
        .snapshot
        .functions
        .get(&spec.logical_id)
        .with_context(|| format!("moto has no {}", spec.logical_id))?;
    let declared = &template.resource(&spec.logical_id).context("declared")?["Properties"];
    report.check(
        live.runtime.as_deref() == Some("provided.al2023") && live.handler.as_deref() == Some("bootstrap"),
        format!(
            "{} runs bootstrap on provided.al2023 ({:?}, {:?})",
            spec.binary, live.runtime, live.handler
        ),
    );
    report.check(
        live.timeout == declared["Timeout"].as_u64() && live.memory == declared["MemorySize"].as_u64(),
        format!(
            "{}'s timeout and memory are the template's ({:?} s, {:?} MB)",
            spec.binary, live.timeout, live.memory
        ),
    );
    let architectures: Vec<&str> = declared["Architectures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if live
        .architectures
        .iter()
        .map(String::as_str)
        .ne(architectures.iter().copied())
    {
        report.gap(
            format!("drops Lambda's Architectures (reports {:?})", live.architectures),
            "reading it on the transformed template and checking the uploaded bootstrap's ELF header",
        );
    }
    report.check(
        architectures == ["arm64"],
        format!("{} is declared for arm64 (Graviton): {architectures:?}", spec.binary),
    );
    match artifact.machine {
        Some("aarch64") => {
            report.check(
                true,
                format!(
                    "{}'s uploaded bootstrap is an aarch64 executable ({})",
                    spec.binary, artifact.origin
                ),
            );
        }
        other => report.note(format!(
            "WARNING: {}'s uploaded bootstrap is {} ({}): not what an arm64 function can run. The rehearsal \
             checks the template, not this build; .ci/sam-check says why it could not build for arm64.",
            spec.binary,
            other.unwrap_or("no executable"),
            artifact.origin
        )),
    }

    let logging = stack.resolver.resolve(&declared["LoggingConfig"])?;
    if live.logging.is_none() {
        report.gap(
            "drops Lambda's LoggingConfig",
            "reading it on the transformed template: the log group it names exists live with its retention, and the \
             function runs with the AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL Lambda would set from it",
        );
    }
    let group = logging["LogGroup"].as_str().unwrap_or_default();
    let expected_group = format!("/aws/lambda/{}", live.name);
    let retention = stack
        .parameters
        .get("LogRetentionDays")
        .and_then(|d| d.parse::<u64>().ok());
    let live_group = stack.snapshot.log_groups.values().find(|g| g.name == group);
    report.check(
        group == expected_group && live_group.is_some_and(|g| g.retention_days == retention),
        format!(
            "{} logs to its own group {group} (expected {expected_group}), kept {:?} days (LogRetentionDays {retention:?})",
            spec.binary,
            live_group.and_then(|g| g.retention_days)
        ),
    );
    report.check(
        logging["LogFormat"] == "JSON",
        format!("{} logs JSON ({})", spec.binary, logging["LogFormat"]),
    );
    Ok(())
}

/// The environment the function's process gets: moto's, with what moto dropped or mangled filled from the
/// transformed template (and said so).
pub fn environment(
    stack: &Stack,
    template: &Template,
    spec: &FunctionSpec,
    report: &mut Report,
) -> anyhow::Result<BTreeMap<String, String>> {
    let live = &stack.snapshot.functions[&spec.logical_id].environment;
    let declared = template.resource(&spec.logical_id).context("declared")?["Properties"]["Environment"]["Variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut environment = BTreeMap::new();
    for (name, value) in &declared {
        let resolved = stack
            .resolver
            .text(value)
            .with_context(|| format!("resolving {}'s {name}", spec.logical_id))?;
        let via_filled: Vec<String> = stack
            .resolver
            .references(value)
            .into_iter()
            .filter(|id| stack.filled.contains(id))
            .collect();
        // What the process gets is moto's value, as text; the template's only where moto dropped it, or left a
        // `Fn::Sub` of a skipped resource unresolved (`${InstructorUserPool}`).
        let unresolved_sub =
            |text: &str| !via_filled.is_empty() && via_filled.iter().any(|id| text.contains(&format!("${{{id}}}")));
        // Made of resources moto skips and the rehearsal reads on the template (the alarms' names, the API's
        // address): moto renders them "None"; the process gets what CloudFormation would give, each such resource
        // named by a stand-in.
        let via_absent: Vec<String> = stack
            .resolver
            .references(value)
            .into_iter()
            .filter(|id| stack.resolver.absent.contains(id))
            .collect();
        if !via_absent.is_empty() {
            let stand_in = stand_ins(&resolved);
            report.gap(
                "renders a reference to a resource it skipped (an alarm's name, the HTTP API's id) as \"None\" in a \
                 function's environment",
                "passing the value CloudFormation would, each skipped resource named by a stand-in \
                 (`<id>-rehearsal`), and checking the rest of the value against the transformed template",
            );
            report.note(format!(
                "{}: {name} was {:?} in moto; passed as {stand_in}",
                spec.binary,
                live.get(name)
            ));
            environment.insert(name.clone(), stand_in);
            continue;
        }
        let passed = match live.get(name) {
            Some(Value::String(text)) if unresolved_sub(text) => resolved.clone(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => resolved.clone(),
        };
        match live.get(name) {
            Some(Value::String(text)) if *text == resolved => {}
            Some(Value::String(text)) if unresolved_sub(text) => {
                report.gap(
                    "leaves a Fn::Sub of a skipped resource unresolved in a function's environment (${Resource})",
                    "resolving the transformed template's value against the resource the rehearsal created",
                );
                report.note(format!(
                    "{}: {name} was {text:?} in moto; filled with {resolved}",
                    spec.binary
                ));
            }
            Some(Value::Number(_)) if passed == resolved => report.gap(
                "keeps a Number parameter's value as a JSON number in a function's environment",
                "passing it as the text Lambda would (it has only strings)",
            ),
            None if !via_filled.is_empty() => {
                report.gap(
                    "drops an environment variable that refers to a skipped resource",
                    "resolving the transformed template's value against the resource the rehearsal created",
                );
                report.note(format!(
                    "{}: {name} was dropped by moto (it refers to {}); filled with {resolved}",
                    spec.binary,
                    via_filled.join(", ")
                ));
            }
            other => {
                report.fail(format!(
                    "{}: moto's {name} = {other:?}, but the transformed template resolves to {resolved:?}",
                    spec.binary
                ));
            }
        }
        environment.insert(name.clone(), passed);
    }
    for name in live.keys().filter(|n| !declared.contains_key(*n)) {
        report.fail(format!("{}: moto set {name}, which the template does not", spec.binary));
    }
    Ok(environment)
}

/// The resolver's text with each `<Id: not created>` (a resource moto skipped) replaced by `id-rehearsal`, a name
/// valid where the real one goes (an alarm's name, a host label).
fn stand_ins(resolved: &str) -> String {
    let mut out = String::with_capacity(resolved.len());
    let mut rest = resolved;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find(": not created>") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&rest[start + 1..start + end].to_lowercase());
        out.push_str("-rehearsal");
        rest = &rest[start + end + ": not created>".len()..];
    }
    out.push_str(rest);
    out
}

/// A function's environment against the README's table, its configuration's `REQUIRED` list and the stack.
pub async fn check_environment(
    stack: &Stack,
    spec: &FunctionSpec,
    environment: &BTreeMap<String, String>,
    table: &[readme::Variable],
    report: &mut Report,
) -> anyhow::Result<()> {
    let function = spec.binary.as_str();
    for (name, value) in environment {
        let mut problems = Vec::new();
        let documented = table
            .iter()
            .any(|v| v.name == *name && v.functions.iter().any(|f| f == function));
        if !documented {
            problems.push(format!(
                "the README's configuration table does not list {name} for {function}, so {function} does not read it"
            ));
        }
        match EXPECTED.iter().find(|(n, _)| n == name) {
            Some((_, holds)) => {
                if let Err(problem) = holds_what(stack, *holds, value).await {
                    problems.push(problem);
                }
            }
            None if documented => problems.push(format!(
                "the rehearsal does not know what {name} must hold in a deployed stack: add it to EXPECTED (wiring.rs)"
            )),
            None => {}
        }
        report.check(
            problems.is_empty(),
            format!(
                "{function} {name}={value}{}",
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(": {}", problems.join("; "))
                }
            ),
        );
    }

    let code_required: &[&str] = match function {
        "intake" => qrelay::config::IntakeConfig::REQUIRED,
        "consumer" => qrelay::config::ConsumerConfig::REQUIRED,
        "redrive" => qrelay::config::RedriveConfig::REQUIRED,
        "console" => qrelay::config::ConsoleConfig::REQUIRED,
        "digest" => qrelay::config::DigestConfig::REQUIRED,
        "escalation" => qrelay::config::EscalationConfig::REQUIRED,
        _ => &[],
    };
    let chat_kind = environment.get("CHAT_KIND").map_or("rocketchat", String::as_str);
    // The consumer's CHAT_URL, required for Rocket.Chat and Mattermost only, comes from the README's "required for".
    let mut required: BTreeSet<&str> = code_required.iter().copied().collect();
    for variable in table.iter().filter(|v| v.functions.iter().any(|f| f == function)) {
        if variable.required() || variable.required_for(chat_kind) {
            required.insert(&variable.name);
        }
    }
    let missing: Vec<&&str> = required
        .iter()
        .filter(|name| environment.get(**name).is_none_or(String::is_empty))
        .collect();
    report.check(
        missing.is_empty(),
        format!(
            "{function} has every variable the README and its REQUIRED list require ({}){}",
            required.iter().copied().collect::<Vec<_>>().join(", "),
            if missing.is_empty() {
                String::new()
            } else {
                format!(": missing {missing:?}")
            }
        ),
    );
    Ok(())
}

async fn holds_what(stack: &Stack, holds: Holds, value: &str) -> Result<(), String> {
    let expected = match holds {
        Holds::Ref(id) => stack.reference(id).map_err(|e| format!("{e:#}"))?,
        Holds::Arn(id) => stack.attribute(id, "Arn").map_err(|e| format!("{e:#}"))?,
        Holds::Parameter(name) => stack.parameters.get(name).cloned().unwrap_or_default(),
        Holds::Region => super::template::REGION.to_owned(),
        Holds::Issuer(pool) => format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            super::template::REGION,
            stack.reference(pool).map_err(|e| format!("{e:#}"))?
        ),
        Holds::AsTemplated => return Ok(()),
        Holds::OneOf(words) => {
            return if words.contains(&value) {
                Ok(())
            } else {
                Err(format!("not one of {words:?}"))
            };
        }
        Holds::ChatSecret => {
            let expected = if stack.conditions.get("CreateChatSecret").copied().unwrap_or(true) {
                stack.reference(CHAT_SECRET).map_err(|e| format!("{e:#}"))?
            } else {
                stack
                    .parameters
                    .get(EXISTING_SECRET_PARAMETER)
                    .cloned()
                    .unwrap_or_default()
            };
            let full = stack
                .secret_arn(value)
                .await
                .map_err(|e| format!("no such secret: {e:#}"))?;
            if full != value {
                return Err(format!(
                    "names the secret without its six-character suffix (its ARN is {full}); IAM grants on the full ARN"
                ));
            }
            expected
        }
    };
    if value == expected {
        Ok(())
    } else {
        Err(format!("expected {expected}"))
    }
}

/// The resources a function may name in its role: those its environment names (queues by ARN, the secret by its
/// full ARN) and its own log group.
pub async fn own_resources(
    stack: &Stack,
    spec: &FunctionSpec,
    environment: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut own = BTreeSet::new();
    for (name, value) in environment {
        if name == "CHAT_SECRET_ID" {
            if let Ok(arn) = stack.secret_arn(value).await {
                own.insert(arn);
            }
        } else if name == "CONTROL_TABLE" {
            // A table is named by its name; IAM grants on its ARN.
            own.insert(stack.attribute(CONTROL_TABLE, "Arn")?);
        } else if name == "DIGEST_EMAIL" && spec.binary == "digest" {
            // SES grants sending on the identity the address is.
            own.insert(format!(
                "arn:aws:ses:{}:{}:identity/{value}",
                super::template::REGION,
                super::template::ACCOUNT_ID
            ));
        } else if value.starts_with("arn:") {
            own.insert(value.clone());
        } else if name.ends_with("QUEUE_URL") {
            own.insert(queue_arn_of_url(value));
        }
    }
    let live = &stack.snapshot.functions[&spec.logical_id];
    let group = format!("/aws/lambda/{}", live.name);
    own.insert(log_group_arn(&group, true));
    own.insert(log_group_arn(&group, false));
    Ok(own)
}

/// A role's statements as IAM would evaluate them: moto's, each statement whose `Resource` moto dropped (it
/// referred to a skipped resource) taken from the transformed template, resolved.
pub fn effective_statements(
    stack: &Stack,
    template: &Template,
    role_id: &str,
    report: &mut Report,
) -> anyhow::Result<Vec<Statement>> {
    let role = stack
        .snapshot
        .roles
        .get(role_id)
        .with_context(|| format!("moto has no role {role_id}"))?;
    let declared: Vec<Value> = template.resource(role_id).context("declared role")?["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| match &p["PolicyDocument"]["Statement"] {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        })
        .collect();
    let mut statements = Vec::new();
    for policy in role.inline.values() {
        if policy.stored_as != "json" {
            report.gap(
                "stores CloudFormation's inline role policies as Python's repr, not JSON",
                "reading them with Python's ast.literal_eval",
            );
        }
        for mut statement in Statement::all_of(&policy.document) {
            if statement.resources.is_none() {
                let from_template = declared
                    .iter()
                    .find(|s| s["Sid"] == statement.sid.as_str())
                    .with_context(|| format!("{role_id}'s statement {} is not in the template", statement.sid))?;
                let resolved = Statement::from_json(&stack.resolver.resolve(from_template)?);
                report.gap(
                    "drops a role statement's Resource when it refers to a skipped resource",
                    "taking the statement from the transformed template, resolved against the resource the \
                     rehearsal created",
                );
                report.note(format!(
                    "{role_id}'s statement {} lost its Resource in moto; the template's resolves to {:?}",
                    statement.sid, resolved.resources
                ));
                statement.resources = resolved.resources;
            }
            statements.push(statement);
        }
    }
    Ok(statements)
}

/// One role per function, each naming only that function's own resources, with no managed policies.
pub fn check_role(
    stack: &Stack,
    spec: &FunctionSpec,
    role_id: &str,
    statements: &[Statement],
    own: &BTreeSet<String>,
    report: &mut Report,
) {
    let role = &stack.snapshot.roles[role_id];
    report.check(
        role.attached.is_empty(),
        format!(
            "{} ({role_id}) has no managed policies, whose resources are every resource ({:?})",
            spec.binary, role.attached
        ),
    );
    for statement in statements {
        let resources = statement.resources.clone().unwrap_or_default();
        let foreign: Vec<&String> = resources.iter().filter(|r| !own.contains(*r)).collect();
        let mut problems = Vec::new();
        if statement.effect != "Allow" || !statement.negations.is_empty() {
            problems.push(format!("Effect {} with {:?}", statement.effect, statement.negations));
        }
        if resources.is_empty() {
            problems.push("no Resource".to_owned());
        }
        if !foreign.is_empty() {
            problems.push(format!(
                "names {foreign:?}, which {} is not configured with (its own: {own:?})",
                spec.binary
            ));
        }
        if statement.actions.iter().any(|a| a.contains('*')) {
            problems.push(format!("wildcard action in {:?}", statement.actions));
        }
        report.check(
            problems.is_empty(),
            format!(
                "{} {role_id} {}: {} on {resources:?}{}",
                spec.binary,
                statement.sid,
                statement.actions.join(", "),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(": {}", problems.join("; "))
                }
            ),
        );
    }
}

/// The form's HTTP API, which moto skips, read on the transformed template; and the intake's permissions, which
/// moto creates, matched to its routes. Returns the routes (`GET /r/{room}`, ...).
pub fn check_api(
    stack: &Stack,
    template: &Template,
    intake: &FunctionSpec,
    console: &FunctionSpec,
    report: &mut Report,
) -> anyhow::Result<Vec<(String, String)>> {
    report.step("the form's HTTP API (skipped by moto: read on the transformed template)");
    let intake_arn = stack.attribute(&intake.logical_id, "Arn")?;
    let console_arn = stack.attribute(&console.logical_id, "Arn")?;
    let issuer = format!(
        "https://cognito-idp.{}.amazonaws.com/{}",
        super::template::REGION,
        stack.reference(USER_POOL)?
    );
    let client = stack.reference(USER_POOL_CLIENT)?;
    let mut routes = Vec::new();
    let mut console_routes = Vec::new();
    for (id, api) in template
        .active_resources(&stack.conditions)
        .filter(|(_, r)| r["Type"] == "AWS::ApiGatewayV2::Api")
    {
        let body = stack.resolver.resolve(&api["Properties"]["Body"])?;
        let scheme = &body["components"]["securitySchemes"][CONSOLE_AUTHORIZER];
        let authorizer = &scheme["x-amazon-apigateway-authorizer"];
        report.check(
            authorizer["type"] == "jwt"
                && authorizer["jwtConfiguration"]["issuer"] == issuer.as_str()
                && authorizer["jwtConfiguration"]["audience"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1 && a[0] == client.as_str())
                && authorizer["identitySource"] == "$request.header.Authorization",
            format!(
                "{id}: the {CONSOLE_AUTHORIZER} authorizer accepts ID tokens of this stack's pool ({issuer}) for its console client ({client}) only: {authorizer}"
            ),
        );
        for (path, methods) in body["paths"].as_object().into_iter().flatten() {
            for (method, operation) in methods.as_object().into_iter().flatten() {
                let integration = &operation["x-amazon-apigateway-integration"];
                let uri = integration["uri"].as_str().unwrap_or_default();
                let method = match method.as_str() {
                    "x-amazon-apigateway-any-method" => "ANY".to_owned(),
                    other => other.to_uppercase(),
                };
                let secured_by: Vec<&str> = operation["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_object())
                    .flat_map(|s| s.keys().map(String::as_str))
                    .collect();
                if path.starts_with("/instructor/api/") {
                    report.check(
                        uri.contains(&format!("/functions/{console_arn}/invocations"))
                            && integration["payloadFormatVersion"] == "2.0"
                            && secured_by == [CONSOLE_AUTHORIZER],
                        format!(
                            "{id}: {method} {path} invokes the console ({console_arn}) only behind                              {CONSOLE_AUTHORIZER} (security {secured_by:?})"
                        ),
                    );
                    console_routes.push((method, path.clone()));
                } else {
                    report.check(
                        uri.contains(&format!("/functions/{intake_arn}/invocations"))
                            && integration["payloadFormatVersion"] == "2.0"
                            && secured_by.is_empty(),
                        format!(
                            "{id}: {method} {path} invokes the intake ({intake_arn}), public, with payload format {}",
                            integration["payloadFormatVersion"]
                        ),
                    );
                    routes.push((method, path.clone()));
                }
            }
        }
    }
    routes.sort();
    report.check(
        !console_routes.is_empty(),
        format!("the console's API has routes, all under /instructor/api/ ({console_routes:?})"),
    );
    for (id, stage) in template
        .active_resources(&stack.conditions)
        .filter(|(_, r)| r["Type"] == "AWS::ApiGatewayV2::Stage")
    {
        let properties = stack.resolver.resolve(&stage["Properties"])?;
        let throttling = &properties["DefaultRouteSettings"];
        let parameter = |name: &str| stack.parameters.get(name).cloned().unwrap_or_default();
        report.check(
            throttling["ThrottlingRateLimit"].to_string().trim_matches('"') == parameter("ThrottleRateLimit")
                && throttling["ThrottlingBurstLimit"].to_string().trim_matches('"') == parameter("ThrottleBurstLimit"),
            format!("{id} throttles every route to ThrottleRateLimit/ThrottleBurstLimit ({throttling})"),
        );
        let questions = &properties["RouteSettings"]["POST /questions"];
        report.check(
            questions["ThrottlingRateLimit"].to_string().trim_matches('"') == parameter("QuestionThrottleRateLimit")
                && questions["ThrottlingBurstLimit"].to_string().trim_matches('"')
                    == parameter("QuestionThrottleBurstLimit"),
            format!(
                "{id} throttles POST /questions to QuestionThrottleRateLimit/QuestionThrottleBurstLimit ({questions})"
            ),
        );
        let log = &properties["AccessLogSettings"];
        let format = log["Format"].as_str().unwrap_or_default();
        let destination = log["DestinationArn"].as_str().unwrap_or_default();
        let live_group = stack
            .snapshot
            .log_groups
            .values()
            .find(|g| log_group_arn(&g.name, true) == destination);
        report.check(
            live_group.is_some() && !format.is_empty(),
            format!("{id} writes an access log to a live log group of this stack ({destination})"),
        );
        report.check(
            !["sourceIp", "userAgent", "identity"].iter().any(|w| format.contains(w)),
            format!("{id}'s access log holds no client IP or user agent: the questions are anonymous"),
        );
    }

    // moto creates the permissions, but renders the skipped API's id as text ("None").
    let mut permitted = Vec::new();
    for (id, function) in &stack.snapshot.functions {
        for statement in &function.permissions {
            let principal = statement["Principal"]["Service"].as_str().unwrap_or_default();
            let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .unwrap_or_default();
            if principal != "apigateway.amazonaws.com" {
                // The digest's request topic, the alarm topic, the escalation's tick: not the API.
                report.check(
                    matches!(principal, "sns.amazonaws.com" | "events.amazonaws.com")
                        && !source.is_empty()
                        && statement["Action"] == "lambda:InvokeFunction",
                    format!("{id} may be invoked by {principal} from {source} only"),
                );
                continue;
            }
            let route = source.split_once("/*/").map(|(_, r)| r.to_owned()).unwrap_or_default();
            let (method, path) = route.split_once('/').unwrap_or((&route, ""));
            // The escalation's one route, Twilio's signed callback, written out in the template.
            if id.as_str() == "EscalationFunction" {
                report.check(
                    method == "POST" && path == "escalation/twilio" && statement["Action"] == "lambda:InvokeFunction",
                    format!("{id} may be invoked by API Gateway on {method} /{path}: Twilio's callback only"),
                );
                continue;
            }
            let on_the_api = *id == intake.logical_id || *id == console.logical_id;
            report.check(
                on_the_api && statement["Action"] == "lambda:InvokeFunction",
                format!(
                    "{id} may be invoked by API Gateway on {method} /{path}: only the intake and the console (and \
                     the escalation's callback) are on the API"
                ),
            );
            if *id == console.logical_id {
                report.check(
                    path.starts_with("instructor/api/"),
                    format!("the console may be invoked on {method} /{path} only, under /instructor/api/"),
                );
                continue;
            }
            permitted.push((method.to_owned(), format!("/{path}")));
            if source.contains(":None/") || source.contains("<") {
                report.gap(
                    "renders the skipped API's id as \"None\" in the intake's Lambda permissions",
                    "matching each permission's method and path to the API's routes in the transformed template",
                );
            }
        }
    }
    permitted.sort();
    let expected: Vec<(String, String)> = routes
        .iter()
        .map(|(method, path)| {
            let wildcarded: Vec<&str> = path
                .split('/')
                .map(|segment| if segment.starts_with('{') { "*" } else { segment })
                .collect();
            (method.clone(), wildcarded.join("/"))
        })
        .collect();
    report.check(
        permitted == expected,
        format!("the intake's permissions are exactly the API's routes ({permitted:?})"),
    );
    Ok(routes)
}

/// The alarms, which moto skips, read on the transformed template against the live resources.
pub async fn check_alarms(stack: &Stack, template: &Template, report: &mut Report) -> anyhow::Result<()> {
    report.step("alarms (skipped by moto: read on the transformed template)");
    let alarm_topic = stack.reference(ALARM_TOPIC)?;
    let attributes = stack
        .sns
        .get_topic_attributes()
        .topic_arn(&alarm_topic)
        .send()
        .await
        .context("GetTopicAttributes")?
        .attributes
        .unwrap_or_default();
    report.check(
        attributes.get("KmsMasterKeyId").map(String::as_str) != Some("alias/aws/sns"),
        "the alarm topic is not encrypted with the AWS-managed key, which CloudWatch can't publish to",
    );
    let email = stack.parameters.get("AlarmEmail").cloned().unwrap_or_default();
    let emails: Vec<String> = stack
        .subscriptions(&alarm_topic)
        .await?
        .into_iter()
        .filter(|s| s.get("Protocol").map(String::as_str) == Some("email"))
        .filter_map(|s| s.get("Endpoint").cloned())
        .collect();
    report.check(
        if email.is_empty() {
            emails.is_empty()
        } else {
            emails == [email.clone()]
        },
        format!("alarms reach AlarmEmail {email:?} and nobody else by e-mail (subscribed: {emails:?})"),
    );
    let queue_names: Vec<String> = [QUEUE, DEAD_LETTER_QUEUE]
        .iter()
        .filter_map(|q| stack.attribute(q, "QueueName").ok())
        .collect();
    let function_names: Vec<&str> = stack.snapshot.functions.values().map(|f| f.name.as_str()).collect();
    for (id, alarm) in template
        .active_resources(&stack.conditions)
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
    {
        let properties = stack.resolver.resolve(&alarm["Properties"])?;
        let mut problems = Vec::new();
        for dimension in properties["Dimensions"].as_array().into_iter().flatten() {
            let value = dimension["Value"].as_str().unwrap_or_default();
            let live = match dimension["Name"].as_str().unwrap_or_default() {
                "QueueName" => queue_names.iter().any(|q| q == value),
                "FunctionName" => function_names.contains(&value),
                "InstanceId" => stack.parameters.get("ChatInstanceId").map(String::as_str) == Some(value),
                _ => false,
            };
            if !live {
                problems.push(format!("dimension {dimension} names nothing live"));
            }
        }
        let actions: Vec<&str> = ["AlarmActions", "OKActions"]
            .iter()
            .flat_map(|key| properties[*key].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        for action in &actions {
            if *action != alarm_topic && !action.starts_with("arn:aws:automate:") {
                problems.push(format!("action {action} is neither the alarm topic nor an EC2 action"));
            }
        }
        if !actions.contains(&alarm_topic.as_str()) {
            problems.push("nobody hears about it: the alarm topic is not among its actions".to_owned());
        }
        report.check(
            problems.is_empty(),
            format!(
                "{id}: {} {}{}",
                properties["MetricName"].as_str().unwrap_or_default(),
                properties["Dimensions"],
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(": {}", problems.join("; "))
                }
            ),
        );
    }
    Ok(())
}

/// The stack's outputs, which moto does not return after a change set, evaluated from the template.
pub fn outputs(stack: &Stack, template: &Template, report: &mut Report) -> anyhow::Result<BTreeMap<String, String>> {
    let mut outputs = BTreeMap::new();
    if stack.snapshot.stack.outputs.as_ref().is_none_or(Vec::is_empty) {
        report.gap(
            "returns no stack Outputs after a change set",
            "evaluating the transformed template's outputs against the created resources",
        );
    }
    for (name, output) in template.json["Outputs"].as_object().into_iter().flatten() {
        let active = output["Condition"]
            .as_str()
            .is_none_or(|c| stack.conditions.get(c).copied().unwrap_or(false));
        if active {
            outputs.insert(name.clone(), stack.resolver.text(&output["Value"])?);
        }
    }
    Ok(outputs)
}

/// The roles SAM makes for EventBridge Scheduler schedules (`ScheduleV2` events): each may be assumed by the
/// scheduler only and may only invoke a function of the stack. Returns how many there are.
pub fn check_scheduler_roles(stack: &Stack, template: &Template, report: &mut Report) -> usize {
    let functions: BTreeSet<&str> = stack.snapshot.functions.values().map(|f| f.arn.as_str()).collect();
    let mut count = 0;
    for (id, role) in &stack.snapshot.roles {
        let trust = template
            .resource(id)
            .map(|r| r["Properties"]["AssumeRolePolicyDocument"].to_string())
            .unwrap_or_default();
        if !trust.contains("scheduler.amazonaws.com") {
            continue;
        }
        count += 1;
        let statements: Vec<Statement> = role
            .inline
            .values()
            .flat_map(|policy| Statement::all_of(&policy.document))
            .collect();
        let only_invoke = !statements.is_empty()
            && statements.iter().all(|s| {
                s.effect == "Allow"
                    && s.actions
                        .iter()
                        .all(|a| a.eq_ignore_ascii_case("lambda:InvokeFunction"))
                    && s.resources
                        .as_ref()
                        .is_some_and(|r| !r.is_empty() && r.iter().all(|arn| functions.contains(arn.as_str())))
            });
        report.check(
            only_invoke && role.attached.is_empty(),
            format!(
                "the schedule role {id} only lets EventBridge Scheduler invoke a function of the stack ({:?})",
                statements
                    .iter()
                    .map(|s| format!("{:?} on {:?}", s.actions, s.resources))
                    .collect::<Vec<_>>()
            ),
        );
    }
    count
}
