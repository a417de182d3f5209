//! The transformed template read as CloudFormation reads it, for what moto leaves out: parameter constraints
//! (`AllowedValues`, `AllowedPattern`, `MinValue`, ...) and `Rules`, which moto ignores, the template's
//! conditions, and the intrinsic functions of a resource that moto skipped, resolved against the resources it did
//! create ([`Resolver`]), so the rehearsal can create that resource itself or check it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};

/// The region and account the rehearsal deploys to (moto's defaults).
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// A template after the SAM transform: plain CloudFormation in JSON, intrinsic functions in their long form.
#[derive(Debug, Clone)]
pub struct Template {
    pub json: Value,
}

/// Parameter values by name, as CloudFormation passes them: strings.
pub type Parameters = BTreeMap<String, String>;

impl Template {
    pub fn new(json: Value) -> Self {
        Self { json }
    }

    /// The resources, by logical id.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.json["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, resource)| (id.as_str(), resource))
    }

    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.json["Resources"].get(id)
    }

    /// The resources CloudFormation creates under `conditions`.
    pub fn active_resources<'a>(
        &'a self,
        conditions: &'a BTreeMap<String, bool>,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources().filter(|(_, resource)| {
            resource["Condition"]
                .as_str()
                .is_none_or(|c| conditions.get(c).copied().unwrap_or(false))
        })
    }

    /// `given` completed with the defaults, or why CloudFormation would refuse them: an unknown parameter, a
    /// missing one, or a value outside its constraints.
    pub fn parameters(&self, given: &[(String, String)]) -> Result<Parameters, Vec<String>> {
        let declared = self.json["Parameters"].as_object().cloned().unwrap_or_default();
        let mut refusals = Vec::new();
        let mut values = Parameters::new();
        for (name, _) in given {
            if !declared.contains_key(name) {
                refusals.push(format!("Parameters: [{name}] do not exist in the template"));
            }
        }
        for (name, declaration) in &declared {
            let value = given
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .or_else(|| declaration.get("Default").map(scalar_text));
            match value {
                Some(value) => {
                    refusals.extend(constraint_refusals(name, declaration, &value));
                    values.insert(name.clone(), value);
                }
                None => refusals.push(format!("Parameters: [{name}] must have values")),
            }
        }
        if refusals.is_empty() { Ok(values) } else { Err(refusals) }
    }

    /// The description of every `Rules` assertion the parameters break (CloudFormation refuses the deploy with
    /// them), or an error if a rule uses a function this evaluator does not know.
    pub fn broken_rules(&self, parameters: &Parameters) -> anyhow::Result<Vec<String>> {
        let mut broken = Vec::new();
        let Some(rules) = self.json["Rules"].as_object() else {
            return Ok(broken);
        };
        let resolver = Resolver::for_parameters(parameters);
        for (name, rule) in rules {
            let applies = match rule.get("RuleCondition") {
                Some(condition) => resolver.truth(condition).with_context(|| format!("rule {name}"))?,
                None => true,
            };
            if !applies {
                continue;
            }
            for assertion in rule["Assertions"].as_array().into_iter().flatten() {
                if !resolver
                    .truth(&assertion["Assert"])
                    .with_context(|| format!("rule {name}"))?
                {
                    let description = assertion["AssertDescription"]
                        .as_str()
                        .unwrap_or("(no AssertDescription)");
                    broken.push(format!("{name}: {description}"));
                }
            }
        }
        Ok(broken)
    }

    /// Every condition's value for `parameters`.
    pub fn conditions(&self, parameters: &Parameters) -> anyhow::Result<BTreeMap<String, bool>> {
        let declared = self.json["Conditions"].as_object().cloned().unwrap_or_default();
        let mut resolver = Resolver::for_parameters(parameters);
        // Conditions may refer to each other; evaluate until all are known (a cycle is a template error).
        let mut pending: Vec<&String> = declared.keys().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|name| match resolver.truth(&declared[name.as_str()]) {
                Ok(value) => {
                    resolver.conditions.insert((*name).clone(), value);
                    false
                }
                Err(_) => true,
            });
            if pending.len() == before {
                let name = pending[0];
                resolver
                    .truth(&declared[name.as_str()])
                    .with_context(|| format!("condition {name}"))?;
            }
        }
        Ok(resolver.conditions)
    }
}

/// A parameter value as CloudFormation sees it: numbers and booleans as their text.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why CloudFormation would refuse `value` for the parameter `name` declared as `declaration`.
fn constraint_refusals(name: &str, declaration: &Value, value: &str) -> Vec<String> {
    let mut refusals = Vec::new();
    let because = declaration["ConstraintDescription"]
        .as_str()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    if let Some(allowed) = declaration["AllowedValues"].as_array() {
        let allowed: Vec<String> = allowed.iter().map(scalar_text).collect();
        if !allowed.iter().any(|a| a == value) {
            refusals.push(format!(
                "Parameter '{name}' must be one of AllowedValues {allowed:?}{because}"
            ));
        }
    }
    if let Some(pattern) = declaration["AllowedPattern"].as_str() {
        match allowed_pattern_matches(pattern, value) {
            Ok(true) => {}
            Ok(false) => refusals.push(format!(
                "Parameter '{name}' must match pattern {pattern}{because}: {value:?} does not"
            )),
            Err(e) => refusals.push(format!("Parameter '{name}': AllowedPattern {pattern} is unusable: {e}")),
        }
    }
    for (key, is_length) in [
        ("MinLength", true),
        ("MaxLength", true),
        ("MinValue", false),
        ("MaxValue", false),
    ] {
        let Some(limit) = declaration[key]
            .as_f64()
            .or_else(|| declaration[key].as_str()?.parse().ok())
        else {
            continue;
        };
        let measured = if is_length {
            Some(value.chars().count() as f64)
        } else {
            value.parse::<f64>().ok()
        };
        let Some(measured) = measured else {
            refusals.push(format!("Parameter '{name}' must be a number, got {value:?}"));
            continue;
        };
        let ok = if key.starts_with("Min") {
            measured >= limit
        } else {
            measured <= limit
        };
        if !ok {
            refusals.push(format!("Parameter '{name}' breaks {key} {limit}: {value:?}{because}"));
        }
    }
    if declaration["Type"].as_str() == Some("Number") && value.parse::<f64>().is_err() {
        refusals.push(format!("Parameter '{name}' must be a number, got {value:?}"));
    }
    refusals
}

/// Whether `value` matches CloudFormation's `AllowedPattern` `pattern`, which must match the whole value.
pub fn allowed_pattern_matches(pattern: &str, value: &str) -> Result<bool, regex_lite::Error> {
    Ok(regex_lite::Regex::new(&format!("^(?:{pattern})$"))?.is_match(value))
}

/// Resolves intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, `Fn::Select`, `Fn::Split`,
/// `Fn::Join`, and the condition functions) against parameter values and a stack's live resources.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// Parameters and pseudo parameters (`AWS::StackName`, ...).
    pub parameters: Parameters,
    pub conditions: BTreeMap<String, bool>,
    /// What `Ref` of a created resource gives, by logical id.
    pub refs: BTreeMap<String, String>,
    /// What `Fn::GetAtt` gives, by logical id and attribute.
    pub attributes: BTreeMap<(String, String), String>,
    /// Resources moto did not create and nobody created in its place: a reference to one resolves to a marker,
    /// `<FormApi: not created>`, so a check can see it and say so.
    pub absent: BTreeSet<String>,
}

impl Resolver {
    /// A resolver that knows parameters only (for rules and conditions, which may not refer to resources).
    pub fn for_parameters(parameters: &Parameters) -> Self {
        Self {
            parameters: parameters.clone(),
            ..Self::default()
        }
    }

    /// Adds the pseudo parameters of a stack.
    pub fn with_stack(mut self, stack_name: &str, stack_id: &str) -> Self {
        for (name, value) in [
            ("AWS::StackName", stack_name),
            ("AWS::StackId", stack_id),
            ("AWS::Region", REGION),
            ("AWS::AccountId", ACCOUNT_ID),
            ("AWS::Partition", "aws"),
            ("AWS::URLSuffix", "amazonaws.com"),
        ] {
            self.parameters.insert(name.to_owned(), value.to_owned());
        }
        self
    }

    /// The marker a reference to an absent resource resolves to.
    pub fn absent_marker(id: &str) -> String {
        format!("<{id}: not created>")
    }

    /// `value` with every intrinsic function resolved; `AWS::NoValue` removes the property.
    pub fn resolve(&self, value: &Value) -> anyhow::Result<Value> {
        match value {
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|item| self.resolve(item))
                    .filter(|item| !matches!(item, Ok(Value::Null)))
                    .collect::<anyhow::Result<_>>()?,
            )),
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(argument.as_str().context("Ref takes a name")?),
                    "Fn::GetAtt" => self.get_att(argument),
                    "Fn::Sub" => self.sub(argument).map(Value::String),
                    "Fn::If" => self.if_(argument),
                    "Fn::Select" => self.select(argument),
                    "Fn::Split" => self.split(argument),
                    "Fn::Join" => self.join(argument),
                    "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => self.truth(value).map(Value::Bool),
                    name if name.starts_with("Fn::") => bail!("the rehearsal can't evaluate {name}"),
                    _ => self.resolve_object(map),
                }
            }
            Value::Object(map) => self.resolve_object(map),
            scalar => Ok(scalar.clone()),
        }
    }

    /// `value` resolved to text (numbers and booleans as CloudFormation renders them).
    pub fn text(&self, value: &Value) -> anyhow::Result<String> {
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => bail!("expected text, got {other}"),
        }
    }

    /// The logical ids `value` refers to (through `Ref`, `Fn::GetAtt` and `Fn::Sub`), parameters excluded.
    pub fn references(&self, value: &Value) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_references(value, &mut found);
        found.retain(|id| !self.parameters.contains_key(id) && !id.starts_with("AWS::"));
        found
    }

    fn resolve_object(&self, map: &Map<String, Value>) -> anyhow::Result<Value> {
        let mut out = Map::new();
        for (key, value) in map {
            match self.resolve(value)? {
                Value::Null if !value.is_null() => {}
                resolved => {
                    out.insert(key.clone(), resolved);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, name: &str) -> anyhow::Result<Value> {
        if name == "AWS::NoValue" {
            return Ok(Value::Null);
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(Value::String(value.clone()));
        }
        if let Some(value) = self.refs.get(name) {
            return Ok(Value::String(value.clone()));
        }
        if self.absent.contains(name) {
            return Ok(Value::String(Self::absent_marker(name)));
        }
        bail!("Ref {name}: no such parameter or resource")
    }

    fn get_att(&self, argument: &Value) -> anyhow::Result<Value> {
        let (id, attribute) = match argument {
            Value::Array(parts) => (
                parts
                    .first()
                    .and_then(Value::as_str)
                    .context("Fn::GetAtt [id, attribute]")?
                    .to_owned(),
                self.text(parts.get(1).context("Fn::GetAtt [id, attribute]")?)?,
            ),
            Value::String(s) => {
                let (id, attribute) = s.split_once('.').context("Fn::GetAtt id.attribute")?;
                (id.to_owned(), attribute.to_owned())
            }
            other => bail!("Fn::GetAtt of {other}"),
        };
        self.attribute(&id, &attribute).map(Value::String)
    }

    fn attribute(&self, id: &str, attribute: &str) -> anyhow::Result<String> {
        if let Some(value) = self.attributes.get(&(id.to_owned(), attribute.to_owned())) {
            return Ok(value.clone());
        }
        if self.absent.contains(id) {
            return Ok(Self::absent_marker(&format!("{id}.{attribute}")));
        }
        bail!("Fn::GetAtt {id}.{attribute}: unknown")
    }

    fn sub(&self, argument: &Value) -> anyhow::Result<String> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(parts) => (
                parts
                    .first()
                    .and_then(Value::as_str)
                    .context("Fn::Sub [text, variables]")?,
                parts.get(1).and_then(Value::as_object).cloned().unwrap_or_default(),
            ),
            other => bail!("Fn::Sub of {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').context("Fn::Sub: unclosed ${")? + start;
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(&self.text(value)?);
            } else if self.parameters.contains_key(name) || self.refs.contains_key(name) || self.absent.contains(name) {
                out.push_str(&self.text(&serde_json::json!({ "Ref": name }))?);
            } else if let Some((id, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                bail!("Fn::Sub: unknown variable {name}");
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn if_(&self, argument: &Value) -> anyhow::Result<Value> {
        let parts = argument.as_array().context("Fn::If [condition, then, else]")?;
        let [condition, then, otherwise] = parts.as_slice() else {
            bail!("Fn::If takes three arguments");
        };
        let name = condition.as_str().context("Fn::If's condition is a name")?;
        let value = *self
            .conditions
            .get(name)
            .with_context(|| format!("unknown condition {name}"))?;
        self.resolve(if value { then } else { otherwise })
    }

    fn select(&self, argument: &Value) -> anyhow::Result<Value> {
        let parts = argument.as_array().context("Fn::Select [index, list]")?;
        let index: usize = self.text(parts.first().context("Fn::Select index")?)?.parse()?;
        let list = self.resolve(parts.get(1).context("Fn::Select list")?)?;
        list.as_array()
            .and_then(|l| l.get(index).cloned())
            .with_context(|| format!("Fn::Select {index} of {list}"))
    }

    fn split(&self, argument: &Value) -> anyhow::Result<Value> {
        let parts = argument.as_array().context("Fn::Split [delimiter, text]")?;
        let delimiter = parts.first().and_then(Value::as_str).context("Fn::Split delimiter")?;
        let text = self.text(parts.get(1).context("Fn::Split text")?)?;
        Ok(Value::Array(
            text.split(delimiter).map(|s| Value::String(s.to_owned())).collect(),
        ))
    }

    fn join(&self, argument: &Value) -> anyhow::Result<Value> {
        let parts = argument.as_array().context("Fn::Join [delimiter, list]")?;
        let delimiter = parts.first().and_then(Value::as_str).context("Fn::Join delimiter")?;
        let list = self.resolve(parts.get(1).context("Fn::Join list")?)?;
        let items: Vec<String> = list
            .as_array()
            .context("Fn::Join of a list")?
            .iter()
            .map(scalar_text)
            .collect();
        Ok(Value::String(items.join(delimiter)))
    }

    /// A condition function (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Fn::Contains`, `Condition`).
    pub fn truth(&self, value: &Value) -> anyhow::Result<bool> {
        let map = value
            .as_object()
            .filter(|m| m.len() == 1)
            .context("a condition function")?;
        let (key, argument) = map.iter().next().expect("one entry");
        let list = || argument.as_array().with_context(|| format!("{key} takes a list"));
        match key.as_str() {
            "Fn::Equals" => {
                let [a, b] = list()?.as_slice() else {
                    bail!("Fn::Equals takes two values")
                };
                Ok(self.text(a)? == self.text(b)?)
            }
            "Fn::Not" => {
                let [a] = list()?.as_slice() else {
                    bail!("Fn::Not takes one condition")
                };
                Ok(!self.truth(a)?)
            }
            "Fn::And" => list()?.iter().try_fold(true, |all, c| Ok(all & self.truth(c)?)),
            "Fn::Or" => list()?.iter().try_fold(false, |any, c| Ok(any | self.truth(c)?)),
            "Fn::Contains" => {
                let [haystack, needle] = list()?.as_slice() else {
                    bail!("Fn::Contains takes two values")
                };
                let haystack = self.resolve(haystack)?;
                let needle = self.text(needle)?;
                Ok(haystack
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| scalar_text(v) == needle))
            }
            "Condition" => {
                let name = argument.as_str().context("Condition takes a name")?;
                self.conditions
                    .get(name)
                    .copied()
                    .with_context(|| format!("unknown condition {name}"))
            }
            other => bail!("the rehearsal can't evaluate {other} in a condition or rule"),
        }
    }
}

fn collect_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, found)),
        Value::Object(map) => {
            for (key, argument) in map {
                match (key.as_str(), argument) {
                    ("Ref", Value::String(name)) => {
                        found.insert(name.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        found.extend(parts.first().and_then(Value::as_str).map(str::to_owned));
                    }
                    ("Fn::GetAtt", Value::String(s)) => {
                        found.extend(s.split('.').next().map(str::to_owned));
                    }
                    ("Fn::Sub", sub) => {
                        let (text, variables) = match sub {
                            Value::Array(parts) => (parts.first().and_then(Value::as_str), parts.get(1)),
                            Value::String(text) => (Some(text.as_str()), None),
                            _ => (None, None),
                        };
                        let bound: BTreeSet<&str> = variables
                            .and_then(Value::as_object)
                            .map(|m| m.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        for name in text.into_iter().flat_map(|t| t.split("${").skip(1)) {
                            let name = name.split('}').next().unwrap_or_default();
                            let id = name.split('.').next().unwrap_or_default();
                            if !name.starts_with('!') && !bound.contains(name) {
                                found.insert(id.to_owned());
                            }
                        }
                        if let Some(variables) = variables {
                            collect_references(variables, found);
                        }
                    }
                    (_, argument) => collect_references(argument, found),
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template() -> Template {
        Template::new(json!({
            "Parameters": {
                "Kind": { "Type": "String", "Default": "a", "AllowedValues": ["a", "b"] },
                "Url": { "Type": "String", "Default": "", "AllowedPattern": "^(https?://\\S+)?$" },
                "Size": { "Type": "Number", "Default": 10, "MinValue": 1, "MaxValue": 20 }
            },
            "Conditions": {
                "HasUrl": { "Fn::Not": [{ "Fn::Equals": [{ "Ref": "Url" }, ""] }] },
                "KindAWithUrl": { "Fn::And": [{ "Condition": "HasUrl" }, { "Fn::Equals": [{ "Ref": "Kind" }, "a"] }] }
            },
            "Rules": {
                "ANeedsUrl": {
                    "RuleCondition": { "Fn::Equals": [{ "Ref": "Kind" }, "a"] },
                    "Assertions": [{ "Assert": { "Condition": "NotAFunction" }, "AssertDescription": "unused" }]
                }
            },
            "Resources": {}
        }))
    }

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_fill_in_and_constraints_refuse() {
        let t = template();
        let values = t.parameters(&given(&[("Url", "https://x")])).expect("accepted");
        assert_eq!(values["Kind"], "a", "the default");
        assert_eq!(values["Size"], "10", "numbers as text");
        let refusals = t
            .parameters(&given(&[
                ("Kind", "c"),
                ("Url", "ftp://x"),
                ("Size", "30"),
                ("Nope", "1"),
            ]))
            .expect_err("refused");
        assert_eq!(
            refusals.len(),
            4,
            "unknown, AllowedValues, AllowedPattern, MaxValue: {refusals:#?}"
        );
    }

    #[test]
    fn an_allowed_pattern_must_match_the_whole_value() {
        assert_eq!(allowed_pattern_matches("[a-z]+", "abc").ok(), Some(true));
        assert_eq!(
            allowed_pattern_matches("[a-z]+", "abc1").ok(),
            Some(false),
            "no partial match"
        );
    }

    #[test]
    fn conditions_may_refer_to_conditions() {
        let t = template();
        let values = t.parameters(&given(&[("Url", "https://x")])).expect("accepted");
        let conditions = t.conditions(&values).expect("evaluated");
        assert!(conditions["HasUrl"], "the URL is set");
        assert!(conditions["KindAWithUrl"], "a condition of conditions");
    }

    #[test]
    fn a_rule_with_an_unknown_condition_is_an_error_not_a_pass() {
        let t = template();
        let values = t.parameters(&[]).expect("accepted");
        assert!(
            t.broken_rules(&values).is_err(),
            "the rehearsal never guesses a rule's outcome"
        );
    }

    #[test]
    fn sub_select_split_and_absent_resources_resolve() {
        let mut resolver = Resolver::for_parameters(&Parameters::new()).with_stack(
            "s",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1a-2b-3c-4d-5e6f",
        );
        resolver.refs.insert("Topic".into(), "arn:topic".into());
        resolver.absent.insert("Api".into());
        let name = json!({ "Fn::Sub": ["${AWS::StackName}/chat-${Suffix}", {
            "Suffix": { "Fn::Select": [4, { "Fn::Split": ["-", { "Fn::Select": [2, { "Fn::Split": ["/", { "Ref": "AWS::StackId" }] }] }] }] }
        }] });
        assert_eq!(resolver.text(&name).expect("resolved"), "s/chat-5e6f");
        assert_eq!(
            resolver
                .text(&json!({ "Fn::Sub": "${Topic} ${!Literal}" }))
                .expect("resolved"),
            "arn:topic ${Literal}"
        );
        assert_eq!(
            resolver.text(&json!({ "Ref": "Api" })).expect("resolved"),
            "<Api: not created>"
        );
        assert_eq!(
            resolver.references(&json!({ "Fn::Sub": ["${A.Arn}/${B}/${x}", { "x": { "Ref": "C" } }] })),
            ["A", "B", "C"].into_iter().map(str::to_owned).collect()
        );
    }
}
