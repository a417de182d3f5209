//! What the rehearsal prints as it goes (a section per scenario, one line per check) and what it adds up for the
//! end: the failures, and every place moto could not create or kept wrong what the template asks for, with how
//! the rehearsal checked it instead. Nothing moto skips may pass unmentioned.

use std::collections::BTreeMap;
use std::fmt::Display;

/// The rehearsal's running account.
#[derive(Debug, Default)]
pub struct Report {
    failures: Vec<String>,
    /// What moto could not create or mangled → how it was checked instead (and in which scenarios).
    gaps: BTreeMap<String, (String, Vec<String>)>,
    checks: usize,
    scenario: String,
}

/// How a gap is announced: in full the first time, briefly in each later scenario.
const SEE_ABOVE: &str = "(as above)";

impl Report {
    /// Starts a scenario's section.
    pub fn scenario(&mut self, name: &str, what: &str) {
        self.scenario = name.to_owned();
        println!();
        println!("=== scenario {name}: {what}");
    }

    /// A sub-heading within a section.
    pub fn step(&self, title: impl Display) {
        println!("--- {title}");
    }

    /// A line of information, not a check.
    pub fn note(&self, text: impl Display) {
        println!("    {text}");
    }

    /// A check: prints `ok` or `FAIL` with `what`, counts a failure. Returns `ok`.
    pub fn check(&mut self, ok: bool, what: impl Display) -> bool {
        self.checks += 1;
        if ok {
            println!("  ok    {what}");
        } else {
            let line = format!("[{}] {what}", self.scenario);
            println!("  FAIL  {what}");
            self.failures.push(line);
        }
        ok
    }

    /// A failure that is not a yes/no check (a step that could not run).
    pub fn fail(&mut self, what: impl Display) {
        self.check(false, what);
    }

    /// Something moto could not create, or created differently from the template: printed loudly, and listed
    /// again at the end with `instead`, how the rehearsal filled or checked it.
    pub fn gap(&mut self, what: impl Display, instead: impl Display) {
        let (what, instead) = (what.to_string(), instead.to_string());
        let scenario = self.scenario.clone();
        match self.gaps.get_mut(&what) {
            None => {
                println!("  MOTO  {what}: checked instead by {instead}");
                self.gaps.insert(what, (instead, vec![scenario]));
            }
            Some((_, scenarios)) if !scenarios.contains(&scenario) => {
                println!("  MOTO  {what} {SEE_ABOVE}");
                scenarios.push(scenario);
            }
            Some(_) => {}
        }
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The closing summary: moto's gaps, the failures, and the verdict line.
    pub fn print_summary(&self, seconds: f64) {
        println!();
        println!("=== what moto could not create or kept wrong, and how the rehearsal checked it instead");
        for (what, (instead, scenarios)) in &self.gaps {
            let scenarios: Vec<&str> = scenarios.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
            let scope = if scenarios.is_empty() {
                "once, for all scenarios".to_owned()
            } else {
                scenarios.join(", ")
            };
            println!("  - moto {what} [{scope}]");
            println!("      checked instead by {instead}");
        }
        println!();
        if self.failures.is_empty() {
            println!("deploy rehearsal: PASS ({} checks, {seconds:.0} s)", self.checks);
        } else {
            println!("failures:");
            for failure in &self.failures {
                println!("  {failure}");
            }
            println!(
                "deploy rehearsal: FAIL ({} of {} checks failed, {seconds:.0} s)",
                self.failures.len(),
                self.checks
            );
        }
    }
}
