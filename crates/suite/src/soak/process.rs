//! The soak's server processes (`soak-server`, beside the running binary):
//! started, measured through `/proc`, and ended (politely when dropped, or
//! with `SIGKILL` by [`ServerProcess::kill`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Cluster, ServerSettings};

/// A `soak-server` process, ended when dropped (its standard input
/// closes; killed if it has not exited 10 s later).
pub struct ServerProcess {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where its standard error goes.
    errors: PathBuf,
}

impl ServerProcess {
    /// Starts `soak-server` on `runtime` with `settings`; in a cluster on
    /// the Redis at `redis` if given. Returns once it listens. Its errors
    /// go to a file ([`ServerProcess::panicked`] reads it).
    pub fn start(
        runtime: &str,
        settings: ServerSettings,
        redis: Option<(&str, Cluster)>,
    ) -> Result<ServerProcess, String> {
        let binary = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("soak-server");
        let mut command = Command::new(&binary);
        command.arg(runtime).args(settings.to_args());
        if let Some((url, cluster)) = redis {
            command.arg(url).arg(cluster.as_arg());
        }
        let errors = tempfile_path("soak-server-stderr");
        let stderr = std::fs::File::create(&errors).map_err(|e| e.to_string())?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok());
        match port {
            Some(port) => Ok(ServerProcess {
                child,
                port,
                errors,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(&errors).unwrap_or_default();
                let _ = std::fs::remove_file(&errors);
                Err(format!("soak-server said {line:?}, and {said:?}"))
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr())
    }

    /// Kills it (`SIGKILL`: no goodbye to anyone) and waits until it is
    /// gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running (it did not crash).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The panics it reported on its standard error so far (a task's panic
    /// does not end the process).
    pub fn panicked(&self) -> Vec<String> {
        std::fs::read_to_string(&self.errors)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }
}

/// A fresh path in the temporary directory.
fn tempfile_path(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{prefix}-{}-{n}.log", std::process::id()))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.errors);
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid`, in KiB (`VmRSS`), if `/proc` says.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user and system) of process `pid` so far. `/proc` counts it
/// in clock ticks, 100 a second on Linux.
pub fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
