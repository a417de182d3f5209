//! A deployed stack as the rehearsal sees it: what moto created (its snapshot), and for every resource moto
//! skipped, either the same resource created by the rehearsal from the transformed template (the chat secret,
//! the subscriptions, the queue policy: without them nothing would run) or a note that it is absent and will be
//! checked against the template instead (alarms, the HTTP API). Each is announced as it is found; a skipped type
//! the rehearsal has no answer for fails it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::control_plane::Snapshot;
use super::report::Report;
use super::template::{ACCOUNT_ID, Parameters, REGION, Resolver, Template};

/// A deployed stack, with moto's gaps filled where the system needs them.
#[derive(Debug)]
pub struct Stack {
    pub name: String,
    pub parameters: Parameters,
    pub conditions: BTreeMap<String, bool>,
    pub snapshot: Snapshot,
    pub resolver: Resolver,
    /// Resources moto skipped that the rehearsal created from the template.
    pub filled: BTreeSet<String>,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ses: aws_sdk_sesv2::Client,
    /// moto's address, for the services the rehearsal calls without an SDK (Cognito's JSON API).
    pub endpoint: String,
}

impl Stack {
    /// Reads what moto created, then fills or notes each resource it skipped.
    pub async fn settle(
        template: &Template,
        name: &str,
        parameters: Parameters,
        snapshot: Snapshot,
        sdk: &SdkConfig,
        report: &mut Report,
    ) -> anyhow::Result<Self> {
        let conditions = template.conditions(&parameters)?;
        let resolver = Resolver::for_parameters(&parameters).with_stack(name, &snapshot.stack.id);
        let mut stack = Self {
            name: name.to_owned(),
            parameters,
            resolver: Resolver {
                conditions: conditions.clone(),
                ..resolver
            },
            conditions,
            snapshot,
            filled: BTreeSet::new(),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
            endpoint: sdk.endpoint_url().unwrap_or_default().to_owned(),
        };
        stack.learn_created().await?;

        let created: BTreeSet<&str> = stack.snapshot.resources.iter().map(|r| r.logical_id.as_str()).collect();
        let skipped: Vec<(String, Value)> = template
            .active_resources(&stack.conditions)
            .filter(|(id, _)| !created.contains(id))
            .map(|(id, r)| (id.to_owned(), r.clone()))
            .collect();
        report.note(format!(
            "moto created {} of the {} resources the transformed template declares under these parameters; it lists \
             {} more without name or type (the ones it skipped, plus those whose condition is false)",
            created.len(),
            created.len() + skipped.len(),
            stack.snapshot.nameless_resources
        ));
        stack.resolver.absent = skipped.iter().map(|(id, _)| id.clone()).collect();
        // The secret first, the user pool before its client and user: the others may refer to them.
        let mut ordered = skipped;
        ordered.sort_by_key(|(_, r)| match r["Type"].as_str() {
            Some("AWS::SecretsManager::Secret") => 0,
            Some("AWS::Cognito::UserPool") => 1,
            Some("AWS::Cognito::UserPoolClient") => 2,
            _ => 3,
        });
        for (id, resource) in &ordered {
            let kind = resource["Type"].as_str().unwrap_or("(no Type)");
            if let Err(e) = stack.fill(id, kind, resource, report).await {
                report.fail(format!("{id} ({kind}), skipped by moto, could not be filled in: {e:#}"));
            }
        }
        Ok(stack)
    }

    /// `Ref` and `Fn::GetAtt` values of what moto created.
    async fn learn_created(&mut self) -> anyhow::Result<()> {
        for resource in self.snapshot.resources.clone() {
            let (id, physical) = (resource.logical_id.clone(), resource.physical_id.clone());
            let mut attribute = |name: &str, value: String| {
                self.resolver.attributes.insert((id.clone(), name.to_owned()), value);
            };
            match resource.resource_type.as_str() {
                "AWS::SQS::Queue" => {
                    let arn = qrelay::sqs::queue_arn(&self.sqs, &physical).await?;
                    attribute("Arn", arn);
                    attribute("QueueName", last_segment(&physical, '/'));
                    attribute("QueueUrl", physical.clone());
                }
                "AWS::SNS::Topic" => {
                    attribute("TopicArn", physical.clone());
                    attribute("TopicName", last_segment(&physical, ':'));
                }
                "AWS::DynamoDB::Table" => {
                    attribute(
                        "Arn",
                        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{physical}"),
                    );
                }
                // What CloudFormation gives; moto's own ARN lacks the `:*` (checked where it matters).
                "AWS::Logs::LogGroup" => attribute("Arn", log_group_arn(&physical, true)),
                "AWS::IAM::Role" => {
                    if let Some(role) = self.snapshot.roles.get(&id) {
                        attribute("Arn", role.arn.clone());
                    }
                }
                "AWS::Lambda::Function" => {
                    if let Some(function) = self.snapshot.functions.get(&id) {
                        attribute("Arn", function.arn.clone());
                    }
                }
                _ => {}
            }
            if !physical.is_empty() {
                self.resolver.refs.insert(id, physical);
            }
        }
        Ok(())
    }

    /// Creates a skipped resource from its resolved properties where the system needs it, or notes it absent.
    async fn fill(&mut self, id: &str, kind: &str, resource: &Value, report: &mut Report) -> anyhow::Result<()> {
        let properties = self.resolver.resolve(&resource["Properties"])?;
        let text = |key: &str| properties[key].as_str().map(str::to_owned).unwrap_or_default();
        match kind {
            "AWS::SecretsManager::Secret" => {
                let name = text("Name");
                let arn = self
                    .secrets
                    .create_secret()
                    .name(&name)
                    .description(text("Description"))
                    .secret_string(text("SecretString"))
                    .send()
                    .await
                    .context("CreateSecret")?
                    .arn
                    .context("Secrets Manager returned no ARN")?;
                report.gap(
                    format!(
                        "skips {kind} ({id}) and drops what refers to it (an environment variable, a role's Resource)"
                    ),
                    "creating it from the transformed template (name, description, placeholder value), then checking \
                     the consumer's CHAT_SECRET_ID, its role and the ChatSecretArn output against that secret's ARN",
                );
                report.note(format!("created {id} as {arn}"));
                self.resolver.refs.insert(id.to_owned(), arn);
            }
            "AWS::SNS::Subscription" => {
                let mut request = self
                    .sns
                    .subscribe()
                    .topic_arn(text("TopicArn"))
                    .protocol(text("Protocol"))
                    .endpoint(text("Endpoint"))
                    .return_subscription_arn(true);
                for key in [
                    "RawMessageDelivery",
                    "FilterPolicy",
                    "FilterPolicyScope",
                    "RedrivePolicy",
                ] {
                    match &properties[key] {
                        Value::Null => {}
                        Value::String(s) => request = request.attributes(key, s),
                        other => request = request.attributes(key, other.to_string()),
                    }
                }
                let arn = request
                    .send()
                    .await
                    .context("Subscribe")?
                    .subscription_arn
                    .unwrap_or_default();
                report.gap(
                    format!("skips {kind} ({id})"),
                    "subscribing as the transformed template says (topic, protocol, endpoint, RawMessageDelivery, \
                     filter), then checking the live subscription and the messages it delivers",
                );
                report.note(format!(
                    "subscribed {} to {} ({}): {arn}",
                    text("Endpoint"),
                    text("TopicArn"),
                    text("Protocol")
                ));
                self.resolver.refs.insert(id.to_owned(), arn);
            }
            "AWS::SQS::QueuePolicy" => {
                let document = properties["PolicyDocument"].to_string();
                for queue in properties["Queues"].as_array().into_iter().flatten() {
                    let url = queue.as_str().context("a queue URL")?;
                    self.sqs
                        .set_queue_attributes()
                        .queue_url(url)
                        .attributes(QueueAttributeName::Policy, &document)
                        .send()
                        .await
                        .context("SetQueueAttributes Policy")?;
                    report.note(format!("set {id}'s policy on {url}"));
                }
                report.gap(
                    format!("skips {kind} ({id})"),
                    "setting the transformed template's policy document on its queues, then checking the live \
                     policy: SNS may send, only from the topic the queue is subscribed to (moto enforces no policy)",
                );
            }
            "AWS::Cognito::UserPool" => {
                // CreateUserPool takes the resource's properties under the API's names; the MFA methods are set
                // apart (SetUserPoolMfaConfig), which moto does not need for what the rehearsal signs in with.
                let mut request = properties.clone();
                let object = request.as_object_mut().context("the pool's properties")?;
                let name = object
                    .remove("UserPoolName")
                    .unwrap_or_else(|| Value::String(id.to_owned()));
                object.insert("PoolName".into(), name);
                object.remove("EnabledMfas");
                let created = cognito(&self.endpoint, "CreateUserPool", &request).await?;
                let pool = &created["UserPool"];
                let pool_id = pool["Id"].as_str().context("CreateUserPool returned no Id")?.to_owned();
                report.gap(
                    format!("skips {kind} ({id}), the instructors' pool, and drops what refers to it"),
                    "creating it through Cognito's API from the transformed template (admin-created users only, the \
                     password policy, optional TOTP), then signing the first instructor in through it and handing \
                     the console the token's claims",
                );
                report.note(format!("created {id} as {pool_id}"));
                self.resolver.attributes.insert(
                    (id.to_owned(), "Arn".to_owned()),
                    pool["Arn"].as_str().unwrap_or_default().to_owned(),
                );
                self.resolver.refs.insert(id.to_owned(), pool_id);
            }
            "AWS::Cognito::UserPoolClient" => {
                let created = cognito(&self.endpoint, "CreateUserPoolClient", &properties).await?;
                let client_id = created["UserPoolClient"]["ClientId"]
                    .as_str()
                    .context("CreateUserPoolClient returned no ClientId")?
                    .to_owned();
                report.gap(
                    format!("skips {kind} ({id}), the console's app client"),
                    "creating it through Cognito's API from the transformed template (no secret, password sign-in)",
                );
                report.note(format!("created {id} as {client_id}"));
                self.resolver.refs.insert(id.to_owned(), client_id);
            }
            "AWS::Cognito::UserPoolUser" => {
                let mut request = properties.clone();
                let object = request.as_object_mut().context("the user's properties")?;
                // Cognito e-mails the temporary password; the rehearsal sets a known one before signing in.
                object.insert("MessageAction".into(), Value::String("SUPPRESS".into()));
                cognito(&self.endpoint, "AdminCreateUser", &request).await?;
                report.gap(
                    format!("skips {kind} ({id}), the first instructor"),
                    "creating the user through Cognito's API (AdminCreateUser), its e-mail suppressed",
                );
                self.resolver.refs.insert(id.to_owned(), text("Username"));
            }
            "AWS::CloudWatch::Alarm" => report.gap(
                format!("skips {kind} (the alarms)"),
                "reading each alarm in the transformed template: its dimensions name live resources of this stack and \
                 its actions the unencrypted alarm topic (alarm evaluation itself is not testable offline)",
            ),
            "AWS::ApiGatewayV2::Api" | "AWS::ApiGatewayV2::Stage" => report.gap(
                "skips AWS::ApiGatewayV2::Api and ::Stage (the form's HTTP API)",
                "reading the API's routes, integrations, throttling and access log from the transformed template, \
                 matching the intake's permissions to the routes, and invoking the intake with an HTTP API \
                 (payload 2.0) event for every route",
            ),
            "AWS::SES::EmailIdentity" => {
                let identity = text("EmailIdentity");
                self.ses
                    .create_email_identity()
                    .email_identity(&identity)
                    .send()
                    .await
                    .context("CreateEmailIdentity")?;
                report.gap(
                    format!("skips {kind} ({id}), the digest's sender"),
                    "creating it through SES's API in moto, where a created identity is verified at once (in AWS the \
                     instructor clicks the link SES mails), then mailing the digest from it",
                );
                report.note(format!("created the SES identity {identity}"));
                self.resolver.refs.insert(id.to_owned(), identity);
            }
            "AWS::Scheduler::Schedule" | "AWS::Events::Rule" => {
                // The schedule's target, read on the transformed template: the function it invokes.
                let target = match kind {
                    "AWS::Scheduler::Schedule" => properties["Target"]["Arn"].as_str().unwrap_or_default().to_owned(),
                    _ => properties["Targets"][0]["Arn"].as_str().unwrap_or_default().to_owned(),
                };
                let expression = properties["ScheduleExpression"].as_str().unwrap_or_default();
                let invokes = self
                    .snapshot
                    .functions
                    .values()
                    .find(|f| f.arn == target)
                    .map(|f| f.name.clone());
                report.gap(
                    format!("skips {kind} (the schedules: the digest's, the escalation's tick)"),
                    "reading each on the transformed template: it invokes a function of this stack, on the \
                     expression the parameters give (schedules do not fire offline: the rehearsal invokes the \
                     functions with the schedules' input itself)",
                );
                report.check(
                    invokes.is_some() && !expression.is_empty(),
                    format!("{id} invokes {invokes:?} on {expression}"),
                );
            }
            "AWS::ApiGatewayV2::Integration" | "AWS::ApiGatewayV2::Route" => {
                report.gap(
                    format!("skips {kind} (the Twilio callback's route, written out in the template)"),
                    "reading it on the transformed template: the route POST /escalation/twilio integrates the \
                     escalation function and nothing else",
                );
                if kind == "AWS::ApiGatewayV2::Integration" {
                    let uri = text("IntegrationUri");
                    let invokes = self
                        .snapshot
                        .functions
                        .values()
                        .find(|f| f.arn == uri)
                        .map(|f| f.name.clone());
                    report.check(
                        invokes.as_deref().is_some_and(|n| n.ends_with("-escalation")),
                        format!("{id} invokes {invokes:?}"),
                    );
                }
            }
            "AWS::Lambda::Permission" => report.gap(
                format!("skips {kind} ({id})"),
                "reading it on the transformed template (who may invoke which function)",
            ),
            other => report.fail(format!(
                "moto skipped {id} ({other}) and the rehearsal has no way to fill or check it: teach it (stack.rs)"
            )),
        }
        if matches!(
            kind,
            "AWS::SecretsManager::Secret"
                | "AWS::SNS::Subscription"
                | "AWS::SQS::QueuePolicy"
                | "AWS::Cognito::UserPool"
                | "AWS::Cognito::UserPoolClient"
                | "AWS::Cognito::UserPoolUser"
                | "AWS::SES::EmailIdentity"
        ) {
            self.filled.insert(id.to_owned());
            self.resolver.absent.remove(id);
        }
        Ok(())
    }

    /// The text `Ref` of a resource gives.
    pub fn reference(&self, id: &str) -> anyhow::Result<String> {
        self.resolver.text(&serde_json::json!({ "Ref": id }))
    }

    /// The text `Fn::GetAtt` of a resource gives.
    pub fn attribute(&self, id: &str, attribute: &str) -> anyhow::Result<String> {
        self.resolver
            .text(&serde_json::json!({ "Fn::GetAtt": [id, attribute] }))
    }

    /// All attributes of a queue.
    pub async fn queue_attributes(&self, url: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {url}"))?;
        Ok(output
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect())
    }

    /// The subscriptions of a topic with their attributes.
    pub async fn subscriptions(&self, topic_arn: &str) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
        let listed = self
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .send()
            .await
            .context("ListSubscriptionsByTopic")?;
        let mut subscriptions = Vec::new();
        for subscription in listed.subscriptions.unwrap_or_default() {
            let arn = subscription.subscription_arn.unwrap_or_default();
            let mut attributes: BTreeMap<String, String> = self
                .sns
                .get_subscription_attributes()
                .subscription_arn(&arn)
                .send()
                .await
                .context("GetSubscriptionAttributes")?
                .attributes
                .unwrap_or_default()
                .into_iter()
                .collect();
            attributes
                .entry("Protocol".into())
                .or_insert(subscription.protocol.unwrap_or_default());
            attributes
                .entry("Endpoint".into())
                .or_insert(subscription.endpoint.unwrap_or_default());
            attributes.entry("RawMessageDelivery".into()).or_insert("false".into());
            subscriptions.push(attributes);
        }
        Ok(subscriptions)
    }

    /// The full ARN of a secret named by id (a name, a partial or a full ARN), as Secrets Manager resolves it.
    pub async fn secret_arn(&self, id: &str) -> anyhow::Result<String> {
        self.secrets
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .with_context(|| format!("DescribeSecret {id}"))?
            .arn
            .context("Secrets Manager returned no ARN")
    }
}

/// The ARN of an SQS queue from its URL (`https://host/<account>/<name>`).
pub fn queue_arn_of_url(url: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or(ACCOUNT_ID);
    format!("arn:aws:sqs:{REGION}:{account}:{name}")
}

/// A log group's ARN: with `streams`, the `:*` form CloudFormation's `Fn::GetAtt Arn` gives and IAM grants on.
pub fn log_group_arn(name: &str, streams: bool) -> String {
    format!(
        "arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}{}",
        if streams { ":*" } else { "" }
    )
}

fn last_segment(text: &str, separator: char) -> String {
    text.rsplit(separator).next().unwrap_or_default().to_owned()
}

/// One call to Cognito's JSON API on moto (`X-Amz-Target`), as the console page makes them; the answer's JSON.
pub async fn cognito(endpoint: &str, action: &str, body: &Value) -> anyhow::Result<Value> {
    let response = qrelay::chat::http_client(std::time::Duration::from_secs(10))?
        .post(format!("{endpoint}/"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", format!("AWSCognitoIdentityProviderService.{action}"))
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("Cognito {action}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "Cognito {action}: {status} {text}");
    serde_json::from_str(&text).with_context(|| format!("Cognito {action}: not JSON: {text}"))
}
