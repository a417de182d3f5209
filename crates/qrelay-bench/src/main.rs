//! `cargo run --release -p qrelay-bench`: measures what Lambda users pay for, on this machine, and prints a table
//! (also written to `target/qrelay-bench/results.json`):
//!
//! 1. cold start of each function's release binary, process start to first response, through a local stand-in
//!    for the Lambda Runtime API, against moto and the Rocket.Chat fake, next to a no-op Lambda (the floor),
//!    split into the time spent waiting on moto or the chat and the function's own time; intake and the consumer
//!    also over HTTPS (an HTTPS timing proxy with a private test CA, trusted through `SSL_CERT_FILE`), counting
//!    TLS handshakes;
//! 2. warm latency over many invocations of one process, split the same way, and the handler's own time with
//!    in-memory ports;
//! 3. peak memory (`VmHWM`) after the warm run;
//! 4. binary sizes (x86_64 release, and arm64 `bootstrap` + zip when `cargo lambda build --release --arm64` ran);
//! 5. consumer throughput against a chat with injected latency, one room and several;
//! 6. a local end-to-end load through `qrelay-local`, checking that every question reached the board once, and
//!    how long after its 202 each reached the board.
//!
//! Options: `--quick` (fewer iterations, for a smoke run), `--only NAME`, `--spawns N`, `--warm N`, `--load N`.

mod downstream;
mod harness;
mod in_process;
mod stats;

use std::path::PathBuf;

use serde_json::json;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Measure only this function (and the floor).
    pub only: Option<&'static str>,
    pub spawns: usize,
    pub warm: usize,
    pub load: usize,
    pub concurrency: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        only: None,
        spawns: 20,
        warm: 1000,
        load: 2000,
        concurrency: 16,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            Ok(args
                .next()
                .ok_or_else(|| anyhow::anyhow!("{name} needs a number"))?
                .parse()?)
        };
        match arg.as_str() {
            "--quick" => {
                options = Options {
                    spawns: 3,
                    warm: 50,
                    load: 100,
                    concurrency: 8,
                    ..options
                }
            }
            "--only" => {
                let name = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--only needs a function name"))?;
                options.only = Some(
                    harness::FUNCTIONS
                        .into_iter()
                        .map(|(label, _)| label)
                        .find(|f| f == name)
                        .ok_or_else(|| anyhow::anyhow!("no function {name}"))?,
                );
            }
            "--spawns" => options.spawns = number("--spawns")?,
            "--warm" => options.warm = number("--warm")?,
            "--load" => options.load = number("--load")?,
            other => {
                anyhow::bail!("unknown option {other:?}; options: --quick, --only NAME, --spawns N, --warm N, --load N")
            }
        }
    }
    Ok(options)
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build measures nothing useful; run `cargo run --release -p qrelay-bench`");
    }
    let root = workspace_root();
    harness::build_release_binaries(&root)?;

    let env = harness::Environment::start().await?;
    let (proxy_overhead, tls_proxy_overhead) = env.proxy_overhead().await?;
    let (proxy_overhead_ms, tls_proxy_overhead_ms) = (
        proxy_overhead.as_secs_f64() * 1000.0,
        tls_proxy_overhead.as_secs_f64() * 1000.0,
    );
    let mut functions = Vec::new();
    for function in harness::FUNCTIONS
        .into_iter()
        .filter(|(f, _)| options.only.is_none_or(|o| o == *f || *f == "noop"))
    {
        for tls in [false, true] {
            if tls && !harness::OVER_TLS.contains(&function.0) {
                continue;
            }
            eprintln!(
                "== {}{}: cold start x{}, warm x{}",
                function.0,
                if tls { " over HTTPS" } else { "" },
                options.spawns,
                options.warm
            );
            functions.push(harness::measure_function(&env, &root, function, options, tls).await?);
        }
    }
    let floor = functions
        .iter()
        .find(|f| f.name == "noop" && !f.tls)
        .map(|f| f.cold.p50_ms)
        .unwrap_or(f64::NAN);

    let (own, throughput, load) = if options.only.is_some() {
        (Vec::new(), Vec::new(), None)
    } else {
        eprintln!("== handler own time (in process, in-memory ports)");
        let own = in_process::handler_own_time(options.warm).await?;
        eprintln!("== consumer throughput against a chat answering in 20 ms");
        let throughput = in_process::consumer_throughput(&env).await?;
        eprintln!(
            "== local end-to-end load: {} questions at concurrency {}",
            options.load, options.concurrency
        );
        (
            own,
            throughput,
            Some(in_process::local_load(options.load, options.concurrency).await?),
        )
    };
    let sizes = harness::artifact_sizes(&root)?;

    println!();
    println!(
        "Cold start, process start to first response (ms), {} spawns each; \"waited\" is the time spent on moto or \
         the chat, \"own\" the rest",
        options.spawns
    );
    println!(
        "{:<15} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>7} {:>7} | {:>9} {:>9} {:>9} {:>10}",
        "function",
        "min",
        "median",
        "p90",
        "x floor",
        "waited",
        "calls",
        "own",
        "x floor",
        "warm p50",
        "warm p99",
        "own p50",
        "peak RSS"
    );
    for f in &functions {
        println!(
            "{:<15} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>7.2} {:>6} {:>7.2} {:>7.2} | {:>9.3} {:>9.3} {:>9.3} {:>7.1} MB",
            f.label(),
            f.cold.min_ms,
            f.cold.p50_ms,
            f.cold.p90_ms,
            f.cold.p50_ms / floor,
            f.cold_waited.p50_ms,
            f.cold_calls,
            f.cold_own.p50_ms,
            f.cold_own.p50_ms / floor,
            f.warm.p50_ms,
            f.warm.p99_ms,
            f.warm_own.p50_ms,
            f.peak_rss_kib as f64 / 1024.0
        );
    }
    println!(
        "The second \"x floor\" is own / floor. The timing proxy adds {proxy_overhead_ms:.3} ms to each call, counted in \
         \"own\" ({tls_proxy_overhead_ms:.3} ms over HTTPS on a reused connection)."
    );
    println!(
        "\"https\" rows: moto and the chat behind an HTTPS proxy (a private test CA, trusted through SSL_CERT_FILE); \
         the TLS handshakes count in \"own\"."
    );
    for f in functions.iter().filter(|f| f.tls) {
        println!(
            "{}: TLS handshakes in a cold start: {}; handshakes during {} warm invocations: {}",
            f.label(),
            f.cold_handshakes.unwrap_or(0),
            f.warm.n,
            f.warm_handshakes.unwrap_or(0)
        );
    }
    println!();
    println!("Handler's own time with in-memory ports (ms): the rest of warm latency is waiting on moto or the chat");
    for (name, s) in &own {
        println!("{name:<10} p50 {:>8.4}  p99 {:>8.4}", s.p50_ms, s.p99_ms);
    }
    println!();
    for t in &throughput {
        println!(
            "consumer, {} room(s): {:.1} ms per batch of 10 (median), {:.0} messages/s",
            t.rooms, t.per_batch.p50_ms, t.messages_per_second
        );
    }
    if let Some(load) = &load {
        println!(
            "local load: {} questions, {:.0} accepted/s, ack p50 {:.2} ms p99 {:.2} ms, on the board exactly once: {} \
             (all delivered {:.0} ms after the first was sent)",
            load.questions,
            load.accepted_per_second,
            load.ack.p50_ms,
            load.ack.p99_ms,
            load.all_once,
            load.delivered_within_ms
        );
        println!(
            "local load, 202 to the board (wall clock, the board's posted_at): p50 {:.2} ms, p99 {:.2} ms, max {:.2} \
             ms; {} of {} were on the board before their 202 arrived (counted as 0)",
            load.submit_to_board.p50_ms,
            load.submit_to_board.p99_ms,
            load.submit_to_board.max_ms,
            load.on_board_before_ack,
            load.submit_to_board.n
        );
    }
    println!();
    for s in &sizes {
        println!(
            "{:<10} {:<8} {:>10} bytes  zip {:>10}",
            s.name,
            s.arch,
            s.bytes,
            s.zip_bytes.map_or("-".into(), |z| z.to_string())
        );
    }

    let results = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "options": { "only": options.only, "spawns": options.spawns, "warm": options.warm, "load": options.load, "concurrency": options.concurrency },
        "functions": functions,
        "floor_cold_p50_ms": floor,
        "proxy_overhead_per_call_ms": proxy_overhead_ms,
        "tls_proxy_overhead_per_call_ms": tls_proxy_overhead_ms,
        "handler_own_time": own.iter().map(|(n, s)| json!({ "function": n, "summary": s })).collect::<Vec<_>>(),
        "consumer_throughput": throughput,
        "local_load": load,
        "sizes": sizes,
    });
    let out = root.join("target/qrelay-bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    println!("\nwritten: target/qrelay-bench/results.json");
    Ok(())
}
