//! The UI's own files, served by the Socket.IO server: what
//! `npm i @socket.io/admin-ui` puts in `ui/dist`, read once into memory
//! and served under a path of one's choice, beside Socket.IO.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use socketio::engine::HttpReply;
use socketio::HttpHandler;

/// The Admin UI's files, in memory, answered under a mount path (default
/// `/admin/`). Only the files read at start are ever served: a request
/// cannot reach anything else on disk.
///
/// ```no_run
/// use admin_ui::UiFiles;
/// # fn run(io: socketio::SocketIo<runtime_tokio::TokioRuntime>) -> std::io::Result<()> {
/// let files = UiFiles::load("node_modules/@socket.io/admin-ui/ui/dist")?;
/// // Socket.IO and the UI (at http://localhost:3000/admin/) on one port.
/// let handler = files.serve_with(io);
/// # let _ = handler;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UiFiles {
    mount: Arc<str>,
    files: Arc<HashMap<String, (&'static str, Bytes)>>,
}

impl std::fmt::Debug for UiFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiFiles")
            .field("mount", &self.mount)
            .field("files", &self.files.len())
            .finish()
    }
}

/// How many files and bytes the UI may have: `ui/dist` has a dozen files
/// and 4 MB; a wrong directory should fail, not fill memory.
const MAX_FILES: usize = 256;
const MAX_BYTES: u64 = 64 << 20;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

impl UiFiles {
    /// Reads the UI's directory (`ui/dist` of the npm package `@socket.io/admin-ui`).
    pub fn load(dir: impl AsRef<Path>) -> std::io::Result<UiFiles> {
        let mut files = HashMap::new();
        let mut total = 0u64;
        let mut pending = vec![(dir.as_ref().to_path_buf(), String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = format!("{prefix}{name}");
                if entry.file_type()?.is_dir() {
                    pending.push((entry.path(), format!("{relative}/")));
                    continue;
                }
                total += entry.metadata()?.len();
                if files.len() == MAX_FILES || total > MAX_BYTES {
                    return Err(std::io::Error::other(
                        "too many files for the Admin UI's directory",
                    ));
                }
                let body = Bytes::from(std::fs::read(entry.path())?);
                files.insert(relative.clone(), (content_type(&relative), body));
            }
        }
        if !files.contains_key("index.html") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no index.html: not the Admin UI's ui/dist directory",
            ));
        }
        Ok(UiFiles {
            mount: Arc::from("/admin/"),
            files: Arc::new(files),
        })
    }

    /// Serves the files under `path` instead of `/admin/` (it should not be
    /// the Socket.IO path).
    pub fn mount(mut self, path: &str) -> UiFiles {
        let trimmed = path.trim_matches('/');
        self.mount = if trimmed.is_empty() {
            Arc::from("/")
        } else {
            Arc::from(format!("/{trimmed}/"))
        };
        self
    }

    /// The answer to `request` if it is for the UI: a file, or a redirect
    /// from the mount path without its slash (the UI's links are
    /// relative).
    pub fn answer<B>(&self, request: &hyper::Request<B>) -> Option<HttpReply> {
        let path = request.uri().path();
        if path == self.mount.trim_end_matches('/') && path != "/" {
            return Some(
                hyper::Response::builder()
                    .status(http::StatusCode::MOVED_PERMANENTLY)
                    .header(http::header::LOCATION, &*self.mount)
                    .body(Full::new(Bytes::new()))
                    .expect("static headers are valid"),
            );
        }
        let file = path.strip_prefix(&*self.mount)?;
        let file = if file.is_empty() { "index.html" } else { file };
        let (content_type, body) = self.files.get(file)?;
        Some(
            hyper::Response::builder()
                .header(http::header::CONTENT_TYPE, *content_type)
                .body(Full::new(body.clone()))
                .expect("static headers are valid"),
        )
    }

    /// A handler that answers the UI's requests and gives every other to
    /// `inner` (a [`socketio::SocketIo`], or a handler of one's own).
    pub fn serve_with<H: HttpHandler>(self, inner: H) -> WithUi<H> {
        WithUi { files: self, inner }
    }
}

/// The UI's files in front of another handler: see [`UiFiles::serve_with`].
#[derive(Clone, Debug)]
pub struct WithUi<H> {
    files: UiFiles,
    inner: H,
}

impl<H: HttpHandler> HttpHandler for WithUi<H> {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        match self.files.answer(&request) {
            Some(reply) => Box::pin(async move { reply }),
            None => self.inner.call(request),
        }
    }

    fn header_timeout(&self) -> std::time::Duration {
        self.inner.header_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> hyper::Request<()> {
        hyper::Request::get(path).body(()).unwrap()
    }

    #[test]
    fn only_the_files_read_are_served_under_the_mount() {
        let dir = std::env::temp_dir().join(format!("admin-ui-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("js")).unwrap();
        std::fs::write(dir.join("index.html"), "<html>").unwrap();
        std::fs::write(dir.join("js/app.js"), "app()").unwrap();
        let files = UiFiles::load(&dir).unwrap().mount("/ui");
        std::fs::remove_dir_all(&dir).unwrap();
        let index = files.answer(&request("/ui/")).unwrap();
        assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
        let app = files.answer(&request("/ui/js/app.js")).unwrap();
        assert_eq!(
            app.headers()["content-type"],
            "application/javascript; charset=utf-8"
        );
        let redirect = files.answer(&request("/ui")).unwrap();
        assert_eq!(redirect.status(), 301);
        assert_eq!(redirect.headers()["location"], "/ui/");
        assert!(files.answer(&request("/ui/../Cargo.toml")).is_none());
        assert!(files.answer(&request("/ui/missing.js")).is_none());
        assert!(files.answer(&request("/socket.io/")).is_none());
        assert!(UiFiles::load(std::env::temp_dir().join("no-such-admin-ui")).is_err());
    }
}
