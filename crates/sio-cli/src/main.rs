//! `sio`: a command-line Socket.IO client for trying and debugging any
//! Socket.IO server, as `wscat` is for WebSockets.
//!
//! It connects to the namespace its URL names (with auth, headers, query,
//! the transport of choice), emits the events of the command line
//! (optionally printing their acks), and prints every event it receives as
//! one JSON line on stdout: `{"event":"<name>","args":[…]}`. Diagnostics
//! go to stderr. The exit status says how the run ended; see [`exit::Exit`]
//! (0 success, 1 connection failed, 2 usage error, 3 timeout, 4 the server
//! disconnected the socket).
//!
//! Modules, one job each: [`cli`] reads the command line, [`json`] maps
//! binary data to JSON and back, [`output`] writes, [`session`] runs.

mod cli;
mod exit;
mod json;
mod output;
mod session;

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = cli::Config::from_env();
    let out = output::Output::new(config.quiet);
    // One thread is plenty for one socket.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            out.note(format_args!("cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let exit = runtime.block_on(session::run(config, out));
    // Do not wait for the client's background tasks: the run is over.
    runtime.shutdown_background();
    exit.into()
}
