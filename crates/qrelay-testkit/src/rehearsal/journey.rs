//! The deployed system at work, through the real binaries with the stack's configuration: the form's routes, a
//! question in through intake that waits while the chat secret holds its placeholder and is posted once the
//! secret is put as the README says, a second question through a chat outage until SQS dead-letters it (the
//! receive budget, observed), and the redrive moving it back to be posted once. Every AWS call the functions made
//! is then replayed against their roles.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_lambda_events::sqs::SqsEvent;
use rocketchat_fake::{FakeRocketChat, Mode};
use serde_json::{Value, json};

use super::iam::{self, Statement};
use super::recorder::Call;
use super::report::Report;
use super::stack::{Stack, queue_arn_of_url};
use super::wiring::Messaging;
use crate::event_source::SqsPoller;
use crate::rehearsal::functions::RunningFunction;

/// The three functions of a stack, running.
#[derive(Debug)]
pub struct Functions {
    pub intake: RunningFunction,
    pub consumer: RunningFunction,
    pub redrive: RunningFunction,
}

/// What the journey needs to know about the scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The room questions are asked in, and the chat channel it posts to.
    pub room: String,
    pub channel: String,
    /// `rocketchat` or `webhook`.
    pub chat_kind: String,
    /// The ARN `put-secret-value` is given (the stack's ChatSecretArn output).
    pub secret_arn: String,
}

/// The whole journey; failures are reported, an error means a step could not run at all.
pub async fn run(
    stack: &Stack,
    m: &Messaging,
    routes: &[(String, String)],
    functions: &mut Functions,
    chat: &FakeRocketChat,
    plan: &Plan,
    report: &mut Report,
) -> anyhow::Result<()> {
    report.step("the form's routes, through the intake");
    // The POST route is taken below, by each question asked.
    for (method, path) in routes.iter().filter(|(method, _)| method == "GET") {
        let concrete = path.replace("{room}", &plan.room);
        let answer = functions
            .intake
            .invoke(http_event(method, path, &concrete, None))
            .await?;
        report.check(
            answer.ok && answer.body["statusCode"] == 200,
            format!("{method} {concrete} answers {}", answer.body["statusCode"]),
        );
    }

    let poller = SqsPoller::new(stack.sqs.clone(), &m.queue_url, &m.queue_arn);
    report.step("a question before the chat secret is filled in: it waits in the queue");
    let text = format!("rehearsal question for {} 所有権とは？", stack.name);
    let first = ask(functions, routes, plan, &text, report).await?;
    let event = receive_one(&poller, m, report).await?;
    let failures = consume(functions, &event).await?;
    report.check(
        failures.len() == event.records.len(),
        format!(
            "with the placeholder secret the consumer posts nothing and reports the question failed ({failures:?})"
        ),
    );
    poller.delete_succeeded(&event, &batch_response(&failures)).await?;
    show_again(stack, m, &event).await?;

    report.step("put-secret-value as the README says; the waiting question is posted once");
    let secret = match plan.chat_kind.as_str() {
        "webhook" => json!({ "webhook_url": chat.add_webhook(&plan.channel) }),
        _ => json!({ "user_id": rocketchat_fake::USER_ID, "token": rocketchat_fake::TOKEN }),
    };
    stack
        .secrets
        .put_secret_value()
        .secret_id(&plan.secret_arn)
        .secret_string(secret.to_string())
        .send()
        .await
        .context("PutSecretValue")?;
    report.note(format!(
        "put-secret-value --secret-id {} ({} credentials)",
        plan.secret_arn, plan.chat_kind
    ));
    let event = receive_one(&poller, m, report).await?;
    let failures = consume(functions, &event).await?;
    report.check(failures.is_empty(), format!("the consumer posts it ({failures:?})"));
    poller.delete_succeeded(&event, &batch_response(&failures)).await?;
    check_posted_once(chat, plan, &first, &text, report);

    report.step("a chat outage: a second question is dead-lettered after the receive budget");
    chat.set_mode(Mode::Down);
    let outage_text = format!("asked during the outage of {}", stack.name);
    let second = ask(functions, routes, plan, &outage_text, report).await?;
    let mut deliveries = 0;
    loop {
        let event = poller.receive(180, 0).await?;
        if event.records.is_empty() || deliveries > 60 {
            break;
        }
        deliveries += 1;
        let failures = consume(functions, &event).await?;
        if failures.len() != event.records.len() {
            report.fail(format!(
                "delivery {deliveries} during the outage did not fail: {failures:?}"
            ));
        }
        poller.delete_succeeded(&event, &batch_response(&failures)).await?;
        // Fast-forward the consumer's backoff (10 s doubling to 15 min): the next receive comes at once.
        show_again(stack, m, &event).await?;
    }
    let dead = qrelay::sqs::depth(&stack.sqs, &m.dlq_url).await?;
    report.check(
        deliveries == super::wiring::MAX_RECEIVE_COUNT && dead.total() == 1,
        format!(
            "the question failed {deliveries} deliveries, then SQS moved it to the DLQ ({} there); the README's \
             budget is {} (about 6 hours of outage)",
            dead.total(),
            super::wiring::MAX_RECEIVE_COUNT
        ),
    );
    chat.set_mode(Mode::Up);

    report.step("the chat is back: the redrive moves the dead letter back, and it is posted once");
    let dry = functions.redrive.invoke(json!({ "dry_run": true })).await?;
    report.check(
        dry.ok && dry.body["would_move"]["count"] == 1,
        format!("a dry run counts one dead letter: {}", dry.body),
    );
    let moved = functions.redrive.invoke(json!({})).await?;
    report.check(
        moved.ok && moved.body["moved"] == 1 && moved.body["failed"].as_array().is_some_and(Vec::is_empty),
        format!("the redrive moves it back: {}", moved.body),
    );
    let event = receive_one(&poller, m, report).await?;
    let failures = consume(functions, &event).await?;
    report.check(failures.is_empty(), format!("the consumer posts it ({failures:?})"));
    poller.delete_succeeded(&event, &batch_response(&failures)).await?;
    check_posted_once(chat, plan, &second, &outage_text, report);
    let left = (
        qrelay::sqs::depth(&stack.sqs, &m.queue_url).await?.total(),
        qrelay::sqs::depth(&stack.sqs, &m.dlq_url).await?.total(),
    );
    report.check(
        left == (0, 0),
        format!("nothing is left in the queue or the DLQ {left:?}"),
    );
    Ok(())
}

/// Asks a question through the intake's POST route; returns its id.
async fn ask(
    functions: &mut Functions,
    routes: &[(String, String)],
    plan: &Plan,
    text: &str,
    report: &mut Report,
) -> anyhow::Result<String> {
    let (method, path) = routes
        .iter()
        .find(|(method, _)| method == "POST")
        .context("the API has no POST route for questions")?;
    let body = json!({ "text": text, "room": plan.room }).to_string();
    let answer = functions
        .intake
        .invoke(http_event(method, path, path, Some(&body)))
        .await?;
    let reply: Value = answer.body["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    report.check(
        answer.ok && answer.body["statusCode"] == 202,
        format!(
            "{method} {path} in room {} answers {} {reply}",
            plan.room, answer.body["statusCode"]
        ),
    );
    reply["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the intake answered no question id: {}", answer.body))
}

/// Receives the one waiting question as the event source mapping would, and checks it arrived as the standard
/// SNS envelope from the stack's topic.
async fn receive_one(poller: &SqsPoller, m: &Messaging, report: &mut Report) -> anyhow::Result<SqsEvent> {
    let event = poller.receive(180, 2).await?;
    let envelopes: Vec<Value> = event
        .records
        .iter()
        .map(|r| serde_json::from_str(r.body.as_deref().unwrap_or_default()).unwrap_or_default())
        .collect();
    report.check(
        envelopes.len() == 1
            && envelopes
                .iter()
                .all(|e| e["Type"] == "Notification" && e["TopicArn"] == m.topic_arn.as_str()),
        format!(
            "one question is in the queue, in an SNS envelope from the question topic ({} record(s), TopicArn {})",
            envelopes.len(),
            envelopes.first().map(|e| e["TopicArn"].to_string()).unwrap_or_default()
        ),
    );
    Ok(event)
}

/// Hands a batch to the consumer; returns the message ids it reported failed.
async fn consume(functions: &mut Functions, event: &SqsEvent) -> anyhow::Result<Vec<String>> {
    let answer = functions.consumer.invoke(serde_json::to_value(event)?).await?;
    anyhow::ensure!(answer.ok, "the consumer failed the invocation: {}", answer.body);
    Ok(answer.body["batchItemFailures"]
        .as_array()
        .context("the consumer answered no batchItemFailures")?
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect())
}

fn batch_response(failures: &[String]) -> aws_lambda_events::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    for id in failures {
        response.add_failure(id.clone());
    }
    response
}

/// Makes a received batch visible again at once (the consumer hid it for its backoff delay).
async fn show_again(stack: &Stack, m: &Messaging, event: &SqsEvent) -> anyhow::Result<()> {
    for record in &event.records {
        if let Some(handle) = &record.receipt_handle {
            stack
                .sqs
                .change_message_visibility()
                .queue_url(&m.queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .context("ChangeMessageVisibility")?;
        }
    }
    Ok(())
}

fn check_posted_once(chat: &FakeRocketChat, plan: &Plan, id: &str, text: &str, report: &mut Report) {
    let posted: Vec<_> = chat
        .messages_in(&plan.channel)
        .into_iter()
        .filter(|m| m.msg.contains(text))
        .collect();
    let how = match plan.chat_kind.as_str() {
        "webhook" => posted.iter().all(|m| m.via_webhook),
        _ => posted.iter().all(|m| m.id == format!("qrelay-{id}")),
    };
    report.check(
        posted.len() == 1 && how,
        format!(
            "question {id} is in #{} exactly once, via {} ({} found)",
            plan.channel,
            plan.chat_kind,
            posted.len()
        ),
    );
}

/// An HTTP API (payload 2.0) event for `method` on route `route` at `path`, as API Gateway sends it.
pub(crate) fn http_event(method: &str, route: &str, path: &str, body: Option<&str>) -> Value {
    let mut event: Value =
        serde_json::from_str(&crate::samples::event("intake-post-json.json")).expect("a sample HTTP API event");
    let route_key = format!("{method} {route}");
    event["routeKey"] = json!(route_key);
    event["rawPath"] = json!(path);
    event["requestContext"]["routeKey"] = json!(route_key);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    let parameters: BTreeMap<&str, &str> = route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(r, p)| Some((r.strip_prefix('{')?.strip_suffix('}')?, p)))
        .collect();
    if !parameters.is_empty() {
        event["pathParameters"] = json!(parameters);
    }
    match body {
        Some(body) => event["body"] = json!(body),
        None => {
            event["body"] = Value::Null;
            if let Some(headers) = event["headers"].as_object_mut() {
                headers.remove("content-type");
            }
        }
    }
    event
}

/// Every AWS call each function made (and the calls Lambda's event source mapping makes with the consumer's
/// role) replayed against the function's effective role: IAM would refuse what this refuses.
pub fn replay_calls(
    m: &Messaging,
    calls: &[(String, Vec<Call>, Vec<Statement>)],
    secret_arns: &BTreeMap<String, String>,
    journey_completed: bool,
    report: &mut Report,
) {
    report.step("every AWS call the functions made, against their roles (moto enforces no IAM)");
    for (function, made, statements) in calls {
        let mut distinct: Vec<(String, String)> = made
            .iter()
            .map(|call| (call.action.clone(), resource_of(&call.target, secret_arns)))
            .collect();
        if function == "consumer" {
            // Lambda's event source mapping polls with the function's role (AWS's documented needs).
            for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
                distinct.push((action.to_owned(), m.queue_arn.clone()));
            }
        }
        distinct.sort();
        distinct.dedup();
        // A journey that stopped early leaves some functions without calls; that failure is reported already.
        if journey_completed {
            report.check(
                !distinct.is_empty(),
                format!("{function} made AWS calls ({})", distinct.len()),
            );
        }
        for (action, resource) in distinct {
            let allowed = iam::allowing(statements, &action, &resource);
            report.check(
                allowed.is_some(),
                format!(
                    "{function} may {action} on {resource}{}",
                    allowed
                        .map(|s| format!(" ({})", s.sid))
                        .unwrap_or_else(|| ": its role does not allow it".into())
                ),
            );
        }
    }
}

/// The ARN IAM evaluates a call's target as: a queue URL's queue, a secret id's full ARN.
fn resource_of(target: &str, secret_arns: &BTreeMap<String, String>) -> String {
    if let Some(arn) = secret_arns.get(target) {
        return arn.clone();
    }
    if target.starts_with("http") {
        return queue_arn_of_url(target);
    }
    target.to_owned()
}
