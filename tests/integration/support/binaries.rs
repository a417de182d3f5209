//! The real function binaries, run as Lambda runs them (`qrelay_testkit::rehearsal::functions`): building them,
//! and the environment Lambda gives them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qrelay_testkit::rehearsal::functions::LambdaContext;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where `build` puts the binaries.
pub fn target() -> PathBuf {
    root().join("target/debug")
}

/// Builds the function packages (debug profile, shared target directory).
pub fn build(packages: &[&str]) {
    let mut command = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root()).args(["build", "--quiet"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command.status().expect("running cargo build");
    assert!(status.success(), "cargo build of {packages:?} failed");
}

/// What Lambda sets for function `name`, logging JSON at `level`.
pub fn lambda(name: &str, level: &str) -> LambdaContext {
    LambdaContext {
        function_name: name.to_owned(),
        function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        memory_mb: 128,
        log_group: format!("/aws/lambda/{name}"),
        log_format: Some("JSON".to_owned()),
        log_level: Some(level.to_owned()),
    }
}

/// A function's configured variables.
pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}
