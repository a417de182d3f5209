//! `cargo run -p qrelay-testkit --bin deploy-rehearsal`: the deploy rehearsal (see `qrelay_testkit::rehearsal`),
//! run by `.ci/test` after `.ci/sam-check`. Exits non-zero when any check fails.
//!
//! Options: `--template PATH` (a mutated copy of template.yaml, to see the rehearsal catch it), `--scenario NAME`
//! (repeatable: defaults, webhook, all-optional, refused-no-chat-url, refused-plain-http-chat-url,
//! refused-secret-without-suffix),
//! `--no-build` (use the functions' binaries already in target/debug).

use std::path::PathBuf;
use std::process::ExitCode;

use qrelay_testkit::rehearsal::{self, Options};

fn options() -> anyhow::Result<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let mut options = Options {
        template: root.join("template.yaml"),
        root,
        only: Vec::new(),
        build: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--template" => {
                options.template = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--template needs a path"))?
                    .into()
            }
            "--scenario" => options
                .only
                .push(args.next().ok_or_else(|| anyhow::anyhow!("--scenario needs a name"))?),
            "--no-build" => options.build = false,
            other => anyhow::bail!("unknown option {other:?}; options: --template PATH, --scenario NAME, --no-build"),
        }
    }
    options.template = std::path::absolute(&options.template)?;
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = async { rehearsal::rehearse(&options()?).await }.await;
    match result {
        Ok(report) if report.failures().is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            println!("deploy rehearsal: FAIL (could not run: {e:#})");
            ExitCode::FAILURE
        }
    }
}
