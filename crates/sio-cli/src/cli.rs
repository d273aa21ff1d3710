//! The command line: what `sio` is asked to do, checked before anything
//! connects. Every mistake found here is a usage error (exit status 2).

use std::ffi::OsString;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use serde_json::Value;

use crate::json::Arg;

/// Shown after the options by `-h`.
const AFTER_HELP: &str = "\
Exit status: 0 success, 1 connection failed or refused, 2 usage error,
3 timed out, 4 disconnected by the server. See --help for examples.";

/// Shown after the options by `--help`.
const AFTER_LONG_HELP: &str = r#"Examples:
  # Listen to namespace /chat: one JSON line per event, until Ctrl-C
  sio http://localhost:3000/chat

  # Emit "message" with two arguments, print the server's ack, exit
  sio http://localhost:3000 -e message -a '"hello"' -a '{"to":"bob"}' --ack

  # Two emits in order: "join" with one argument, then "ping" with none
  sio http://localhost:3000 -e join -a '"lobby"' -e ping

  # Authenticate, exit after 3 events, or with status 3 after 10 s
  sio https://example.com/admin --auth '{"token":"abc"}' -n 3 --timeout 10

  # WebSocket only, with a header and a query parameter
  sio ws://localhost:3000 --transport websocket -H 'Authorization: Bearer abc' --query room=lobby

Each -a/--arg is one JSON value and belongs to the -e/--emit before it
(a string needs its quotes: -a '"hello"'). Binary data is written
{"_binary":"<base64>"}, both in what sio prints and in what it sends.

Output: stdout gets one JSON line per received event,
{"event":"<name>","args":[...]}, and with --ack one per ack,
{"ack":"<event>","args":[...]}; diagnostics go to stderr.

sio runs until its goal is reached: --count events received, and every
--emit sent (and acknowledged, with --ack). With neither, it listens until
Ctrl-C, the end of --timeout, or the server disconnecting it.

Exit status:
  0  the goal was reached (or, with no goal, Ctrl-C or the end of --timeout)
  1  the connection failed, was refused by the server, or was lost
  2  usage error: bad option, URL, JSON argument or header
  3  timed out: --timeout passed before the connection or the goal, or an
     ack did not come within --ack-timeout
  4  the server disconnected the socket before the goal"#;

/// The arguments as clap reads them; [`Config`] is what the rest of `sio`
/// uses.
#[derive(Debug, Parser)]
#[command(
    name = "sio",
    version,
    about = "A command-line Socket.IO client: connect, emit events, print what the server sends.",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP
)]
struct Cli {
    /// The server, http(s):// or ws(s)://; the URL's path is the namespace
    /// (http://localhost:3000/admin joins /admin)
    url: String,

    /// Emit EVENT once connected; repeat for several events, sent in order
    #[arg(short = 'e', long = "emit", value_name = "EVENT")]
    emit: Vec<String>,

    /// A JSON argument of the preceding --emit; repeat for several
    #[arg(
        short = 'a',
        long = "arg",
        value_name = "JSON",
        allow_hyphen_values = true,
        value_parser = Arg::parse
    )]
    arg: Vec<Arg>,

    /// Wait for the server's ack of each emit and print it
    #[arg(long, requires = "emit")]
    ack: bool,

    /// How long to wait for each ack
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    ack_timeout: Duration,

    /// Exit after receiving N events
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    count: Option<u64>,

    /// Exit with status 3 if the goal is not reached within SECS
    /// (connecting included); with no goal, listen for SECS and exit 0
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    timeout: Option<Duration>,

    /// The auth object sent with CONNECT, as JSON
    #[arg(long, value_name = "JSON", value_parser = auth_object)]
    auth: Option<Value>,

    /// An HTTP header for every request and the WebSocket handshake;
    /// repeatable
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header)]
    headers: Vec<(String, String)>,

    /// A query parameter added to every request; repeatable
    #[arg(long = "query", value_name = "KEY=VALUE", value_parser = query_pair)]
    query: Vec<(String, String)>,

    /// The server's Engine.IO path
    #[arg(long, value_name = "PATH", default_value = "/socket.io")]
    path: String,

    /// The transport: long-polling upgraded to WebSocket, or one of them
    /// only
    #[arg(long, value_enum, default_value_t = Transport::Upgrade)]
    transport: Transport,

    /// Keep reconnecting when the connection fails or is lost (by default
    /// sio fails fast with exit status 1)
    #[arg(long)]
    reconnect: bool,

    /// No diagnostics on stderr (errors included); stdout is unchanged
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// The transports `sio` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only.
    Websocket,
    /// Long-polling first, upgraded to WebSocket (what browsers do).
    Upgrade,
}

/// One event to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    /// The event name.
    pub event: String,
    /// Its arguments, in order.
    pub args: Vec<Arg>,
}

/// What `sio` was asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server URL; its path names the namespace.
    pub url: String,
    /// The CONNECT auth object.
    pub auth: Option<Value>,
    /// Extra HTTP headers, name and value.
    pub headers: Vec<(String, String)>,
    /// Extra query parameters, name and value.
    pub query: Vec<(String, String)>,
    /// The Engine.IO path.
    pub path: String,
    /// The transport to use.
    pub transport: Transport,
    /// The events to emit once connected, in order.
    pub emits: Vec<Emit>,
    /// Whether to wait for and print each emit's ack.
    pub ack: bool,
    /// How long to wait for each ack.
    pub ack_timeout: Duration,
    /// How many received events end the run.
    pub count: Option<u64>,
    /// The overall deadline.
    pub timeout: Option<Duration>,
    /// Whether to keep reconnecting.
    pub reconnect: bool,
    /// Whether to keep stderr silent.
    pub quiet: bool,
}

impl Config {
    /// Reads the process's arguments; on a usage error (or `--help`,
    /// `--version`) prints the message and exits as clap does.
    pub fn from_env() -> Config {
        Config::parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// Reads `args` (the first is the program name).
    pub fn parse_from<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let emits = group_emits(&matches, cli.emit, cli.arg)
            .map_err(|message| command.error(ErrorKind::ArgumentConflict, message))?;
        Ok(Config {
            url: cli.url,
            auth: cli.auth,
            headers: cli.headers,
            query: cli.query,
            path: cli.path,
            transport: cli.transport,
            emits,
            ack: cli.ack,
            ack_timeout: cli.ack_timeout,
            count: cli.count,
            timeout: cli.timeout,
            reconnect: cli.reconnect,
            quiet: cli.quiet,
        })
    }

    /// Whether the run ends by itself once something happens (events
    /// counted, emits done), rather than when it is stopped.
    pub fn has_goal(&self) -> bool {
        self.count.is_some() || !self.emits.is_empty()
    }
}

/// Gives each `--arg` to the `--emit` written before it: clap keeps the
/// two lists apart, but records where on the command line each value was.
fn group_emits(
    matches: &ArgMatches,
    events: Vec<String>,
    args: Vec<Arg>,
) -> Result<Vec<Emit>, String> {
    let event_at: Vec<usize> = matches
        .indices_of("emit")
        .map(Iterator::collect)
        .unwrap_or_default();
    let arg_at: Vec<usize> = matches
        .indices_of("arg")
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut emits: Vec<Emit> = events
        .into_iter()
        .map(|event| Emit {
            event,
            args: Vec::new(),
        })
        .collect();
    for (at, arg) in arg_at.into_iter().zip(args) {
        let owner = event_at
            .iter()
            .rposition(|&event| event < at)
            .ok_or_else(|| String::from("each --arg must follow the --emit it belongs to"))?;
        emits[owner].args.push(arg);
    }
    Ok(emits)
}

/// Seconds, fractions allowed (`0.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

/// A JSON object.
fn auth_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(String::from("the auth must be a JSON object")),
        Err(error) => Err(format!("invalid JSON: {error}")),
    }
}

/// `Name: value`, as curl writes headers. The name's validity is checked
/// by the client when the socket is made.
fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| String::from("a header is written 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(String::from("the header has no name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `key=value`.
fn query_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| String::from("a query parameter is written key=value"))?;
    if key.is_empty() {
        return Err(String::from("the query parameter has no name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::parse_from(std::iter::once("sio").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn each_arg_belongs_to_the_emit_before_it() {
        let config = parse(&[
            "http://x", "-e", "a", "-a", "1", "-a", "\"two\"", "--emit", "b", "-e", "c", "--arg",
            "-3",
        ])
        .unwrap();
        let events: Vec<&str> = config.emits.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["a", "b", "c"]);
        assert_eq!(
            config.emits[0].args,
            [Arg::parse("1").unwrap(), Arg::parse("\"two\"").unwrap()]
        );
        assert!(config.emits[1].args.is_empty());
        assert_eq!(config.emits[2].args, [Arg::parse("-3").unwrap()]);
        assert!(config.has_goal());
    }

    #[test]
    fn an_arg_before_any_emit_is_a_usage_error() {
        let error = parse(&["http://x", "-a", "1", "-e", "a"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["http://x", "-e", "a", "-a", "{nope"][..],
            &["http://x", "--auth", "[1]"],
            &["http://x", "--auth", "{"],
            &["http://x", "-H", "no colon"],
            &["http://x", "--query", "novalue"],
            &["http://x", "--timeout", "soon"],
            &["http://x", "--timeout", "-1"],
            &["http://x", "--count", "0"],
            &["http://x", "--ack"],
            &["http://x", "--transport", "carrier-pigeon"],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn options_are_read() {
        let config = parse(&[
            "ws://x/admin",
            "--auth",
            r#"{"token":"t"}"#,
            "-H",
            "X-Team:  blue ",
            "--query",
            "room=a=b",
            "--transport",
            "websocket",
            "--timeout",
            "1.5",
            "-n",
            "2",
            "--path",
            "/io",
        ])
        .unwrap();
        assert_eq!(config.auth, Some(serde_json::json!({ "token": "t" })));
        assert_eq!(config.headers, [("X-Team".into(), "blue".into())]);
        assert_eq!(config.query, [("room".into(), "a=b".into())]);
        assert_eq!(config.transport, Transport::Websocket);
        assert_eq!(config.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(config.count, Some(2));
        assert_eq!(config.path, "/io");
        assert_eq!(config.ack_timeout, Duration::from_secs(5));
        assert!(!config.reconnect && !config.quiet && !config.ack);
    }

    #[test]
    fn listening_alone_has_no_goal() {
        let config = parse(&["http://x"]).unwrap();
        assert!(!config.has_goal());
        assert_eq!(config.transport, Transport::Upgrade);
    }
}
