//! `qrelay-local`: runs the whole of qrelay on this machine with no AWS account. See the README, "Run it
//! locally".

use qrelay_local::{LocalConfig, start};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = LocalConfig::from_env_and_args(&args)?;
    let running = start(config).await?;
    let public = running.public_url();
    let backend = if running.system.intake_uses_aws() {
        "SNS/SQS at AWS_ENDPOINT_URL"
    } else {
        "in-process queue"
    };
    println!(
        "qrelay is running locally on {} ({backend}; chat: {}, {})",
        running.addr,
        running.system.chat_label,
        running.system.chat_guarantee.label()
    );
    for room in running.system.rooms.iter() {
        let name: &str = room.name().as_ref();
        println!("  form for {name:<10} {public}/r/{name}   (to project: {public}/r/{name}/join)");
    }
    println!("  default form        {public}/");
    println!("  board (the chat)    {public}/board");
    match running.admin_url() {
        Some(admin) => {
            let console = admin.trim_end_matches("/admin").to_owned() + "/instructor";
            println!("  instructor console  {console}   (this machine only, no sign-in)");
            println!("  local tools         {admin}   (chat outage, retry now)");
        }
        None => println!(
            "  instructor page     unavailable: it answers this machine's loopback only; listen on 0.0.0.0 to have both"
        ),
    }
    if let Some(hint) = &running.reachable.hint {
        println!("Note: {hint}");
    }
    println!("Press Ctrl-C to stop.");
    stop_signal().await?;
    println!("Stopping: finishing deliveries in progress...");
    running.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a process manager.
async fn stop_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
