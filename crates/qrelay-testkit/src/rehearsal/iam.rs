//! IAM identity policies evaluated the way AWS evaluates them for a call, because moto enforces none: whether a
//! role's statements allow an action on a resource (wildcards `*` and `?`, actions case-insensitive), so the
//! rehearsal can replay every call the real binaries made against the role the stack gave them.

use serde_json::Value;

/// One statement of a policy document, as the rehearsal needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: String,
    pub effect: String,
    pub actions: Vec<String>,
    /// `None` when the statement has no `Resource` (moto drops it when it referred to a resource it skipped).
    pub resources: Option<Vec<String>>,
    /// `NotAction`, `NotResource` or `NotPrincipal`, which grant everything but what they name.
    pub negations: Vec<&'static str>,
}

impl Statement {
    /// The statements of a policy document (`Statement` may be one object or a list).
    pub fn all_of(document: &Value) -> Vec<Self> {
        let statements = match &document["Statement"] {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        };
        statements.iter().map(Self::from_json).collect()
    }

    pub fn from_json(statement: &Value) -> Self {
        Self {
            sid: statement["Sid"].as_str().unwrap_or("(no Sid)").to_owned(),
            effect: statement["Effect"].as_str().unwrap_or_default().to_owned(),
            actions: texts(&statement["Action"]),
            resources: (!statement["Resource"].is_null()).then(|| texts(&statement["Resource"])),
            negations: ["NotAction", "NotResource", "NotPrincipal"]
                .into_iter()
                .filter(|key| !statement[*key].is_null())
                .collect(),
        }
    }

    /// Whether this statement allows `action` on `resource`.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.effect == "Allow"
            && self.negations.is_empty()
            && self
                .actions
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
            && self.resources.iter().flatten().any(|pattern| glob(pattern, resource))
    }
}

/// The first of `statements` that allows `action` on `resource` (none of qrelay's statements deny).
pub fn allowing<'a>(statements: &'a [Statement], action: &str, resource: &str) -> Option<&'a Statement> {
    let denied = statements.iter().any(|s| {
        s.effect == "Deny"
            && s.actions
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
    });
    if denied {
        return None;
    }
    statements.iter().find(|s| s.allows(action, resource))
}

/// IAM's wildcard match: `*` any run of characters, `?` any one character, everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A string or a list of strings.
fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:course/chat-AbCdEf";

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("*", "anything"));
        assert!(glob(
            "arn:aws:logs:*:log-group:/aws/lambda/x:*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*"
        ));
        assert!(glob("a?c", "abc") && !glob("a?c", "abbc"));
        assert!(
            !glob("arn:aws:sqs:us-east-1:1:q", "arn:aws:sqs:us-east-1:1:q-dlq"),
            "no implicit prefix match"
        );
    }

    #[test]
    fn a_secret_is_matched_only_by_its_full_arn_or_the_six_character_wildcard() {
        let policy = |resource: &str| {
            Statement::all_of(&json!({ "Statement": [{
                "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resource
            }]}))
        };
        let call = |resource: &str| allowing(&policy(resource), "secretsmanager:GetSecretValue", SECRET).is_some();
        assert!(call(SECRET), "the full ARN");
        assert!(
            call("arn:aws:secretsmanager:us-east-1:123456789012:secret:course/chat-??????"),
            "-??????"
        );
        assert!(
            !call("arn:aws:secretsmanager:us-east-1:123456789012:secret:course/chat"),
            "an ARN without the suffix matches nothing: the consumer would be refused its secret"
        );
    }

    #[test]
    fn a_statement_without_resource_or_with_a_negation_allows_nothing() {
        let statements = Statement::all_of(&json!({ "Statement": [
            { "Sid": "Dropped", "Effect": "Allow", "Action": "sns:Publish" },
            { "Sid": "Negated", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*" },
        ]}));
        assert!(allowing(&statements, "sns:Publish", "arn:aws:sns:us-east-1:1:t").is_none());
        assert_eq!(statements[1].negations, ["NotAction"]);
    }

    #[test]
    fn actions_are_case_insensitive() {
        let statements = Statement::all_of(&json!({ "Statement": {
            "Effect": "Allow", "Action": ["SQS:sendmessage"], "Resource": "arn:q"
        }}));
        assert!(allowing(&statements, "sqs:SendMessage", "arn:q").is_some());
    }
}
