//! How `sio` ends: one exit status per outcome, so scripts can tell a
//! server that refused them from one that stayed silent.

use std::process::ExitCode;

/// The exit statuses of `sio` (also listed in `sio --help`).
///
/// | status | meaning |
/// |---|---|
/// | 0 | success: the goal was reached (`--count` events received, every emit sent and, with `--ack`, acknowledged), or, with no goal, interrupted by Ctrl-C or at the end of `--timeout` |
/// | 1 | the connection failed: nothing listening, a bad handshake, the server refused the namespace (its `connect_error` message and data are printed on stderr), or the connection was lost and `--reconnect` was not given |
/// | 2 | usage error: a bad option, URL, JSON argument or header |
/// | 3 | `--timeout` passed before the goal, or an ack did not come within `--ack-timeout` |
/// | 4 | the server disconnected the socket (`io server disconnect`) before the goal |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The goal was reached, or the user stopped a run that had none.
    Success,
    /// The connection could not be made, was refused, or was lost.
    ConnectionFailed,
    /// The command line was wrong (clap exits with the same status itself).
    Usage,
    /// A deadline passed first: `--timeout` or `--ack-timeout`.
    Timeout,
    /// The server disconnected the socket before the goal.
    ServerDisconnect,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::ConnectionFailed => 1,
            Exit::Usage => 2,
            Exit::Timeout => 3,
            Exit::ServerDisconnect => 4,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_share_clap_s_status() {
        // clap exits with 2 on its own usage errors; ours must match.
        let error = clap::Error::new(clap::error::ErrorKind::InvalidValue);
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }
}
