//! Who may use the admin namespace: nobody checked ([`Auth::None`]), or a
//! username and a password checked against a bcrypt hash, as Node's
//! `instrument({ auth: { type: "basic", … } })` does. A client that logged
//! in gets a session id (the `session` event) and reconnects with it
//! instead of its password.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::AdminError;

/// How the admin namespace is protected.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// Anyone who can reach the server may use the UI (Node's
    /// `auth: false`): for a machine of one's own only.
    None,
    /// A username and the bcrypt hash of the password (Node's `auth: {
    /// type: "basic", username, password }`); see [`Auth::basic`].
    Basic {
        /// The username.
        username: String,
        /// The password's bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
        password_hash: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

impl Auth {
    /// Basic authentication: `username`, and a password whose bcrypt hash is
    /// `password_hash` (make one with `htpasswd -nbBC 10 "" secret`, or
    /// Node's `bcryptjs.hashSync(secret, 10)`).
    ///
    /// ```
    /// use admin_ui::Auth;
    /// // "changeit", as in the Admin UI's README.
    /// let auth = Auth::basic("admin", "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS");
    /// ```
    pub fn basic(username: impl Into<String>, password_hash: impl Into<String>) -> Auth {
        Auth::Basic {
            username: username.into(),
            password_hash: password_hash.into(),
        }
    }
}

/// How long a session id lets a client back in without its password
/// (Node's `RedisStore` default; its in-memory store never forgets).
const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How many session ids are remembered; the oldest go first (Node's
/// in-memory store grows with every login).
const MAX_SESSIONS: usize = 1024;

/// Password checks running at once: each costs bcrypt's work factor in
/// CPU, and beyond this a login is refused at once rather than queued.
const MAX_CHECKS: usize = 4;

/// What a client sends as its CONNECT auth.
#[derive(Deserialize, Default)]
struct Credentials {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The checker of admin logins.
pub(crate) struct Gate {
    auth: Auth,
    sessions: Mutex<VecDeque<(String, Instant)>>,
    checking: Arc<AtomicUsize>,
}

/// What a login came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// In; with a new session id to give the client, after a password.
    Admitted(Option<String>),
    Refused,
}

impl Gate {
    /// Checks the hash once, as Node does at `instrument()`.
    pub(crate) fn new(auth: Auth) -> Result<Gate, AdminError> {
        if let Auth::Basic { password_hash, .. } = &auth {
            password_hash
                .parse::<bcrypt::HashParts>()
                .map_err(|_| AdminError::InvalidHash)?;
        }
        Ok(Gate {
            auth,
            sessions: Mutex::new(VecDeque::new()),
            checking: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Checks a CONNECT's auth (its JSON). bcrypt runs on a thread of its
    /// own, so the server's tasks never wait for it.
    pub(crate) async fn check(&self, auth_json: &str) -> Outcome {
        let Auth::Basic {
            username,
            password_hash,
        } = &self.auth
        else {
            return Outcome::Admitted(None);
        };
        let credentials: Credentials = serde_json::from_str(auth_json).unwrap_or_default();
        if let Some(id) = &credentials.session_id {
            if self.knows(id) {
                return Outcome::Admitted(None);
            }
        }
        let (Some(name), Some(password)) = (credentials.username, credentials.password) else {
            return Outcome::Refused;
        };
        if name != *username {
            return Outcome::Refused;
        }
        if !self.verify(password, password_hash.clone()).await {
            return Outcome::Refused;
        }
        let id = new_session_id();
        self.remember(id.clone());
        Outcome::Admitted(Some(id))
    }

    async fn verify(&self, password: String, hash: String) -> bool {
        if self.checking.fetch_add(1, Ordering::AcqRel) >= MAX_CHECKS {
            self.checking.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("too many admin logins at once; one was refused");
            return false;
        }
        let (reply, answer) = futures_channel::oneshot::channel();
        let checking = self.checking.clone();
        let spawned = std::thread::Builder::new()
            .name("admin-bcrypt".into())
            .spawn(move || {
                let matches = bcrypt::verify(password, &hash).unwrap_or(false);
                checking.fetch_sub(1, Ordering::AcqRel);
                let _ = reply.send(matches);
            });
        if spawned.is_err() {
            self.checking.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        answer.await.unwrap_or(false)
    }

    fn knows(&self, id: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while sessions
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > SESSION_LIFETIME)
        {
            sessions.pop_front();
        }
        sessions.iter().any(|(known, _)| known == id)
    }

    fn remember(&self, id: String) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() == MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back((id, Instant::now()));
    }
}

/// 8 random bytes in hex, as Node's `randomBytes(8).toString("hex")`.
fn new_session_id() -> String {
    let mut bytes = [0u8; 8];
    // bcrypt's salt source, the OS's CSPRNG.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "changeit", hashed by bcryptjs (the Admin UI's README).
    const HASH: &str = "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS";

    #[tokio::test]
    async fn passwords_then_session_ids_let_admins_in() {
        let gate = Gate::new(Auth::basic("admin", HASH)).unwrap();
        let wrong = gate
            .check(r#"{"username":"admin","password":"nope"}"#)
            .await;
        assert_eq!(wrong, Outcome::Refused);
        assert_eq!(
            gate.check(r#"{"username":"root","password":"changeit"}"#)
                .await,
            Outcome::Refused
        );
        assert_eq!(gate.check("{}").await, Outcome::Refused);
        let Outcome::Admitted(Some(id)) = gate
            .check(r#"{"username":"admin","password":"changeit"}"#)
            .await
        else {
            panic!("the right password was refused");
        };
        assert_eq!(id.len(), 16);
        let again = format!(r#"{{"sessionId":"{id}"}}"#);
        assert_eq!(gate.check(&again).await, Outcome::Admitted(None));
        assert_eq!(
            gate.check(r#"{"sessionId":"0000000000000000"}"#).await,
            Outcome::Refused
        );
    }

    #[test]
    fn a_hash_that_is_not_bcrypt_is_refused_at_once() {
        assert!(matches!(
            Gate::new(Auth::basic("admin", "changeit")),
            Err(AdminError::InvalidHash)
        ));
        // No auth at all admits everyone.
        let open = Gate::new(Auth::None).unwrap();
        assert_eq!(
            futures_util::FutureExt::now_or_never(open.check("{}")),
            Some(Outcome::Admitted(None))
        );
        // `$2y$` (PHP's) is bcrypt too.
        assert!(Gate::new(Auth::basic("a", HASH.replacen("$2b$", "$2y$", 1))).is_ok());
    }
}
