//! The long-polling scenario: `echo` round trips over HTTP, as the official
//! client does before (or instead of) upgrading: a GET always waiting for
//! the server's packets, each message POSTed beside it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::{self, STEP_TIMEOUT};
use crate::probe::Probe;
use crate::scenario::{join_all, Outcome, Settings, Stats};
use crate::BenchError;

/// Engine.IO's packet separator in a polling payload.
const SEPARATOR: char = '\u{1e}';

/// One HTTP/1.1 keep-alive connection to the server.
struct Http {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Http {
    async fn open(addr: SocketAddr) -> Result<Http, BenchError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(connection);
        Ok(Http { addr, sender })
    }

    /// Sends one request, returns the body of a 200 reply as text.
    async fn request(
        &mut self,
        method: &str,
        query: &str,
        body: String,
    ) -> Result<String, BenchError> {
        let request = Request::builder()
            .method(method)
            .uri(format!("/socket.io/?EIO=4&transport=polling{query}"))
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| BenchError::Protocol(error.to_string()))?;
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(STEP_TIMEOUT, exchange)
            .await
            .map_err(|_| BenchError::Protocol("the server stopped answering".into()))??;
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| BenchError::Protocol("a polling reply is not UTF-8".into()))?;
        if !status.is_success() {
            return Err(BenchError::Protocol(format!(
                "{method} answered {status}: {text}"
            )));
        }
        Ok(text)
    }
}

/// A polling session on `/`: one connection for the waiting GET, one for
/// POSTs, as a browser would use.
struct Session {
    query: String,
    get: Http,
    post: Http,
}

impl Session {
    async fn open(addr: SocketAddr) -> Result<Session, BenchError> {
        let mut get = Http::open(addr).await?;
        let open = get.request("GET", "", String::new()).await?;
        let sid = open
            .strip_prefix("0{")
            .and_then(|rest| rest.split_once("\"sid\":\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(sid, _)| sid.to_owned())
            .ok_or_else(|| {
                BenchError::Protocol(format!("expected an open packet, got {open:?}"))
            })?;
        let mut session = Session {
            query: format!("&sid={sid}"),
            get,
            post: Http::open(addr).await?,
        };
        session.post("40".into()).await?;
        loop {
            let packets = session.poll().await?;
            if packets.iter().any(|p| p.starts_with("40{")) {
                return Ok(session);
            }
        }
    }

    async fn post(&mut self, body: String) -> Result<(), BenchError> {
        ensure_ok(self.post.request("POST", &self.query, body).await?)
    }

    /// One GET: the packets it brought; pings are answered on the way.
    async fn poll(&mut self) -> Result<Vec<String>, BenchError> {
        let body = self.get.request("GET", &self.query, String::new()).await?;
        let mut packets = Vec::new();
        for packet in body.split(SEPARATOR) {
            if packet == "2" {
                self.post("3".into()).await?;
            } else {
                packets.push(packet.to_owned());
            }
        }
        Ok(packets)
    }
}

/// Runs the polling scenario: each client has one `echo` in flight.
pub(crate) async fn run(
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
) -> Result<Outcome, BenchError> {
    let mut sessions = Vec::with_capacity(settings.polling_clients);
    for _ in 0..settings.polling_clients {
        sessions.push(Session::open(addr).await?);
    }
    let stats = Stats::new();
    let tasks = sessions
        .into_iter()
        .enumerate()
        .map(|(index, session)| {
            tokio::task::spawn_local(echo_client(session, index, stats.clone()))
        })
        .collect();
    let outcome = stats.window(probe, settings).await;
    join_all(tasks).await?;
    outcome
}

async fn echo_client(
    mut session: Session,
    index: usize,
    stats: Rc<Stats>,
) -> Result<(), BenchError> {
    let mut seq = 0u64;
    while stats.sending() {
        let expected = client::event("echo", &client::argument(index, seq));
        let sent_at = Instant::now();
        // The GET goes out beside the POST, as the client's long poll does.
        let Session { query, get, post } = &mut session;
        let (posted, polled) = tokio::join!(
            post.request("POST", query, expected.clone()),
            get.request("GET", query, String::new()),
        );
        ensure_ok(posted?)?;
        let mut body = polled?;
        loop {
            let mut echoed = false;
            for packet in body.split(SEPARATOR) {
                if packet == "2" {
                    session.post("3".into()).await?;
                } else if packet == expected && !echoed {
                    echoed = true;
                } else {
                    return Err(BenchError::Protocol(format!(
                        "unexpected packet {packet:?}"
                    )));
                }
            }
            if echoed {
                break;
            }
            body = session
                .get
                .request("GET", &session.query, String::new())
                .await?;
        }
        stats.record(sent_at.elapsed());
        seq += 1;
    }
    Ok(())
}

fn ensure_ok(reply: String) -> Result<(), BenchError> {
    if reply == "ok" {
        Ok(())
    } else {
        Err(BenchError::Protocol(format!("a POST answered {reply:?}")))
    }
}
