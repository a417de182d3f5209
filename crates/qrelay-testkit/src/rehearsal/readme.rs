//! The README's configuration table ("## Configuration": variable, function, default, meaning), parsed, so the
//! rehearsal can hold each deployed function's environment to what the README promises its readers.

use anyhow::{Context as _, bail};

/// One documented variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// The functions that read it (`intake`, `consumer`, `redrive`, `console`, `digest`, `escalation`); `all` is
    /// expanded.
    pub functions: Vec<String>,
    /// The default column as written: `required`, `required for `rocketchat``, `1000 (max 1800)`, ...
    pub default: String,
}

impl Variable {
    /// Required whatever the chat kind.
    pub fn required(&self) -> bool {
        self.default == "required"
    }

    /// Whether it is required for this `CHAT_KIND` only (`required for `rocketchat`, `mattermost``).
    pub fn required_for(&self, kind: &str) -> bool {
        self.default
            .strip_prefix("required for ")
            .is_some_and(|kinds| kinds.split(',').any(|k| k.trim().trim_matches('`') == kind))
    }
}

/// The functions `all` stands for.
const ALL: [&str; 6] = ["intake", "consumer", "redrive", "console", "digest", "escalation"];

/// The configuration table of `readme` (the text of README.md).
pub fn configuration_table(readme: &str) -> anyhow::Result<Vec<Variable>> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration"))
        .context("README.md has no \"## Configuration\" section")?;
    let mut lines = section.lines().skip_while(|l| !l.starts_with('|'));
    let header = lines.next().context("the Configuration section has no table")?;
    let columns: Vec<String> = cells(header).map(|c| c.to_lowercase()).collect();
    if columns != ["variable", "function", "default", "meaning"] {
        bail!("the README's configuration table has columns {columns:?}, not variable, function, default, meaning");
    }
    let mut variables = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let row: Vec<&str> = cells(line).collect();
        let [names, functions, default, _meaning] = row.as_slice() else {
            bail!("a configuration row without four cells: {line}");
        };
        let functions: Vec<String> = functions
            .split(',')
            .map(str::trim)
            .flat_map(|f| if f == "all" { ALL.to_vec() } else { vec![f] })
            .map(str::to_owned)
            .collect();
        for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
            variables.push(Variable {
                name: name.to_owned(),
                functions: functions.clone(),
                default: (*default).to_owned(),
            });
        }
    }
    anyhow::ensure!(!variables.is_empty(), "the README's configuration table is empty");
    Ok(variables)
}

fn cells(line: &str) -> impl Iterator<Item = &str> {
    line.trim().trim_matches('|').split('|').map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# x\n\n## Configuration\n\nText.\n\n| variable | function | default | meaning |\n| --- | --- | --- | --- |\n\
        | `TOPIC_ARN` | intake | required | topic |\n\
        | `CHAT_URL` | consumer | required for `rocketchat`, `mattermost` | server |\n\
        | `QUEUE_ARN`, `DEAD_LETTER_QUEUE_ARN` | redrive | required | arns |\n\
        | `SSL_CERT_FILE` | all | unset | certs |\n\nMore text.\n\n## Next\n";

    #[test]
    fn rows_with_several_variables_and_all_functions_are_expanded() {
        let table = configuration_table(README).expect("parsed");
        let names: Vec<&str> = table.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "TOPIC_ARN",
                "CHAT_URL",
                "QUEUE_ARN",
                "DEAD_LETTER_QUEUE_ARN",
                "SSL_CERT_FILE"
            ]
        );
        assert!(table[0].required());
        assert!(table[1].required_for("rocketchat") && table[1].required_for("mattermost"));
        assert!(!table[1].required_for("slack") && !table[0].required_for("rocketchat"));
        assert_eq!(
            table[4].functions,
            ["intake", "consumer", "redrive", "console", "digest", "escalation"]
        );
    }

    #[test]
    fn the_real_readme_documents_every_required_variable() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
        let table = configuration_table(&readme).expect("parsed");
        for (function, required) in [
            ("intake", qrelay::config::IntakeConfig::REQUIRED),
            ("consumer", qrelay::config::ConsumerConfig::REQUIRED),
            ("redrive", qrelay::config::RedriveConfig::REQUIRED),
            ("console", qrelay::config::ConsoleConfig::REQUIRED),
            ("digest", qrelay::config::DigestConfig::REQUIRED),
            ("escalation", qrelay::config::EscalationConfig::REQUIRED),
        ] {
            for name in required {
                assert!(
                    table
                        .iter()
                        .any(|v| v.name == *name && v.functions.iter().any(|f| f == function)),
                    "README's configuration table lacks {name} for {function}"
                );
            }
        }
    }
}
