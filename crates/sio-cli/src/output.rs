//! Everything `sio` writes. Stdout carries only JSON lines, one per
//! received event or ack, flushed as they come so pipes see them at once;
//! diagnostics go to stderr, where `--quiet` silences them.

use std::fmt;
use std::io::{self, Write};

use runtime_tokio::socketio::Payload;

use crate::json::render_args;

/// The writer of `sio`'s output; cheap to copy into listeners.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    quiet: bool,
}

impl Output {
    /// An output that writes diagnostics unless `quiet`.
    pub fn new(quiet: bool) -> Output {
        Output { quiet }
    }

    /// Prints a received event: `{"event":"<name>","args":[…]}`. Fails when
    /// stdout is closed (a reader such as `head` went away).
    pub fn event(&self, event: &str, payload: &Payload) -> io::Result<()> {
        write_line(&json_line("event", event, payload))
    }

    /// Prints the ack of an emit: `{"ack":"<event>","args":[…]}`.
    pub fn ack(&self, event: &str, payload: &Payload) -> io::Result<()> {
        write_line(&json_line("ack", event, payload))
    }

    /// Writes a diagnostic line on stderr, prefixed with `sio: `.
    pub fn note(&self, message: fmt::Arguments<'_>) {
        if !self.quiet {
            // Nothing better to do if stderr is gone.
            let _ = writeln!(io::stderr().lock(), "sio: {message}");
        }
    }
}

/// `{"<kind>":"<name>","args":[…]}`, built by hand so the keys keep this
/// order whatever serde_json's map type, and the arguments need no
/// reparsing when they hold no binary data.
fn json_line(kind: &str, name: &str, payload: &Payload) -> String {
    let name = serde_json::Value::from(name).to_string();
    format!(
        "{{\"{kind}\":{name},\"args\":{args}}}",
        args = render_args(payload)
    )
}

fn write_line(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_the_kind_first() {
        let payload = Payload::args(&(1, "a\nb")).unwrap();
        let line = json_line("event", "new \"msg\"", &payload);
        assert_eq!(line, r#"{"event":"new \"msg\"","args":[1,"a\nb"]}"#);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["args"][1], "a\nb");
        assert_eq!(
            json_line("ack", "sum", &Payload::empty()),
            r#"{"ack":"sum","args":[]}"#
        );
    }
}
