//! The engine's hooks, as Node's engine.io options and events: an
//! asynchronous `allow_request` refusing with its own message,
//! `connection_error` for every refused request, `generate_id`, the
//! sticky-session `cookie`, and the `initial_headers` / `headers` hooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use socketio::engine::{EngineConfig, EngineServer};
use socketio::{AllowRequest, ConnectionErrorHook, Cookie, GenerateId, HeadersHook};
use suite::raw::request_with_headers;
use suite::{within, TestRuntime};

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

/// The session id of a handshake's OPEN packet.
fn sid_of(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let handshake = engineio_proto::Handshake::from_json(&text[1..]).unwrap();
    handshake.sid.to_string()
}

/// An asynchronous check refuses with its own message; every refused
/// request (that one, an unknown session) reaches `connection_error`.
async fn allow_request_and_connection_error<R: TestRuntime>(rt: R) {
    within("the refusals", async {
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = errors.clone();
        let mut config = EngineConfig::default();
        config.allow_request = Some(AllowRequest::new_async(|handshake| {
            let token = handshake.query_param("token");
            async move {
                match token.as_deref() {
                    Some("let-me-in") => Ok(()),
                    Some("silent") => Err(String::new()),
                    _ => Err("bad token".to_owned()),
                }
            }
        }));
        config.on_connection_error = Some(ConnectionErrorHook::new(move |error| {
            seen.lock().unwrap().push(format!(
                "{} {} {:?} {:?}",
                error.code,
                error.message,
                error.context,
                error.request.query_param("token")
            ));
        }));
        let addr = rt.serve(EngineServer::new(rt, config, |_| {})).await;

        let nope = format!("{HANDSHAKE}&token=nope");
        let (status, _, body) =
            request_with_headers(rt, addr, "GET", &nope, &[], Bytes::new()).await;
        assert_eq!(status, 403);
        assert_eq!(&body[..], br#"{"code":4,"message":"bad token"}"#);
        let pass = format!("{HANDSHAKE}&token=let-me-in");
        let (status, _, body) =
            request_with_headers(rt, addr, "GET", &pass, &[], Bytes::new()).await;
        assert_eq!((status, body[0]), (200, b'0'));
        let unknown = format!("{HANDSHAKE}&sid=unknown");
        let (status, _, body) =
            request_with_headers(rt, addr, "GET", &unknown, &[], Bytes::new()).await;
        assert_eq!(status, 400);
        assert_eq!(&body[..], br#"{"code":1,"message":"Session ID unknown"}"#);

        // An empty refusal message: Node's own.
        let silent = format!("{HANDSHAKE}&token=silent");
        let (status, _, body) =
            request_with_headers(rt, addr, "GET", &silent, &[], Bytes::new()).await;
        assert_eq!(status, 403);
        assert_eq!(&body[..], br#"{"code":4,"message":"Forbidden"}"#);

        let errors = errors.lock().unwrap().clone();
        assert_eq!(
            errors,
            [
                r#"4 Forbidden Some("bad token") Some("nope")"#,
                r#"1 Session ID unknown None None"#,
                r#"4 Forbidden None Some("silent")"#,
            ]
        );
    })
    .await;
}

/// `generate_id` names sessions (an unusable id falls back to a random
/// one); the cookie carries the id; `initial_headers` reach the handshake
/// only, `headers` every response.
async fn ids_cookie_and_headers<R: TestRuntime>(rt: R) {
    within("the handshakes", async {
        let count = Arc::new(AtomicUsize::new(0));
        let mut config = EngineConfig::default();
        config.generate_id = Some(GenerateId::new(move |_| {
            match count.fetch_add(1, Ordering::SeqCst) {
                // The second time, the id is taken by the live first session.
                0 | 1 => "custom-1".to_owned(),
                2 => "not a valid id".to_owned(),
                3 => String::new(),
                _ => "x".repeat(65),
            }
        }));
        config.cookie = Some(Cookie::default());
        config.initial_headers = Some(HeadersHook::new(|response, request| {
            let echoed = request.get("x-trace").cloned();
            response.insert("x-initial", "1".parse().unwrap());
            if let Some(trace) = echoed {
                response.insert("x-trace", trace);
            }
        }));
        config.headers = Some(HeadersHook::new(|response, _| {
            response.insert("x-every", "1".parse().unwrap());
        }));
        let addr = rt.serve(EngineServer::new(rt, config, |_| {})).await;

        let (status, headers, body) = request_with_headers(
            rt,
            addr,
            "GET",
            HANDSHAKE,
            &[("x-trace", "t1")],
            Bytes::new(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(sid_of(&body), "custom-1");
        assert_eq!(
            headers["set-cookie"],
            "io=custom-1; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(headers["x-initial"], "1");
        assert_eq!(headers["x-trace"], "t1");
        assert_eq!(headers["x-every"], "1");

        // The next ids are taken, not URL-safe, empty, too long: a random
        // one instead each time.
        for _ in 0..4 {
            let (_, headers, body) =
                request_with_headers(rt, addr, "GET", HANDSHAKE, &[], Bytes::new()).await;
            let sid = sid_of(&body);
            assert_eq!(sid.len(), 22, "{sid}");
            assert_eq!(
                headers["set-cookie"],
                format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str()
            );
        }

        // A request of the session: `headers` only.
        let (status, headers, _) = request_with_headers(
            rt,
            addr,
            "POST",
            &format!("{HANDSHAKE}&sid=custom-1"),
            &[],
            Bytes::from_static(b"4hello"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-every"], "1");
        assert!(!headers.contains_key("x-initial"));
        assert!(!headers.contains_key("set-cookie"));

        // A refusal gets no hook's headers, as in Node.
        let unknown = format!("{HANDSHAKE}&sid=unknown");
        let (status, headers, _) =
            request_with_headers(rt, addr, "GET", &unknown, &[], Bytes::new()).await;
        assert_eq!(status, 400);
        assert!(!headers.contains_key("x-every"));
    })
    .await;
}

/// `config.engine.cors`, end to end: a preflight and a handshake from an
/// allowed origin get Node's headers, another origin gets none.
async fn cors_headers<R: TestRuntime>(rt: R) {
    within("the cors answers", async {
        let mut config = EngineConfig::default();
        config.cors = Some(socketio::Cors::origins(["https://app.example"]).with_credentials());
        let addr = rt.serve(EngineServer::new(rt, config, |_| {})).await;
        let origin = [("origin", "https://app.example")];
        let (status, headers, _) =
            request_with_headers(rt, addr, "OPTIONS", HANDSHAKE, &origin, Bytes::new()).await;
        assert_eq!(status, 204);
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
        let (status, headers, _) =
            request_with_headers(rt, addr, "GET", HANDSHAKE, &origin, Bytes::new()).await;
        assert_eq!(status, 200);
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        let other = [("origin", "https://evil.example")];
        let (_, headers, _) =
            request_with_headers(rt, addr, "GET", HANDSHAKE, &other, Bytes::new()).await;
        assert!(!headers.contains_key("access-control-allow-origin"));
    })
    .await;
}

suite::on_each_runtime!(
    allow_request_and_connection_error,
    ids_cookie_and_headers,
    cors_headers,
);
