//! What the browser tests share: Chromium, and a playwright-core script of
//! `interop/` run against a server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Debian's `chromium`, or `CHROMIUM=/path`; a test without it fails.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("the browser test needs Chromium: install Debian's `chromium` (scripts/test does) or set CHROMIUM")
        })
}

/// Runs `node <script> <args…>` in `interop/` for at most 90 s; it must
/// print `ok` and exit 0.
pub async fn run_script(script: &str, args: &[String]) {
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop");
    let child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(interop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the browser test needs Node.js on PATH");
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the browser test did not finish in 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "{script}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
