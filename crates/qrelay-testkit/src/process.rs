//! Server processes a test, the bench or the local tools start, owned by a guard that stops them, and everything
//! they started, when it is dropped or when the owning process ends in any way (a panic, `exit`, even SIGKILL).
//!
//! A plain `kill_on_drop` child is not enough: it is skipped when the owner is killed, and it kills only the one
//! process (ChromeDriver's Chromium, or a wrapper's own child, would live on with parent pid 1). So each server
//! runs under a small `sh` watchdog:
//! - the server starts in a session and process group of its own (`setsid`, from util-linux, which every Debian
//!   has), so it and all its descendants can be signalled together;
//! - the watchdog reads its standard input, a pipe only the owner holds: when the guard is dropped, or the owner
//!   ends however it ends, the pipe closes, and the watchdog stops the group (SIGTERM, then SIGKILL after two
//!   seconds) and exits.
//!
//! The guard never kills the watchdog itself: that was the bug that left 21 moto servers behind after a test run.

use std::process::Stdio;

use tokio::process::{Child, ChildStdin, Command};

/// The watchdog. `$0` is the program, `$@` its arguments.
const WATCHDOG: &str = r#"setsid "$0" "$@" </dev/null &
pid=$!
cat >/dev/null
kill -TERM -"$pid" 2>/dev/null
i=0
while [ $i -lt 20 ] && kill -0 -"$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -KILL -"$pid" 2>/dev/null
exit 0"#;

/// A running server process (and its process group), stopped when this is dropped.
#[derive(Debug)]
pub struct Server {
    /// What the server was started as, for messages.
    pub program: String,
    /// The watchdog; reaped by tokio once it exits.
    _watchdog: Child,
    /// Dropping this closes the watchdog's standard input, which stops the server.
    _lifeline: ChildStdin,
}

impl Server {
    /// Starts `program` with `args`, its output discarded (or kept, with `keep_output`).
    pub fn spawn(program: &str, args: &[String]) -> std::io::Result<Self> {
        Self::spawn_with(program, args, |_| {})
    }

    /// Like [`Server::spawn`], letting the caller adjust the command (environment, output) first.
    pub fn spawn_with(program: &str, args: &[String], adjust: impl FnOnce(&mut Command)) -> std::io::Result<Self> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        adjust(&mut command);
        let mut watchdog = command.spawn()?;
        let lifeline = watchdog
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the watchdog has no standard input"))?;
        Ok(Self {
            program: program.to_owned(),
            _watchdog: watchdog,
            _lifeline: lifeline,
        })
    }
}

/// A free TCP port on the loopback interface (free now; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn alive(pid: &str) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    }

    #[tokio::test]
    async fn a_dropped_server_and_its_children_are_stopped() {
        let dir = std::env::temp_dir().join(format!("qrelay-process-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let pids = dir.join("pids");
        // A server that starts a child of its own, as ChromeDriver starts Chromium, and ignores SIGTERM's default
        // for nothing: both must go.
        let script = format!("sleep 300 & echo $$ $! > {}; wait", pids.display());
        let server = Server::spawn("sh", &["-c".into(), script]).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(10);
        let recorded = loop {
            if let Ok(s) = std::fs::read_to_string(&pids) {
                if s.trim().split(' ').count() == 2 {
                    break s;
                }
            }
            assert!(Instant::now() < deadline, "the server never wrote its pids");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let recorded: Vec<String> = recorded.split_whitespace().map(str::to_owned).collect();
        assert!(recorded.iter().all(|p| alive(p)), "both running: {recorded:?}");

        drop(server);

        let deadline = Instant::now() + Duration::from_secs(10);
        while recorded.iter().any(|p| alive(p)) {
            assert!(Instant::now() < deadline, "still alive after drop: {recorded:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
