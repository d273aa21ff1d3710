//! Real `redis-server`s (Debian's package; `scripts/test` installs it) for
//! the Redis adapter suites, on free 127.0.0.1 ports with nothing
//! persisted, killed when dropped:
//! - [`RedisServer`]: one server, plain or TLS-only with an ACL user,
//!   stoppable and restartable on its port to play a broker that goes
//!   away and comes back;
//! - [`RedisCluster`]: a Redis Cluster of three masters;
//! - [`RedisSentinel`]: a master, its replica and a Sentinel watching
//!   them, whose master can be killed to make the Sentinel fail over.
//!
//! Every server is checked with `redis-cli` (Debian's redis-tools, which
//! redis-server depends on).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A directory of this test's own (config files, certificates), removed
/// when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("suite-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free port on 127.0.0.1 whose cluster bus port (`+ 10000`) is free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Certificates made for one test: a CA, a server certificate for
/// 127.0.0.1 and a client certificate, all signed by the CA, in PEM files.
pub struct TlsFiles {
    scratch: Scratch,
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The client certificate (PEM).
    pub client_cert_pem: String,
    /// The client certificate's private key (PEM).
    pub client_key_pem: String,
}

impl TlsFiles {
    /// Makes them.
    pub fn new() -> TlsFiles {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "suite test CA");
        let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().expect("a key");
            let params = CertificateParams::new(names).expect("params");
            let cert = params.signed_by(&key, &issuer).expect("a certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]);
        let (client_cert_pem, client_key_pem) = leaf(vec!["client".to_owned()]);
        let scratch = Scratch::new("tls");
        let files = TlsFiles {
            scratch,
            ca_pem: ca.pem(),
            client_cert_pem,
            client_key_pem,
        };
        for (name, content) in [
            ("ca.pem", files.ca_pem.as_str()),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("client.pem", &files.client_cert_pem),
            ("client.key", &files.client_key_pem),
        ] {
            std::fs::write(files.path(name), content).expect("writing a certificate");
        }
        files
    }

    /// One of its files: `ca.pem`, `server.pem`, `server.key`,
    /// `client.pem`, `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.0.join(name)
    }

    /// The directory of its files.
    pub fn dir(&self) -> &std::path::Path {
        &self.scratch.0
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles::new()
    }
}

/// An ACL user the TLS server lets in (its `default` user is off).
pub const ACL_USER: (&str, &str) = ("socketio", "s3cret-pass");

/// The commands that user may run: what docs/cluster.md gives for the
/// adapter's (and the Node adapter's) ACL user.
pub const ACL_COMMANDS: &str =
    "-@all +@pubsub +@stream +get +set +del +multi +exec +ping +hello +auth +client +info";

/// A `redis-server` process of this test.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its arguments (a config file first, if any), the same at each
    /// (re)start.
    args: Vec<String>,
    /// What `redis-cli` needs to reach it, after `-p PORT`.
    cli: Vec<String>,
    /// `redis` or `rediss`, and `user:password@` or nothing.
    scheme: &'static str,
    userinfo: String,
    /// Its working directory: whatever it writes (a replica's or a
    /// replicated master's dump) stays out of the checkout.
    scratch: Scratch,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    pub async fn start() -> RedisServer {
        let port = free_port();
        let args = vec!["--port".into(), port.to_string()];
        RedisServer::start_with(port, args, Vec::new(), "redis", String::new()).await
    }

    /// Starts one that listens only with TLS (the certificates of `tls`;
    /// clients must present a certificate the CA signed) and only lets in
    /// [`ACL_USER`].
    pub async fn start_tls(tls: &TlsFiles) -> RedisServer {
        let (user, password) = ACL_USER;
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            tls.arg("server.pem"),
            "--tls-key-file".into(),
            tls.arg("server.key"),
            "--tls-ca-cert-file".into(),
            tls.arg("ca.pem"),
            "--tls-auth-clients".into(),
            "yes".into(),
            "--user".into(),
            "default".into(),
            "off".into(),
            "--user".into(),
            user.into(),
            "on".into(),
            format!(">{password}"),
            "~*".into(),
            "&*".into(),
        ];
        // Only the commands docs/cluster.md says the adapter needs (the
        // tests' channel and key names vary, so those stay open here).
        args.extend(ACL_COMMANDS.split(' ').map(str::to_owned));
        let cli = vec![
            "--tls".into(),
            "--cacert".into(),
            tls.arg("ca.pem"),
            "--cert".into(),
            tls.arg("client.pem"),
            "--key".into(),
            tls.arg("client.key"),
            "--user".into(),
            user.into(),
            "--pass".into(),
            password.into(),
            "--no-auth-warning".into(),
        ];
        let userinfo = format!("{user}:{password}@");
        RedisServer::start_with(port, args, cli, "rediss", userinfo).await
    }

    async fn start_with(
        port: u16,
        args: Vec<String>,
        cli: Vec<String>,
        scheme: &'static str,
        userinfo: String,
    ) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            args,
            cli,
            scheme,
            userinfo,
            scratch: Scratch::new("redis"),
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT` (`rediss://user:password@…` for TLS).
    pub fn url(&self) -> String {
        format!("{}://{}127.0.0.1:{}", self.scheme, self.userinfo, self.port)
    }

    /// Kills it and waits until it is gone: every connection to it drops.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port and waits until it answers `PING`.
    pub async fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(&self.args)
            .arg("--dir")
            .arg(&self.scratch.0)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command.spawn().expect(
            "cannot start redis-server (the Redis adapter tests need it on PATH: \
             Debian's redis-server package; scripts/test installs it)",
        );
        self.child = Some(child);
        self.wait_for_pong().await;
    }

    async fn wait_for_pong(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["PING"]).await.trim() == "PONG" {
                return;
            }
            crate::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        );
    }

    /// Runs `redis-cli` against it with `args`; its standard output.
    pub async fn cli(&self, args: &[&str]) -> String {
        cli(self.port, &self.cli, args).await
    }

    /// How many connections subscribe to shard channel `channel`
    /// (`PUBSUB SHARDNUMSUB`).
    pub async fn shard_subscribers(&self, channel: &str) -> usize {
        let text = self.cli(&["PUBSUB", "SHARDNUMSUB", channel]).await;
        // "channel\ncount\n"
        text.lines()
            .nth(1)
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected SHARDNUMSUB reply: {text:?}"))
    }
}

/// `redis-cli -h 127.0.0.1 -p PORT [connection] [args]`; its standard output
/// (empty when it could not run).
async fn cli(port: u16, connection: &[String], args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(connection)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let output = smol::unblock(move || command.output())
        .await
        .expect("redis-cli (Debian's redis-tools, which redis-server depends on)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three masters (no replicas), every slot assigned.
pub struct RedisCluster {
    /// Its nodes.
    pub nodes: Vec<RedisServer>,
    _scratch: Scratch,
}

impl RedisCluster {
    /// Starts three nodes, creates the cluster, and waits until every node
    /// says it is ok.
    pub async fn start() -> RedisCluster {
        let scratch = Scratch::new("cluster");
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let args = vec![
                "--port".into(),
                port.to_string(),
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                scratch
                    .0
                    .join(format!("nodes-{port}.conf"))
                    .display()
                    .to_string(),
                "--cluster-node-timeout".into(),
                "2000".into(),
            ];
            nodes.push(
                RedisServer::start_with(port, args, Vec::new(), "redis", String::new()).await,
            );
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let port = nodes[0].port;
        let output = cli(port, &[], &create).await;
        let cluster = RedisCluster {
            nodes,
            _scratch: scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ok = true;
            for node in &cluster.nodes {
                let info = node.cli(&["CLUSTER", "INFO"]).await;
                ok &= info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3");
            }
            if ok {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not come up within 20 s; redis-cli --cluster create said:\n{output}"
            );
            crate::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `redis://127.0.0.1:PORT` of each node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// A master, one replica of it, and a Sentinel that watches the master as
/// [`RedisSentinel::MASTER`] (quorum 1, down after 1 s).
pub struct RedisSentinel {
    /// The master it started with.
    pub master: RedisServer,
    /// The replica, promoted when the master is gone.
    pub replica: RedisServer,
    /// The Sentinel.
    pub sentinel: RedisServer,
    _scratch: Scratch,
}

impl RedisSentinel {
    /// The name the Sentinel knows the master by.
    pub const MASTER: &'static str = "suitemaster";

    /// Starts them and waits until the Sentinel knows the replica.
    pub async fn start() -> RedisSentinel {
        let scratch = Scratch::new("sentinel");
        let master = RedisServer::start().await;
        let port = free_port();
        let replica_args = vec![
            "--port".into(),
            port.to_string(),
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ];
        let replica =
            RedisServer::start_with(port, replica_args, Vec::new(), "redis", String::new()).await;
        within_secs(20, "the replica to sync", || async {
            replica
                .cli(&["INFO", "replication"])
                .await
                .contains("master_link_status:up")
        })
        .await;
        let port = free_port();
        let config = scratch.0.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {name} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 10000\n",
                dir = scratch.0.display(),
                name = RedisSentinel::MASTER,
                master = master.port,
            ),
        )
        .expect("writing sentinel.conf");
        let sentinel_args = vec![config.display().to_string(), "--sentinel".into()];
        let sentinel =
            RedisServer::start_with(port, sentinel_args, Vec::new(), "redis", String::new()).await;
        within_secs(30, "the sentinel to see the replica", || async {
            let replicas = sentinel
                .cli(&["SENTINEL", "REPLICAS", RedisSentinel::MASTER])
                .await;
            replicas.contains(&replica.port.to_string())
        })
        .await;
        RedisSentinel {
            master,
            replica,
            sentinel,
            _scratch: scratch,
        }
    }

    /// `redis://127.0.0.1:PORT` of the Sentinel.
    pub fn sentinel_url(&self) -> String {
        self.sentinel.url()
    }

    /// The port of the server the Sentinel names master now.
    pub async fn master_port(&self) -> Option<u16> {
        let reply = self
            .sentinel
            .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", RedisSentinel::MASTER])
            .await;
        reply
            .lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
    }

    /// Kills the master and waits until the Sentinel names the replica
    /// master instead, and the replica says it is one.
    pub async fn fail_over(&mut self) {
        self.master.stop();
        let replica = self.replica.port;
        within_secs(30, "the sentinel to promote the replica", || async {
            self.master_port().await == Some(replica)
                && self.replica.cli(&["ROLE"]).await.starts_with("master")
        })
        .await;
    }
}

/// Asks `check` every 50 ms until it says yes; panics after `secs` seconds.
async fn within_secs<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        crate::sleep(Duration::from_millis(50)).await;
    }
}
