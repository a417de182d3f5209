//! What `cfn-lint` and `sam validate` can't see in `template.yaml`: the receive budget, partial batch failures,
//! the queue policy, the visibility timeout against the consumer's timeout, least privilege, who may read the
//! chat secret, and that every variable each function's configuration requires is set (so no deploy fails at
//! cold start).

use serde_yaml_ng::Value;

use qrelay::config::{ConsumerConfig, IntakeConfig, RedriveConfig};

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    let resource = &template["Resources"][name];
    assert!(!resource.is_null(), "resource {name} exists");
    resource
}

/// `!Ref X` or `!GetAtt X.Attr`, as (tag, value).
fn tagged(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(t) => Some((t.tag.to_string(), t.value.as_str().unwrap_or_default().to_owned())),
        _ => None,
    }
}

fn refers_to(value: &Value, tag: &str, target: &str) -> bool {
    tagged(value).is_some_and(|(t, v)| t == tag && v == target)
}

/// Every string anywhere inside `value`, tags' contents included.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| strings(k).into_iter().chain(strings(v)))
            .collect(),
        Value::Tagged(t) => strings(&t.value),
        _ => Vec::new(),
    }
}

fn statements(function: &Value) -> Vec<&Value> {
    let policies = function["Properties"]["Policies"]
        .as_sequence()
        .expect("explicit policies");
    policies
        .iter()
        .flat_map(|p| p["Statement"].as_sequence().expect("statements").iter())
        .collect()
}

const FUNCTIONS: [(&str, &str); 3] = [
    ("IntakeFunction", "intake"),
    ("ConsumerFunction", "consumer"),
    ("RedriveFunction", "redrive"),
];

#[test]
fn a_question_is_dead_lettered_after_thirty_receives_and_kept_fourteen_days() {
    let t = template();
    let redrive = &resource(&t, "QuestionQueue")["Properties"]["RedrivePolicy"];
    assert_eq!(
        redrive["maxReceiveCount"].as_u64(),
        Some(30),
        "the retry budget the backoff schedule assumes"
    );
    assert!(
        refers_to(&redrive["deadLetterTargetArn"], "!GetAtt", "DeadLetterQueue.Arn"),
        "{redrive:?}"
    );
    for queue in ["QuestionQueue", "DeadLetterQueue"] {
        let retention = resource(&t, queue)["Properties"]["MessageRetentionPeriod"].as_u64();
        assert_eq!(retention, Some(1_209_600), "{queue} keeps messages 14 days");
    }
}

#[test]
fn the_consumer_reports_partial_batch_failures_from_the_question_queue() {
    let t = template();
    let events = resource(&t, "ConsumerFunction")["Properties"]["Events"]
        .as_mapping()
        .expect("events");
    assert_eq!(events.len(), 1, "one event source");
    let (_, event) = events.iter().next().expect("an event");
    assert_eq!(event["Type"].as_str(), Some("SQS"));
    assert!(refers_to(&event["Properties"]["Queue"], "!GetAtt", "QuestionQueue.Arn"));
    let types: Vec<&str> = event["Properties"]["FunctionResponseTypes"]
        .as_sequence()
        .expect("types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types, ["ReportBatchItemFailures"], "spelled exactly as Lambda expects");
    let concurrency = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        .as_u64()
        .expect("paced");
    assert!(
        (2..=1000).contains(&concurrency),
        "SQS allows 2 to 1000, got {concurrency}"
    );
}

#[test]
fn the_queue_accepts_messages_from_the_question_topic_only() {
    let t = template();
    let policy = &resource(&t, "QuestionQueuePolicy")["Properties"];
    let queues = policy["Queues"].as_sequence().expect("queues");
    assert!(
        queues.len() == 1 && refers_to(&queues[0], "!Ref", "QuestionQueue"),
        "applies to the question queue"
    );
    let statements = policy["PolicyDocument"]["Statement"].as_sequence().expect("statements");
    assert_eq!(statements.len(), 1, "one statement");
    let s = &statements[0];
    assert_eq!(s["Effect"].as_str(), Some("Allow"));
    assert_eq!(s["Principal"]["Service"].as_str(), Some("sns.amazonaws.com"));
    assert_eq!(s["Action"].as_str(), Some("sqs:SendMessage"), "nothing but sending");
    assert!(
        refers_to(&s["Condition"]["ArnEquals"]["aws:SourceArn"], "!Ref", "QuestionTopic"),
        "only our topic"
    );
    let subscription = &resource(&t, "QuestionSubscription")["Properties"];
    assert!(refers_to(&subscription["TopicArn"], "!Ref", "QuestionTopic"));
    assert!(refers_to(&subscription["Endpoint"], "!GetAtt", "QuestionQueue.Arn"));
}

#[test]
fn the_visibility_timeout_is_at_least_six_times_the_consumers_timeout() {
    let t = template();
    let visibility = resource(&t, "QuestionQueue")["Properties"]["VisibilityTimeout"]
        .as_u64()
        .expect("visibility");
    let timeout = resource(&t, "ConsumerFunction")["Properties"]["Timeout"]
        .as_u64()
        .expect("timeout");
    assert!(visibility >= 6 * timeout, "visibility {visibility} s < 6 x {timeout} s");
}

#[test]
fn every_iam_statement_names_specific_resources_and_actions() {
    let t = template();
    for (name, _) in FUNCTIONS {
        for statement in statements(resource(&t, name)) {
            let resources = &statement["Resource"];
            assert!(!resources.is_null(), "{name}: a statement without a resource");
            for s in strings(resources) {
                assert!(!s.contains('*'), "{name}: wildcard resource {s:?}");
            }
            for action in strings(&statement["Action"]) {
                assert!(
                    !action.contains('*') && action.contains(':'),
                    "{name}: action {action:?}"
                );
            }
        }
    }
}

#[test]
fn only_the_consumer_may_read_the_chat_secret() {
    let t = template();
    for (name, _) in FUNCTIONS {
        let function = resource(&t, name);
        let grants = statements(function).into_iter().any(|s| {
            strings(&s["Action"]).iter().any(|a| a.starts_with("secretsmanager:"))
                || strings(&s["Resource"])
                    .iter()
                    .any(|r| r == "ChatSecret" || r == "ExistingChatSecretArn")
        });
        assert_eq!(grants, name == "ConsumerFunction", "{name} and the chat secret");
    }
    let consumer = statements(resource(&t, "ConsumerFunction"));
    let read = consumer
        .iter()
        .find(|s| strings(&s["Action"]) == ["secretsmanager:GetSecretValue"])
        .expect("a read grant");
    assert!(
        strings(&read["Resource"]).contains(&"ChatSecret".to_owned()),
        "the stack's own secret"
    );
}

#[test]
fn every_required_variable_is_set_and_none_holds_a_secret() {
    let t = template();
    let consumer_required: Vec<&str> = ConsumerConfig::REQUIRED.iter().copied().chain(["CHAT_URL"]).collect();
    let required: [(&str, &[&str]); 3] = [
        ("IntakeFunction", IntakeConfig::REQUIRED),
        ("ConsumerFunction", &consumer_required),
        ("RedriveFunction", RedriveConfig::REQUIRED),
    ];
    for (name, variables) in required {
        let env = resource(&t, name)["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .expect("variables");
        for variable in variables {
            assert!(
                env.contains_key(*variable),
                "{name} lacks {variable}: its cold start would fail"
            );
        }
        for (key, value) in env {
            let key = key.as_str().unwrap_or_default();
            for word in ["TOKEN", "PASSWORD", "WEBHOOK_URL", "USER_ID"] {
                assert!(
                    !key.contains(word),
                    "{name}: {key} looks like a credential; credentials live in Secrets Manager"
                );
            }
            for s in strings(value) {
                assert!(
                    !s.contains("/hooks/") && !s.to_lowercase().contains("token"),
                    "{name}: {key} = {s:?}"
                );
            }
        }
    }
}

#[test]
fn functions_are_arm64_rust_binaries_of_this_workspace_and_only_intake_is_public() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (name, binary) in FUNCTIONS {
        let function = resource(&t, name);
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        assert_eq!(
            function["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(binary),
            "{name}"
        );
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/").to_owned() + binary + "/Cargo.toml";
        assert!(
            std::path::Path::new(&manifest).exists(),
            "{name}: crate {binary} exists"
        );
        let events = function["Properties"]["Events"].as_mapping();
        let public = events.is_some_and(|e| e.values().any(|ev| ev["Type"].as_str() == Some("HttpApi")));
        assert_eq!(public, name == "IntakeFunction", "{name}: reachable from the API?");
    }
    assert!(
        resource(&t, "RedriveFunction")["Properties"]["Events"].is_null(),
        "redrive is invoked by hand only"
    );
}
