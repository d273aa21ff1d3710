//! Where the adapter finds Redis: one server, a Sentinel group that names
//! the current master, or a Redis Cluster; with TLS and ACL credentials.
//! [`RedisTarget`] is what users build; [`Endpoint`] is what the broker
//! connects through, made once from it.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    ProtocolVersion, RedisFuture, TlsCertificates, TlsMode, Value,
};

use crate::RedisAdapterError;

/// Where Redis is and how to log in: one server ([`RedisTarget::url`]), the
/// master a Sentinel group names ([`RedisTarget::sentinel`]), or a Redis
/// Cluster ([`RedisTarget::cluster`]). TLS is on where the URLs say
/// `rediss://`; it trusts the platform's root certificates unless
/// [`RedisTarget::root_certificates`] gives others.
///
/// Pass it (or a URL string) to [`RedisAdapterFactory::new`](crate::RedisAdapterFactory::new).
///
/// ```no_run
/// use adapter_redis::RedisTarget;
/// # fn run(ca_pem: Vec<u8>, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<(), adapter_redis::RedisAdapterError> {
/// // Managed Redis: TLS, an ACL user.
/// let managed = RedisTarget::url("rediss://app:secret@redis.example.com:6380")?;
/// // High availability: whichever server the sentinels name master.
/// let sentinel = RedisTarget::sentinel(["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"], "mymaster")?
///     .credentials(Some("app"), "secret");
/// // A cluster, over TLS with a private CA and a client certificate.
/// let cluster = RedisTarget::cluster(["rediss://10.0.1.1:6379", "rediss://10.0.1.2:6379"])?
///     .root_certificates(ca_pem)
///     .client_certificate(cert_pem, key_pem);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTarget {
    kind: Kind,
    root_certificates: Option<Vec<u8>>,
    client_certificate: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone)]
enum Kind {
    Node(ConnectionInfo),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        master: String,
        username: Option<String>,
        password: Option<String>,
    },
    Cluster(Vec<ConnectionInfo>),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses only: no credentials, no keys.
        let addresses = |infos: &[ConnectionInfo]| -> Vec<String> {
            infos.iter().map(|info| info.addr().to_string()).collect()
        };
        match &self.kind {
            Kind::Node(info) => f
                .debug_tuple("Node")
                .field(&info.addr().to_string())
                .finish(),
            Kind::Sentinel {
                sentinels, master, ..
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", &addresses(sentinels))
                .field("master", master)
                .finish(),
            Kind::Cluster(nodes) => f.debug_tuple("Cluster").field(&addresses(nodes)).finish(),
        }
    }
}

/// Whether `info` says TLS (`rediss://`), and with which checks.
fn tls_mode(info: &ConnectionInfo) -> Option<TlsMode> {
    match info.addr() {
        ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        }),
        _ => None,
    }
}

fn parse(url: &str) -> Result<ConnectionInfo, RedisAdapterError> {
    Ok(url.into_connection_info()?)
}

fn parse_all<I, S>(urls: I) -> Result<Vec<ConnectionInfo>, RedisAdapterError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let infos = urls
        .into_iter()
        .map(|url| parse(url.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    if infos.is_empty() {
        return Err(RedisAdapterError::Target("no address given".into()));
    }
    Ok(infos)
}

impl RedisTarget {
    /// One Redis server: `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` for TLS.
    pub fn url(url: &str) -> Result<RedisTarget, RedisAdapterError> {
        Ok(RedisTarget::of(Kind::Node(parse(url)?)))
    }

    /// The master that the Sentinels at `sentinels` (URLs, `redis://host:26379`
    /// or `rediss://`, with the Sentinels' own credentials if they need
    /// any) name for `master`. Each (re)connection asks them again, so the
    /// adapter follows a failover. The master is reached with TLS when the
    /// Sentinel URLs use it, and logs in with [`RedisTarget::credentials`].
    pub fn sentinel<I, S>(sentinels: I, master: &str) -> Result<RedisTarget, RedisAdapterError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(RedisTarget::of(Kind::Sentinel {
            sentinels: parse_all(sentinels)?,
            master: master.to_owned(),
            username: None,
            password: None,
        }))
    }

    /// A Redis Cluster, found from any of `nodes` (URLs of some of its
    /// nodes; the others are discovered). Every node URL must use the same
    /// scheme and credentials.
    pub fn cluster<I, S>(nodes: I) -> Result<RedisTarget, RedisAdapterError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(RedisTarget::of(Kind::Cluster(parse_all(nodes)?)))
    }

    fn of(kind: Kind) -> RedisTarget {
        RedisTarget {
            kind,
            root_certificates: None,
            client_certificate: None,
        }
    }

    /// Logs in as ACL user `username` (or the `default` user: `None`) with
    /// `password`, instead of what the URLs say. With Sentinel, these are
    /// the master's credentials; the Sentinels' own come from their URLs.
    pub fn credentials(mut self, username: Option<&str>, password: &str) -> RedisTarget {
        let set = |info: ConnectionInfo| {
            let mut settings = info.redis_settings().clone().set_password(password);
            if let Some(username) = username {
                settings = settings.set_username(username);
            }
            info.set_redis_settings(settings)
        };
        self.kind = match self.kind {
            Kind::Node(info) => Kind::Node(set(info)),
            Kind::Cluster(nodes) => Kind::Cluster(nodes.into_iter().map(set).collect()),
            Kind::Sentinel {
                sentinels, master, ..
            } => Kind::Sentinel {
                sentinels,
                master,
                username: username.map(str::to_owned),
                password: Some(password.to_owned()),
            },
        };
        self
    }

    /// Trusts the certificate authorities in `pem` (PEM, one or more)
    /// instead of the platform's, for `rediss://` connections.
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> RedisTarget {
        self.root_certificates = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM chain and its PEM private
    /// key) on `rediss://` connections, for servers that require one
    /// (`tls-auth-clients yes`).
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> RedisTarget {
        self.client_certificate = Some((cert_pem.into(), key_pem.into()));
        self
    }

    fn certificates(&self) -> Option<TlsCertificates> {
        if self.root_certificates.is_none() && self.client_certificate.is_none() {
            return None;
        }
        Some(TlsCertificates {
            client_tls: self
                .client_certificate
                .clone()
                .map(|(client_cert, client_key)| ClientTlsConfig {
                    client_cert,
                    client_key,
                }),
            root_cert: self.root_certificates.clone(),
        })
    }

    /// What the broker connects through.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, RedisAdapterError> {
        let certificates = self.certificates();
        Ok(match &self.kind {
            Kind::Node(info) => Endpoint::Node(match certificates {
                Some(certificates) => redis::Client::build_with_tls(info.clone(), certificates)?,
                None => redis::Client::open(info.clone())?,
            }),
            Kind::Sentinel {
                sentinels,
                master,
                username,
                password,
            } => {
                let addrs = sentinels.iter().map(|info| info.addr().clone());
                let mut builder =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
                let first = &sentinels[0];
                if let Some(mode) = tls_mode(first) {
                    builder = builder
                        .set_client_to_sentinel_tls_mode(mode)
                        .set_client_to_redis_tls_mode(mode);
                }
                if let Some(username) = first.redis_settings().username() {
                    builder = builder.set_client_to_sentinel_username(username);
                }
                if let Some(password) = first.redis_settings().password() {
                    builder = builder.set_client_to_sentinel_password(password);
                }
                if let Some(username) = username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(certificates) = certificates {
                    builder = builder
                        .set_client_to_sentinel_certificates(certificates.clone())
                        .set_client_to_redis_certificates(certificates);
                }
                Endpoint::Sentinel(futures_util::lock::Mutex::new(builder.build()?))
            }
            Kind::Cluster(nodes) => {
                // Checked now, so a bad target fails here, not at first use.
                let endpoint = Endpoint::Cluster {
                    nodes: nodes.clone(),
                    certificates,
                };
                endpoint.cluster_builder(None, Duration::from_secs(1))?;
                endpoint
            }
        })
    }
}

/// The connections of one [`RedisTarget`].
pub(crate) enum Endpoint {
    Node(redis::Client),
    /// Asked for the master at each connection.
    Sentinel(futures_util::lock::Mutex<SentinelClient>),
    Cluster {
        nodes: Vec<ConnectionInfo>,
        certificates: Option<TlsCertificates>,
    },
}

impl Endpoint {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Endpoint::Cluster { .. })
    }

    /// The server to connect to now (not for a cluster).
    pub(crate) async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            Endpoint::Node(client) => Ok(client.clone()),
            Endpoint::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await,
            Endpoint::Cluster { .. } => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a cluster has no single server",
            ))),
        }
    }

    /// A cluster client: RESP3 and `push` when given (subscribers), with
    /// `timeout` for connecting and for each reply.
    pub(crate) fn cluster_builder(
        &self,
        push: Option<Push>,
        timeout: Duration,
    ) -> redis::RedisResult<ClusterClient> {
        let Endpoint::Cluster {
            nodes,
            certificates,
        } = self
        else {
            unreachable!("cluster_builder is only called for a cluster");
        };
        let mut builder = ClusterClientBuilder::new(nodes.clone())
            .connection_timeout(timeout)
            .response_timeout(timeout);
        if let Some(certificates) = certificates.clone() {
            builder = builder.certs(certificates);
        }
        if let Some(push) = push {
            builder = builder
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push);
        }
        builder.build()
    }

    /// A command connection.
    pub(crate) async fn commands(
        &self,
        config: &AsyncConnectionConfig,
        timeout: Duration,
    ) -> redis::RedisResult<Commands> {
        if self.is_cluster() {
            let client = self.cluster_builder(None, timeout)?;
            return Ok(Commands::Cluster(client.get_async_connection().await?));
        }
        let client = self.client().await?;
        Ok(Commands::Node(
            client
                .get_multiplexed_async_connection_with_config(config)
                .await?,
        ))
    }
}

/// A connection that only publishes, to a [`RedisTarget`]: made at the
/// first [`Publisher::publish`], and made again at the next one after a
/// failure (asking the Sentinels again, if any). Nothing is queued: a
/// publish that fails reports it. For emitters, which run no server.
pub struct Publisher {
    endpoint: Endpoint,
    timeout: Duration,
    connection: std::sync::Mutex<Option<Commands>>,
}

impl Publisher {
    /// A publisher to `target`; `timeout` bounds connecting and each reply.
    pub fn new(
        target: impl crate::IntoRedisTarget,
        timeout: Duration,
    ) -> Result<Publisher, RedisAdapterError> {
        Ok(Publisher {
            endpoint: target.into_target()?.endpoint()?,
            timeout,
            connection: std::sync::Mutex::new(None),
        })
    }

    /// `PUBLISH channel message`; the number of subscribers that got it.
    pub async fn publish(&self, channel: &str, message: &[u8]) -> redis::RedisResult<usize> {
        let cached = crate::lock(&self.connection).clone();
        let mut connection = match cached {
            Some(connection) => connection,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let connection = self.endpoint.commands(&config, self.timeout).await?;
                *crate::lock(&self.connection) = Some(connection.clone());
                connection
            }
        };
        let result = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async::<usize>(&mut connection)
            .await;
        if result.is_err() {
            crate::lock(&self.connection).take();
        }
        result
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

/// Where a subscriber's pushes go.
pub(crate) type Push =
    Box<dyn Fn(redis::PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync>;

/// A command connection to one server or to a cluster (which routes each
/// command to the node that owns its channel or key).
#[derive(Clone)]
pub(crate) enum Commands {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Node(connection) => connection.req_packed_command(cmd),
            Commands::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Node(connection) => connection.req_packed_commands(cmd, offset, count),
            Commands::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Node(connection) => connection.get_db(),
            Commands::Cluster(connection) => connection.get_db(),
        }
    }
}

/// TLS mode of the URL's address, for tests of the parsing.
#[cfg(test)]
fn tls_of(target: &RedisTarget) -> Option<TlsMode> {
    match &target.kind {
        Kind::Node(info) => tls_mode(info),
        Kind::Sentinel { sentinels, .. } => tls_mode(&sentinels[0]),
        Kind::Cluster(nodes) => tls_mode(&nodes[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_whether_tls_is_on() {
        let plain = RedisTarget::url("redis://127.0.0.1:6379").unwrap();
        assert_eq!(tls_of(&plain), None);
        let tls = RedisTarget::url("rediss://user:pw@127.0.0.1:6380").unwrap();
        assert_eq!(tls_of(&tls), Some(TlsMode::Secure));
        let cluster = RedisTarget::cluster(["rediss://a:1", "rediss://b:2"]).unwrap();
        assert_eq!(tls_of(&cluster), Some(TlsMode::Secure));
    }

    #[test]
    fn bad_targets_are_refused_up_front() {
        assert!(RedisTarget::url("http://127.0.0.1").is_err());
        assert!(RedisTarget::cluster(Vec::<&str>::new()).is_err());
        assert!(RedisTarget::sentinel(Vec::<&str>::new(), "m").is_err());
        // Mixed schemes among cluster nodes: refused when the endpoint is made.
        let mixed = RedisTarget::cluster(["redis://a:1", "rediss://b:2"]).unwrap();
        assert!(mixed.endpoint().is_err());
    }

    #[test]
    fn debug_shows_no_credentials() {
        let target = RedisTarget::url("redis://alice:hunter2@127.0.0.1:6379")
            .unwrap()
            .credentials(Some("bob"), "s3cret");
        let text = format!("{target:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1"), "{text}");
    }
}
