//! What the runner reads of a server process, from Linux's `/proc`: CPU
//! time (user + system, all threads, in clock ticks) and resident memory.

use std::time::Duration;

use crate::BenchError;

/// A reading of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// CPU time used since the process started, user and system.
    pub cpu: Duration,
    /// The part of `cpu` spent in the kernel (system time).
    pub kernel: Duration,
    /// Resident set size, in bytes.
    pub rss: u64,
}

/// Reads a server process's CPU time and memory; `None` reads nothing
/// (the load generator run alone, against a server it did not start).
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pid: Option<u32>,
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times: 100 on every
/// Linux the project runs on (`getconf CLK_TCK`).
const TICKS_PER_SECOND: u64 = 100;

impl Probe {
    /// Reads the process `pid`.
    pub fn of(pid: u32) -> Probe {
        Probe { pid: Some(pid) }
    }

    /// Reads nothing: every sample is zero.
    pub fn none() -> Probe {
        Probe { pid: None }
    }

    /// Whether samples are real.
    pub fn is_real(&self) -> bool {
        self.pid.is_some()
    }

    /// The process's CPU time and resident memory now.
    pub fn sample(&self) -> Result<Sample, BenchError> {
        let Some(pid) = self.pid else {
            return Ok(Sample::default());
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let (user, kernel) = cpu_times(&stat)?;
        Ok(Sample {
            cpu: user + kernel,
            kernel,
            rss: resident_bytes(&status)?,
        })
    }
}

/// utime and stime of a `/proc/<pid>/stat` line (fields 14 and 15; the
/// command name in field 2 may hold spaces, so count from its `)`).
fn cpu_times(stat: &str) -> Result<(Duration, Duration), BenchError> {
    let bad = || BenchError::Protocol(format!("unreadable /proc stat line: {stat:?}"));
    let after_name = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    let system: u64 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    let ticks = |n: u64| Duration::from_millis(n * 1000 / TICKS_PER_SECOND);
    Ok((ticks(user), ticks(system)))
}

/// `VmRSS` of a `/proc/<pid>/status`, in bytes.
fn resident_bytes(status: &str) -> Result<u64, BenchError> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| BenchError::Protocol("no VmRSS in /proc status".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_past_a_name_with_spaces() {
        let stat = "42 (my server) S 1 42 42 0 -1 4194304 122 0 0 0 250 30 0 0 20 0 1 0";
        let (user, system) = cpu_times(stat).unwrap();
        assert_eq!(
            (user, system),
            (Duration::from_millis(2500), Duration::from_millis(300))
        );
    }

    #[test]
    fn reads_this_process() {
        let sample = Probe::of(std::process::id()).sample().unwrap();
        assert!(sample.rss > 0);
        assert!(resident_bytes("VmRSS:\t  1960 kB\n").unwrap() == 1960 * 1024);
    }
}
