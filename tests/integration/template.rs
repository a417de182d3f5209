//! What `cfn-lint` and `sam validate` can't see in `template.yaml`: the receive budget, partial batch failures,
//! the queue policy, the visibility timeout against the consumer's timeout, least privilege, who may read the
//! chat secret, where the alarms can publish, and that every variable each function's configuration requires is
//! set (so no deploy fails at its first cold start).
//!
//! The template is read as plain YAML: CloudFormation's short forms (`!Ref`, `!GetAtt`, `!If`, `!Sub`) arrive as
//! tagged values, so a test can tell which resource a property points at without resolving anything.

use serde_yaml_ng::Value;

use qrelay::config::{
    self, ConsoleConfig, ConsumerConfig, DigestConfig, EscalationConfig, IntakeConfig, RedriveConfig,
};
use qrelay_testkit::rehearsal::iam;
use qrelay_testkit::rehearsal::template::allowed_pattern_matches;

/// Each function's logical id, the workspace binary it runs, its role and its log group.
const FUNCTIONS: [Function; 6] = [
    Function {
        id: "IntakeFunction",
        binary: "intake",
        role: "IntakeRole",
        log_group: "IntakeLogGroup",
    },
    Function {
        id: "ConsumerFunction",
        binary: "consumer",
        role: "ConsumerRole",
        log_group: "ConsumerLogGroup",
    },
    Function {
        id: "RedriveFunction",
        binary: "redrive",
        role: "RedriveRole",
        log_group: "RedriveLogGroup",
    },
    Function {
        id: "ConsoleFunction",
        binary: "console",
        role: "ConsoleRole",
        log_group: "ConsoleLogGroup",
    },
    Function {
        id: "DigestFunction",
        binary: "digest",
        role: "DigestRole",
        log_group: "DigestLogGroup",
    },
    Function {
        id: "EscalationFunction",
        binary: "escalation",
        role: "EscalationRole",
        log_group: "EscalationLogGroup",
    },
];

struct Function {
    id: &'static str,
    binary: &'static str,
    role: &'static str,
    log_group: &'static str,
}

/// Fourteen days, the longest SQS keeps a message.
const FOURTEEN_DAYS: u64 = 14 * 24 * 60 * 60;

#[test]
fn a_question_is_dead_lettered_after_thirty_receives_and_kept_fourteen_days() {
    let t = template();

    let redrive = &properties(&t, "QuestionQueue")["RedrivePolicy"];
    assert_eq!(
        redrive["maxReceiveCount"].as_u64(),
        Some(30),
        "30 receives is the retry budget the consumer's backoff schedule (about 6 hours) assumes"
    );
    assert_eq!(
        targets(&redrive["deadLetterTargetArn"]),
        ["DeadLetterQueue"],
        "questions are dead-lettered into our own dead-letter queue"
    );
    for queue in ["QuestionQueue", "DeadLetterQueue"] {
        assert_eq!(
            properties(&t, queue)["MessageRetentionPeriod"].as_u64(),
            Some(FOURTEEN_DAYS),
            "{queue} must keep messages 14 days, so none expires before it is dead-lettered or redriven"
        );
        assert_eq!(
            properties(&t, queue)["SqsManagedSseEnabled"].as_bool(),
            Some(true),
            "{queue} is encrypted at rest with keys SNS can deliver to"
        );
    }
    let allow = &properties(&t, "DeadLetterQueue")["RedriveAllowPolicy"];
    assert_eq!(
        allow["redrivePermission"].as_str(),
        Some("byQueue"),
        "only named queues may dead-letter into the DLQ"
    );
}

#[test]
fn the_consumer_reports_partial_batch_failures_from_the_question_queue() {
    let t = template();
    let events = properties(&t, "ConsumerFunction")["Events"]
        .as_mapping()
        .expect("the consumer has events");
    assert_eq!(events.len(), 1, "the consumer has exactly one event source");
    let event = events.values().next().expect("one event");
    assert_eq!(event["Type"].as_str(), Some("SQS"), "the consumer is fed by SQS");

    let source = &event["Properties"];
    assert_eq!(
        targets(&source["Queue"]),
        ["QuestionQueue"],
        "the consumer reads the question queue"
    );
    assert_eq!(
        texts(&source["FunctionResponseTypes"]),
        ["ReportBatchItemFailures"],
        "spelled exactly as Lambda expects, or one failed question retries its whole batch"
    );
    assert_eq!(
        source["BatchSize"].as_u64(),
        Some(10),
        "ten questions at most per invocation"
    );
    let concurrency = source["ScalingConfig"]["MaximumConcurrency"]
        .as_u64()
        .expect("the chat is paced with ScalingConfig.MaximumConcurrency");
    assert!(
        (2..=1000).contains(&concurrency),
        "SQS allows a maximum concurrency of 2 to 1000, got {concurrency}"
    );
    assert!(
        properties(&t, "ConsumerFunction")["ReservedConcurrentExecutions"].is_null(),
        "no reserved concurrency: new accounts can't reserve any, and the deploy would fail"
    );
}

#[test]
fn the_queue_accepts_messages_from_the_question_topic_only() {
    let t = template();
    let policy = properties(&t, "QuestionQueuePolicy");
    assert_eq!(
        targets(&policy["Queues"]),
        ["QuestionQueue"],
        "the policy applies to the question queue"
    );
    let statements = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("the queue policy has statements");
    assert_eq!(statements.len(), 1, "one statement, so nothing else is allowed");
    let allowed = &statements[0];
    assert_eq!(allowed["Effect"].as_str(), Some("Allow"), "the statement allows");
    assert_eq!(
        texts(&allowed["Principal"]["Service"]),
        ["sns.amazonaws.com"],
        "only SNS may send"
    );
    assert_eq!(
        texts(&allowed["Action"]),
        ["sqs:SendMessage"],
        "SNS may send and do nothing else"
    );
    assert_eq!(
        targets(&allowed["Condition"]["ArnEquals"]["aws:SourceArn"]),
        ["QuestionTopic"],
        "only on behalf of our topic, not any topic in any account"
    );

    let subscription = properties(&t, "QuestionSubscription");
    assert_eq!(
        targets(&subscription["TopicArn"]),
        ["QuestionTopic"],
        "the subscription is on our topic"
    );
    assert_eq!(
        targets(&subscription["Endpoint"]),
        ["QuestionQueue"],
        "the subscription delivers into the question queue"
    );
    assert_eq!(subscription["Protocol"].as_str(), Some("sqs"), "delivered by SQS");
}

#[test]
fn the_visibility_timeout_is_at_least_six_times_the_consumers_timeout() {
    let t = template();
    let visibility = properties(&t, "QuestionQueue")["VisibilityTimeout"]
        .as_u64()
        .expect("the question queue sets its visibility timeout");
    let timeout = properties(&t, "ConsumerFunction")["Timeout"]
        .as_u64()
        .expect("the consumer sets its timeout");
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s is under 6 x the consumer's {timeout} s: AWS's rule for SQS event sources"
    );
}

#[test]
fn every_iam_statement_names_specific_resources_and_actions() {
    let t = template();
    let roles: Vec<&str> = resources(&t)
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::IAM::Role"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(roles.len(), FUNCTIONS.len(), "one role per function, no other roles");
    for role in roles {
        let properties = properties(&t, role);
        assert!(
            properties["ManagedPolicyArns"].is_null(),
            "{role}: no managed policies (AWS's Lambda policies grant on every resource)"
        );
        for statement in role_statements(&t, role) {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{role}: {statement:?}");
            let resources = &statement["Resource"];
            assert!(!resources.is_null(), "{role}: a statement without a resource");
            assert!(
                statement["NotResource"].is_null() && statement["NotAction"].is_null(),
                "{role}: NotResource or NotAction grants everything else"
            );
            // Each resource is a reference to one of our resources or parameters, never a literal (a literal
            // "*" or a hand-written ARN pattern is how wildcards creep in).
            for resource in sequence_or_one(resources) {
                assert!(
                    !targets(resource).is_empty(),
                    "{role}: resource {resource:?} is not a reference to a resource of this stack"
                );
            }
            for text in strings(resources) {
                assert!(!text.contains('*'), "{role}: wildcard resource {text:?}");
            }
            for action in strings(&statement["Action"]) {
                let (service, name) = action
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{role}: action {action:?} is service:Action"));
                assert!(
                    !service.is_empty() && !name.is_empty() && !action.contains('*'),
                    "{role}: wildcard or malformed action {action:?}"
                );
            }
        }
    }
}

/// Actions, each with the logical ids of the resources it is granted on.
type Grants = &'static [(&'static str, &'static [&'static str])];

#[test]
fn each_function_is_granted_exactly_what_it_uses() {
    let t = template();
    const SECRET: &[&str] = &["ChatSecret", "ExistingChatSecretArn"];
    let expected: [(&str, Grants); 6] = [
        (
            "IntakeFunction",
            &[
                ("logs:CreateLogStream", &["IntakeLogGroup"]),
                ("logs:PutLogEvents", &["IntakeLogGroup"]),
                ("sns:Publish", &["QuestionTopic"]),
                // Is the room paused? Nothing more of the table.
                ("dynamodb:GetItem", &["ControlTable"]),
            ],
        ),
        (
            "ConsumerFunction",
            &[
                ("logs:CreateLogStream", &["ConsumerLogGroup"]),
                ("logs:PutLogEvents", &["ConsumerLogGroup"]),
                ("sqs:ReceiveMessage", &["QuestionQueue"]),
                ("sqs:DeleteMessage", &["QuestionQueue"]),
                ("sqs:GetQueueAttributes", &["QuestionQueue"]),
                ("sqs:ChangeMessageVisibility", &["QuestionQueue"]),
                ("sqs:SendMessage", &["DeadLetterQueue"]),
                ("secretsmanager:GetSecretValue", SECRET),
                ("dynamodb:GetItem", &["ControlTable"]),
                ("dynamodb:PutItem", &["ControlTable"]),
                ("dynamodb:UpdateItem", &["ControlTable"]),
            ],
        ),
        (
            "RedriveFunction",
            &[
                ("logs:CreateLogStream", &["RedriveLogGroup"]),
                ("logs:PutLogEvents", &["RedriveLogGroup"]),
                ("sqs:ReceiveMessage", &["DeadLetterQueue"]),
                ("sqs:DeleteMessage", &["DeadLetterQueue"]),
                ("sqs:ChangeMessageVisibility", &["DeadLetterQueue"]),
                ("sqs:GetQueueAttributes", &["DeadLetterQueue", "QuestionQueue"]),
                ("sqs:SendMessage", &["QuestionQueue"]),
                ("sqs:StartMessageMoveTask", &["DeadLetterQueue"]),
                ("sqs:ListMessageMoveTasks", &["DeadLetterQueue"]),
                ("sqs:CancelMessageMoveTask", &["DeadLetterQueue"]),
            ],
        ),
        (
            "ConsoleFunction",
            &[
                ("logs:CreateLogStream", &["ConsoleLogGroup"]),
                ("logs:PutLogEvents", &["ConsoleLogGroup"]),
                ("dynamodb:GetItem", &["ControlTable"]),
                ("dynamodb:PutItem", &["ControlTable"]),
                ("dynamodb:UpdateItem", &["ControlTable"]),
                ("dynamodb:Query", &["ControlTable"]),
                ("sns:Publish", &["QuestionTopic"]),
                ("sqs:ReceiveMessage", &["DeadLetterQueue"]),
                ("sqs:DeleteMessage", &["DeadLetterQueue"]),
                ("sqs:ChangeMessageVisibility", &["DeadLetterQueue"]),
                ("sqs:GetQueueAttributes", &["DeadLetterQueue", "QuestionQueue"]),
                ("sqs:SendMessage", &["QuestionQueue"]),
                // "Mail me these questions": a request to the digest function, never the chat or SES itself.
                ("sns:Publish", &["DigestRequestTopic"]),
            ],
        ),
        (
            "DigestFunction",
            &[
                ("logs:CreateLogStream", &["DigestLogGroup"]),
                ("logs:PutLogEvents", &["DigestLogGroup"]),
                ("dynamodb:Query", &["ControlTable"]),
                ("secretsmanager:GetSecretValue", SECRET),
                // The identity ARN made of the DigestEmail parameter.
                ("ses:SendEmail", &["DigestEmail"]),
            ],
        ),
        (
            "EscalationFunction",
            &[
                ("logs:CreateLogStream", &["EscalationLogGroup"]),
                ("logs:PutLogEvents", &["EscalationLogGroup"]),
                ("dynamodb:GetItem", &["ControlTable"]),
                ("dynamodb:PutItem", &["ControlTable"]),
                ("secretsmanager:GetSecretValue", &["TwilioSecret"]),
            ],
        ),
    ];
    for (function, grants) in expected {
        let mut expected: Vec<(String, String)> = grants
            .iter()
            .flat_map(|(action, on)| on.iter().map(|target| ((*action).to_owned(), (*target).to_owned())))
            .collect();
        expected.sort();
        assert_eq!(
            grants_of(&t, function),
            expected,
            "{function} must be granted exactly these actions on these resources"
        );
    }
}

#[test]
fn only_the_consumer_and_the_digest_may_read_the_chat_secret() {
    let t = template();
    for function in FUNCTIONS {
        let touches_secret = grants_of(&t, function.id)
            .iter()
            .any(|(_, target)| target == "ChatSecret" || target == "ExistingChatSecretArn");
        // The consumer posts; the digest function (no API, on a schedule) reads the reactions back. The console,
        // on the internet behind its authorizer, asks the digest function instead of reading the chat itself.
        assert_eq!(
            touches_secret,
            function.id == "ConsumerFunction" || function.id == "DigestFunction",
            "{}: only the consumer and the digest may read the chat secret",
            function.id
        );
    }
    let variables = &properties(&t, "ConsumerFunction")["Environment"]["Variables"];
    assert_eq!(
        targets(&variables["CHAT_SECRET_ID"]),
        ["ChatSecret", "ExistingChatSecretArn"],
        "the consumer is told the secret's ARN (the stack's own, or the instructor's), never its value"
    );
    let placeholder = properties(&t, "ChatSecret")["SecretString"]
        .as_str()
        .expect("the created secret has a placeholder value");
    assert!(
        placeholder.contains("REPLACE_ME"),
        "the template holds a placeholder, never a real token: {placeholder}"
    );
}

/// IAM grants the consumer its secret by ARN, and a Secrets Manager ARN ends in `-` and six characters the
/// service adds to the name: an `ExistingChatSecretArn` without them would deploy, match no secret in the
/// consumer's role, and send every question to the dead-letter queue. CloudFormation must refuse it.
#[test]
fn an_existing_chat_secret_is_accepted_only_by_its_full_arn() {
    let t = template();
    let pattern = t["Parameters"]["ExistingChatSecretArn"]["AllowedPattern"]
        .as_str()
        .expect("ExistingChatSecretArn has an AllowedPattern");
    let accepts = |value: &str| allowed_pattern_matches(pattern, value).expect("a valid pattern");
    let full = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:course/chat-AbC123";
    for (value, accepted, why) in [
        ("", true, "empty: the stack creates the secret"),
        (full, true, "the full ARN, as describe-secret shows it"),
        (
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:course/chat",
            false,
            "no six-character suffix: matches no secret in IAM",
        ),
        (
            "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:course/chat-??????",
            false,
            "a wildcard is for a policy, not for the consumer's CHAT_SECRET_ID",
        ),
        ("course/chat-AbC123", false, "a name, not an ARN"),
    ] {
        assert_eq!(accepts(value), accepted, "{value:?}: {why}");
    }
    // What the pattern accepts, the consumer's role grants on, and IAM matches it to the secret.
    let role = iam::Statement::all_of(&serde_json::json!({ "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": full
    }]}));
    assert!(iam::allowing(&role, "secretsmanager:GetSecretValue", full).is_some());
}

#[test]
fn every_required_variable_is_set_and_none_holds_a_secret() {
    let t = template();
    let consumer_required: Vec<&str> = ConsumerConfig::REQUIRED.iter().copied().chain(["CHAT_URL"]).collect();
    let required: [(&str, &[&str]); 6] = [
        ("IntakeFunction", IntakeConfig::REQUIRED),
        ("ConsumerFunction", &consumer_required),
        ("RedriveFunction", RedriveConfig::REQUIRED),
        ("ConsoleFunction", ConsoleConfig::REQUIRED),
        ("DigestFunction", DigestConfig::REQUIRED),
        ("EscalationFunction", EscalationConfig::REQUIRED),
    ];
    for (function, variables) in required {
        let environment = properties(&t, function)["Environment"]["Variables"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{function} has environment variables"));
        for variable in variables {
            assert!(
                environment.contains_key(*variable),
                "{function} lacks {variable}: its first cold start would fail"
            );
        }
        for (name, value) in environment {
            let name = name.as_str().unwrap_or_default();
            for word in ["TOKEN", "PASSWORD", "WEBHOOK", "USER_ID", "API_KEY"] {
                assert!(
                    !name.contains(word) || name.ends_with("_SECRET_ID"),
                    "{function}: {name} looks like a credential; credentials live in Secrets Manager"
                );
            }
            for text in strings(value) {
                let lower = text.to_lowercase();
                assert!(
                    !lower.contains("token") && !lower.contains("/hooks/") && !lower.contains("password"),
                    "{function}: {name} = {text:?} looks like a credential"
                );
            }
        }
    }
}

#[test]
fn functions_are_arm64_rust_binaries_of_this_workspace_and_only_intake_and_console_are_reachable() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    for function in FUNCTIONS {
        let id = function.id;
        let properties = properties(&t, id);
        let setting = |key: &str| -> Value {
            match &properties[key] {
                Value::Null => globals[key].clone(),
                value => value.clone(),
            }
        };
        assert_eq!(
            setting("Runtime").as_str(),
            Some("provided.al2023"),
            "{id}: provided.al2 has too old a glibc"
        );
        assert_eq!(
            setting("Handler").as_str(),
            Some("bootstrap"),
            "{id}: custom runtimes run bootstrap"
        );
        assert_eq!(texts(&setting("Architectures")), ["arm64"], "{id}: built for arm64");

        let metadata = &resource(&t, id)["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}: sam build builds it with cargo-lambda"
        );
        assert_eq!(
            metadata["BuildProperties"]["Binary"].as_str(),
            Some(function.binary),
            "{id}: runs the {} binary",
            function.binary
        );
        assert_eq!(
            properties["CodeUri"].as_str(),
            Some("."),
            "{id}: built from the workspace root"
        );
        let manifest = format!(
            "{}/../../crates/{}/Cargo.toml",
            env!("CARGO_MANIFEST_DIR"),
            function.binary
        );
        assert!(
            std::path::Path::new(&manifest).exists(),
            "{id}: the workspace has a crate named {}",
            function.binary
        );
        assert_eq!(
            targets(&properties["Role"]),
            [function.role],
            "{id}: runs with its own role"
        );

        let on_the_api = properties["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"].as_str() == Some("HttpApi")));
        assert_eq!(
            on_the_api,
            id == "IntakeFunction" || id == "ConsoleFunction",
            "{id}: only the intake (public) and the console (behind the authorizer) are on the API"
        );
    }
    assert!(
        properties(&t, "RedriveFunction")["Events"].is_null(),
        "the redrive has no event source at all: the instructor invokes it by hand"
    );
}

#[test]
fn every_function_logs_to_its_own_group_kept_for_a_limited_time() {
    let t = template();
    let global = &t["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(
        global["LogFormat"].as_str(),
        Some("JSON"),
        "logs are JSON, queryable in Logs Insights"
    );
    for function in FUNCTIONS {
        let logging = &properties(&t, function.id)["LoggingConfig"];
        assert_eq!(
            targets(&logging["LogGroup"]),
            [function.log_group],
            "{}: logs to its own group, created by the stack",
            function.id
        );
        assert!(
            !properties(&t, function.log_group)["RetentionInDays"].is_null(),
            "{}: its logs expire instead of being kept (and billed) forever",
            function.log_group
        );
    }
}

#[test]
fn alarms_publish_to_a_topic_cloudwatch_can_use() {
    let t = template();
    let alarms: Vec<(&str, &Value)> = resources(&t)
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .collect();
    assert!(!alarms.is_empty(), "the stack has alarms");
    for (id, alarm) in &alarms {
        let actions = &alarm["Properties"]["AlarmActions"];
        for topic in targets(actions) {
            let topic = properties(&t, &topic);
            assert!(
                topic["KmsMasterKeyId"].as_str() != Some("alias/aws/sns"),
                "{id}: CloudWatch can't publish to a topic encrypted with the AWS-managed SNS key"
            );
        }
        assert!(
            !targets(actions).is_empty() || !strings(actions).is_empty(),
            "{id}: an alarm nobody hears about is useless"
        );
    }
    let dead_letters = alarms
        .iter()
        .find(|(_, a)| {
            a["Properties"]["Dimensions"]
                .as_sequence()
                .is_some_and(|d| d.iter().any(|d| targets(&d["Value"]) == ["DeadLetterQueue"]))
        })
        .map(|(_, a)| &a["Properties"])
        .expect("an alarm watches the dead-letter queue");
    assert_eq!(
        dead_letters["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible"),
        "the dead-letter alarm watches the DLQ's depth (dead-lettering doesn't count as messages sent)"
    );
    assert!(
        strings(&dead_letters["AlarmDescription"])
            .concat()
            .contains("RedriveFunction"),
        "the dead-letter alarm tells the instructor which function moves the questions back"
    );
}

/// The consumer sends the bot's token with every request to `ChatUrl`: over plain HTTP anyone on the way could
/// read it. CloudFormation refuses such a URL before anything is created, and the template accepts exactly the URLs
/// the consumer's configuration accepts, so a deploy never succeeds only to fail the consumer's first cold start.
#[test]
fn the_chat_url_parameter_refuses_plain_http() {
    let t = template();
    let pattern = t["Parameters"]["ChatUrl"]["AllowedPattern"]
        .as_str()
        .expect("ChatUrl has an AllowedPattern");
    let accepts = |value: &str| allowed_pattern_matches(pattern, value).expect("a valid pattern");
    for (value, accepted, why) in [
        ("", true, "empty: ChatKind webhook needs no server URL"),
        ("https://chat.example.com", true, "HTTPS"),
        (
            "https://chat.example.com:8443/rocket",
            true,
            "HTTPS with a port and a path",
        ),
        (
            "http://chat.example.com",
            false,
            "plain HTTP: the token would travel in cleartext",
        ),
        (
            "http://10.0.0.5:3000",
            false,
            "plain HTTP inside a VPC still crosses a network",
        ),
        (
            "http://localhost.example.com",
            false,
            "not loopback, only named like it",
        ),
        (
            "http://localhost@chat.example.com",
            false,
            "a user name of localhost, on a remote host",
        ),
        (
            "http://127.0.0.1:80@chat.example.com",
            false,
            "the same with a port-like password",
        ),
        (
            "http://127.0.0.1:3000",
            true,
            "loopback (the deploy rehearsal's fake chat): never leaves the machine",
        ),
        ("http://localhost:3000", true, "loopback by name"),
        ("http://[::1]:3000", true, "IPv6 loopback"),
        ("ftp://chat.example.com", false, "not HTTP"),
        ("https://", false, "no host"),
    ] {
        assert_eq!(accepts(value), accepted, "template, {value:?}: {why}");
        if !value.is_empty() {
            assert_eq!(
                config::chat_url(&[("CHAT_URL", value)]).is_ok(),
                accepted,
                "the consumer's configuration, {value:?}: {why}"
            );
        }
    }
}

/// The stage's throttle is one bucket for every client: a single script posting as fast as it may would take all of
/// it, put ~72,000 questions an hour into the chat and answer every other student 429. Posting a question gets its
/// own, lower bucket, sized for a class asking at once; the form page keeps the stage's.
#[test]
fn posting_a_question_has_its_own_throttle_below_the_forms() {
    let t = template();
    let api = properties(&t, "FormApi");
    let default = &api["DefaultRouteSettings"];
    let route = &api["RouteSettings"]["POST /questions"];
    assert!(
        route.is_mapping(),
        "FormApi has RouteSettings for POST /questions: {api:?}"
    );
    let default_of = |parameter: &str| -> f64 {
        let declared = &t["Parameters"][parameter];
        assert_eq!(declared["Type"].as_str(), Some("Number"), "{parameter} is a number");
        assert_eq!(
            declared["MinValue"].as_u64(),
            Some(1),
            "{parameter} can't switch the route off"
        );
        declared["Default"]
            .as_f64()
            .unwrap_or_else(|| panic!("{parameter} has a numeric default"))
    };
    for (setting, stage_parameter, route_parameter) in [
        ("ThrottlingRateLimit", "ThrottleRateLimit", "QuestionThrottleRateLimit"),
        (
            "ThrottlingBurstLimit",
            "ThrottleBurstLimit",
            "QuestionThrottleBurstLimit",
        ),
    ] {
        assert_eq!(targets(&default[setting]), [stage_parameter], "the stage's {setting}");
        assert_eq!(
            targets(&route[setting]),
            [route_parameter],
            "POST /questions' {setting}"
        );
        let (stage, question) = (default_of(stage_parameter), default_of(route_parameter));
        assert!(
            question < stage,
            "{route_parameter} ({question}) is below {stage_parameter} ({stage}) by default"
        );
    }
    let routes: Vec<String> = api["RouteSettings"]
        .as_mapping()
        .expect("RouteSettings is a map")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        routes,
        ["POST /questions"],
        "the form's GET routes keep the stage's throttle"
    );
    let posts = resource(&t, "IntakeFunction")["Properties"]["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .filter(|e| e["Properties"]["Method"].as_str() == Some("POST"))
        .map(|e| e["Properties"]["Path"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(
        posts,
        ["/questions"],
        "the route key names the one POST route the API has"
    );
}

// --- Reading the template ---------------------------------------------------------------------------------------

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is YAML: {e}"))
}

fn resources(template: &Value) -> impl Iterator<Item = (&str, &Value)> {
    template["Resources"]
        .as_mapping()
        .expect("the template has resources")
        .iter()
        .map(|(id, resource)| (id.as_str().expect("logical ids are strings"), resource))
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    let resource = &template["Resources"][id];
    assert!(!resource.is_null(), "the template has a resource {id}");
    resource
}

fn properties<'a>(template: &'a Value, id: &str) -> &'a Value {
    &resource(template, id)["Properties"]
}

/// The logical ids a value refers to: `!Ref X` and `!GetAtt X.Attr` give `X`, an `!If` both of its branches, a
/// list each of its items. Anything else (a literal string) refers to nothing.
fn targets(value: &Value) -> Vec<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned).into_iter().collect(),
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => tagged
            .value
            .as_str()
            .and_then(|s| s.split('.').next())
            .map(str::to_owned)
            .into_iter()
            .collect(),
        Value::Tagged(tagged) if tagged.tag == "If" => tagged
            .value
            .as_sequence()
            .map(|branches| branches.iter().skip(1).flat_map(targets).collect())
            .unwrap_or_default(),
        // `!Sub "…${X}…"` refers to each `X` (or `X.Attr`) it names, AWS's pseudo parameters aside.
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged
            .value
            .as_str()
            .map(|text| {
                text.split("${")
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}'))
                    .map(|(name, _)| name.split('.').next().unwrap_or_default().to_owned())
                    .filter(|name| !name.starts_with("AWS::"))
                    .collect()
            })
            .unwrap_or_default(),
        Value::Sequence(items) => items.iter().flat_map(targets).collect(),
        _ => Vec::new(),
    }
}

/// Every string anywhere inside `value`, the contents of tags included.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| strings(k).into_iter().chain(strings(v)))
            .collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        _ => Vec::new(),
    }
}

/// A scalar or a list of scalars, as strings (IAM accepts `Action: x` and `Action: [x, y]` alike).
fn texts(value: &Value) -> Vec<&str> {
    sequence_or_one(value).into_iter().filter_map(Value::as_str).collect()
}

fn sequence_or_one(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// The statements of a role's inline policies.
fn role_statements<'a>(template: &'a Value, role: &str) -> Vec<&'a Value> {
    properties(template, role)["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{role} has inline policies"))
        .iter()
        .flat_map(|policy| sequence_or_one(&policy["PolicyDocument"]["Statement"]))
        .collect()
}

/// What a function may do, as sorted (action, logical id of the resource) pairs, read from its own role. SAM's
/// `Policies` would add AWS's managed policies beside them, so a function must have a role and no `Policies`.
fn grants_of(template: &Value, function: &str) -> Vec<(String, String)> {
    let properties = properties(template, function);
    assert!(
        properties["Policies"].is_null(),
        "{function}: SAM Policies would add managed policies with wildcard resources; grant in its role"
    );
    let role = targets(&properties["Role"]);
    let [role] = role.as_slice() else {
        panic!("{function} names its role with !GetAtt Role.Arn, got {role:?}");
    };
    let mut grants: Vec<(String, String)> = role_statements(template, role)
        .into_iter()
        .flat_map(|statement| {
            let on = targets(&statement["Resource"]);
            texts(&statement["Action"])
                .into_iter()
                .flat_map(move |action| on.clone().into_iter().map(move |target| (action.to_owned(), target)))
                .collect::<Vec<_>>()
        })
        .collect();
    grants.sort();
    grants
}

/// The console's API is for signed-in instructors only: every route to the console function carries the JWT
/// authorizer, and the authorizer accepts this stack's user pool and app client only. The intake's routes, the
/// form's, stay public, and none of them is a console path except the page itself.
#[test]
fn every_console_api_route_has_the_jwt_authorizer_and_no_public_route_reaches_the_console() {
    let t = template();
    let events = properties(&t, "ConsoleFunction")["Events"]
        .as_mapping()
        .expect("the console function has events")
        .clone();
    assert!(!events.is_empty());
    for (name, event) in &events {
        let p = &event["Properties"];
        assert_eq!(
            event["Type"].as_str(),
            Some("HttpApi"),
            "{name:?}: on the form's API only"
        );
        assert_eq!(targets(&p["ApiId"]), ["FormApi"], "{name:?}");
        assert!(
            p["Path"]
                .as_str()
                .is_some_and(|path| path.starts_with("/instructor/api/")),
            "{name:?}: the console function serves /instructor/api/* only: {:?}",
            p["Path"]
        );
        assert_eq!(
            p["Auth"]["Authorizer"].as_str(),
            Some("InstructorJwt"),
            "{name:?}: every console route needs an instructor's token"
        );
    }
    let api = properties(&t, "FormApi");
    assert!(api["Auth"]["DefaultAuthorizer"].is_null(), "the form stays public");
    let authorizer = &api["Auth"]["Authorizers"]["InstructorJwt"];
    assert_eq!(
        authorizer["IdentitySource"].as_str(),
        Some("$request.header.Authorization")
    );
    let jwt = &authorizer["JwtConfiguration"];
    const ISSUER: &str = "https://cognito-idp.${AWS::Region}.amazonaws.com/${InstructorUserPool}";
    assert_eq!(strings(&jwt["issuer"]), [ISSUER], "tokens of this stack's pool");
    assert_eq!(
        sequence_or_one(&jwt["audience"])
            .iter()
            .flat_map(|a| targets(a))
            .collect::<Vec<_>>(),
        ["InstructorUserPoolClient"],
        "issued to the console's app client"
    );
    // The console function checks the same issuer and audience itself.
    let variables = &properties(&t, "ConsoleFunction")["Environment"]["Variables"];
    assert_eq!(strings(&variables["COGNITO_ISSUER"]), [ISSUER]);
    assert_eq!(targets(&variables["COGNITO_CLIENT_ID"]), ["InstructorUserPoolClient"]);
    // The intake's routes: public, none under the console's API.
    for (name, event) in properties(&t, "IntakeFunction")["Events"]
        .as_mapping()
        .expect("intake events")
    {
        let path = event["Properties"]["Path"].as_str().unwrap_or_default();
        assert!(
            !path.starts_with("/instructor/api"),
            "{name:?}: {path} is the console's"
        );
        assert!(
            event["Properties"]["Auth"].is_null(),
            "{name:?}: the form needs no sign-in"
        );
    }
}

/// Instructors are created by an administrator, sign in with a strong password, may add TOTP; the table keeps
/// nothing past its TTL and is encrypted; only the intake, consumer and console roles reach it (checked with
/// their exact actions in `each_function_is_granted_exactly_what_it_uses`).
#[test]
fn the_instructors_pool_and_table_are_locked_down() {
    let t = template();
    let pool = properties(&t, "InstructorUserPool");
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"].as_bool(),
        Some(true),
        "no sign-up"
    );
    let password = &pool["Policies"]["PasswordPolicy"];
    assert!(
        password["MinimumLength"].as_u64().is_some_and(|n| n >= 12),
        "{password:?}"
    );
    for class in [
        "RequireUppercase",
        "RequireLowercase",
        "RequireNumbers",
        "RequireSymbols",
    ] {
        assert_eq!(password[class].as_bool(), Some(true), "{class}");
    }
    assert_eq!(pool["MfaConfiguration"].as_str(), Some("OPTIONAL"));
    assert_eq!(texts(&pool["EnabledMfas"]), ["SOFTWARE_TOKEN_MFA"]);
    let client = properties(&t, "InstructorUserPoolClient");
    assert_eq!(
        client["GenerateSecret"].as_bool(),
        Some(false),
        "a browser can keep no secret"
    );
    assert!(client["CallbackURLs"].is_null(), "no hosted UI, no callback URL");
    let first = resource(&t, "FirstInstructor");
    assert_eq!(
        first["Condition"].as_str(),
        Some("HasInstructorEmail"),
        "created only when an e-mail is given"
    );

    let table = properties(&t, "ControlTable");
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expires_at")
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
    assert!(!table["SSESpecification"].is_null(), "encryption at rest is stated");
    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_sequence()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap_or_default(),
                k["KeyType"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("pk", "HASH"), ("sk", "RANGE")],
        "the keys crates/qrelay/src/control/dynamo.rs uses"
    );
    let reaching: Vec<&str> = FUNCTIONS
        .iter()
        .filter(|f| grants_of(&t, f.id).iter().any(|(_, target)| target == "ControlTable"))
        .map(|f| f.id)
        .collect();
    // The digest reads the archive; the escalation keeps its incident there. The redrive never touches it.
    assert_eq!(
        reaching,
        [
            "IntakeFunction",
            "ConsumerFunction",
            "ConsoleFunction",
            "DigestFunction",
            "EscalationFunction"
        ]
    );
}

/// The digest mails from the configured address only: the one `ses:` grant in the stack is `ses:SendEmail` on the
/// identity named by `DigestEmail`, in the digest function's role, and the identity the stack creates is that
/// same address.
#[test]
fn mail_is_sent_only_from_the_digest_address_and_only_by_the_digest() {
    let t = template();
    for function in FUNCTIONS {
        let ses: Vec<(String, String)> = grants_of(&t, function.id)
            .into_iter()
            .filter(|(action, _)| action.starts_with("ses:"))
            .collect();
        if function.id == "DigestFunction" {
            assert_eq!(ses, [("ses:SendEmail".to_owned(), "DigestEmail".to_owned())]);
        } else {
            assert!(ses.is_empty(), "{}: no mail: {ses:?}", function.id);
        }
    }
    let statement = role_statements(&t, "DigestRole")
        .into_iter()
        .find(|s| texts(&s["Action"]) == ["ses:SendEmail"])
        .expect("the digest's SES statement");
    let arn = strings(&statement["Resource"]).join("");
    assert_eq!(
        arn, "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${DigestEmail}",
        "one identity, no wildcard"
    );
    assert_eq!(
        targets(&properties(&t, "DigestIdentity")["EmailIdentity"]),
        ["DigestEmail"]
    );
    for id in ["DigestFunction", "DigestRole", "DigestLogGroup"] {
        assert_eq!(
            resource(&t, id)["Condition"].as_str(),
            Some("HasDigest"),
            "{id}: only with a DigestEmail"
        );
    }
    let schedule = &properties(&t, "DigestFunction")["Events"]["AfterClass"];
    assert_eq!(schedule["Type"].as_str(), Some("ScheduleV2"));
    assert_eq!(
        targets(&schedule["Properties"]["ScheduleExpression"]),
        ["DigestSchedule"]
    );
    assert_eq!(
        targets(&schedule["Properties"]["ScheduleExpressionTimezone"]),
        ["DigestScheduleTimezone"]
    );
}

/// The Twilio account's secret is read by the escalation function and nobody else, and holds a placeholder.
#[test]
fn only_the_escalation_function_may_read_the_twilio_secret() {
    let t = template();
    for function in FUNCTIONS {
        let reads = grants_of(&t, function.id)
            .iter()
            .any(|(_, target)| target == "TwilioSecret");
        assert_eq!(reads, function.id == "EscalationFunction", "{}", function.id);
    }
    let placeholder = properties(&t, "TwilioSecret")["SecretString"]
        .as_str()
        .expect("a placeholder");
    assert!(placeholder.contains("REPLACE_ME"), "{placeholder}");
    let variables = &properties(&t, "EscalationFunction")["Environment"]["Variables"];
    assert_eq!(
        targets(&variables["TWILIO_SECRET_ID"]),
        ["TwilioSecret"],
        "the ARN, never the token"
    );
}

/// Twilio's callback reaches the escalation function and nothing else does through that route; the escalation
/// function is on the API through that one route only (its other sources are the alarm topic and the tick).
#[test]
fn the_twilio_callback_route_carries_the_escalation_function_only() {
    let t = template();
    let routes: Vec<(&str, &Value)> = resources(&t)
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::ApiGatewayV2::Route"))
        .collect();
    assert_eq!(routes.len(), 1, "the callback is the one route written out");
    let (id, route) = routes[0];
    assert_eq!(id, "EscalationCallbackRoute");
    assert_eq!(
        route["Properties"]["RouteKey"].as_str(),
        Some("POST /escalation/twilio")
    );
    assert_eq!(targets(&route["Properties"]["ApiId"]), ["FormApi"]);
    assert_eq!(
        targets(&route["Properties"]["Target"]),
        ["EscalationCallbackIntegration"]
    );
    let integrations: Vec<(&str, &Value)> = resources(&t)
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::ApiGatewayV2::Integration"))
        .collect();
    assert_eq!(integrations.len(), 1);
    assert_eq!(
        targets(&integrations[0].1["Properties"]["IntegrationUri"]),
        ["EscalationFunction"],
        "the callback route invokes the escalation function and nothing else"
    );
    let permission = properties(&t, "EscalationCallbackPermission");
    assert_eq!(targets(&permission["FunctionName"]), ["EscalationFunction"]);
    let source = strings(&permission["SourceArn"]).join("");
    assert!(
        source.ends_with("${FormApi}/*/POST/escalation/twilio"),
        "only that route may invoke it: {source}"
    );
    // No other function serves /escalation, and the escalation function has no HttpApi event of its own.
    for function in FUNCTIONS {
        for (_, event) in properties(&t, function.id)["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("HttpApi") {
                let path = event["Properties"]["Path"].as_str().unwrap_or_default();
                assert!(!path.starts_with("/escalation"), "{}: {path}", function.id);
                assert_ne!(function.id, "EscalationFunction");
            }
        }
    }
    let sources: Vec<&str> = properties(&t, "EscalationFunction")["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .filter_map(|e| e["Type"].as_str())
        .collect();
    assert_eq!(sources, ["SNS", "Schedule"]);
    for id in [
        "EscalationFunction",
        "EscalationRole",
        "TwilioSecret",
        "EscalationCallbackRoute",
    ] {
        assert_eq!(
            resource(&t, id)["Condition"].as_str(),
            Some("HasEscalation"),
            "{id}: only with phones"
        );
    }
}

/// Bad phone numbers, schedules and addresses are refused by CloudFormation before anything is created.
#[test]
fn phone_numbers_schedules_and_addresses_are_checked_at_deploy_time() {
    let t = template();
    let pattern = |name: &str| {
        t["Parameters"][name]["AllowedPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has an AllowedPattern"))
            .to_owned()
    };
    let check = |name: &str, cases: &[(&str, bool)]| {
        let pattern = pattern(name);
        for (value, accepted) in cases {
            assert_eq!(
                allowed_pattern_matches(&pattern, value).expect("a valid pattern"),
                *accepted,
                "{name}={value:?}"
            );
        }
    };
    let phone = [
        ("", true),
        ("+819012345678", true),
        ("+14155550100", true),
        ("09012345678", false),
        ("+81 90 1234 5678", false),
        ("+81-90-1234-5678", false),
        ("+0123456789", false),
        ("+1234567890123456", false),
    ];
    check("AlarmPhone", &phone);
    check("TwilioFromNumber", &phone);
    check(
        "EscalationPhones",
        &[
            ("", true),
            ("+819012345678", true),
            ("+819012345678,+819087654321", true),
            ("+819012345678, +819087654321", false),
            ("+819012345678,09087654321", false),
            ("+819012345678,", false),
        ],
    );
    check(
        "DigestSchedule",
        &[
            ("cron(0 18 ? * MON-FRI *)", true),
            ("cron(30 12 * * ? *)", true),
            ("rate(1 day)", true),
            ("cron(0 18 * *)", false),
            ("at 6pm", false),
            ("cron(0 18 ? * MON-FRI *) ", false),
            ("rate(0 days)", false),
        ],
    );
    check(
        "DigestScheduleTimezone",
        &[
            ("Asia/Tokyo", true),
            ("America/Argentina/Buenos_Aires", true),
            ("UTC", true),
            ("Tokyo time", false),
            ("", false),
        ],
    );
    check(
        "DigestEmail",
        &[
            ("", true),
            ("teacher@example.com", true),
            ("teacher", false),
            ("a b@c.d", false),
        ],
    );
    let rules = &t["Rules"];
    assert!(
        !rules["EscalationNeedsTwilioNumber"].is_null(),
        "phones without a Twilio number are refused"
    );
    assert!(
        !rules["DigestNeedsTheArchive"].is_null(),
        "a digest without an archive is refused"
    );
    assert_eq!(t["Parameters"]["RetentionDays"]["Default"].as_u64(), Some(30));
    assert_eq!(t["Parameters"]["EscalateAfterMinutes"]["Default"].as_u64(), Some(10));
}

/// The consumer keeps what it delivered for `RetentionDays`, in the table whose TTL deletes it.
#[test]
fn delivered_questions_are_kept_retention_days_in_the_instructors_table() {
    let t = template();
    let consumer = &properties(&t, "ConsumerFunction")["Environment"]["Variables"];
    assert_eq!(targets(&consumer["RETENTION_DAYS"]), ["RetentionDays"]);
    assert_eq!(targets(&consumer["CONTROL_TABLE"]), ["ControlTable"]);
    let ttl = &properties(&t, "ControlTable")["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some("expires_at"));
    assert_eq!(ttl["Enabled"].as_bool(), Some(true));
    let subscription = properties(&t, "AlarmPhoneSubscription");
    assert_eq!(subscription["Protocol"].as_str(), Some("sms"));
    assert_eq!(targets(&subscription["TopicArn"]), ["AlarmTopic"]);
    assert_eq!(targets(&subscription["Endpoint"]), ["AlarmPhone"]);
}
