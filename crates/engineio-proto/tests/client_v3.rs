//! The client machine speaking Engine.IO v3 to a socket.io 2.x server, fed
//! the bytes Node's v3 server writes, on a virtual clock: the query asks
//! for base64 payloads, payloads are length-prefixed, the client pings and
//! times out without a PONG, binary frames carry their type byte.

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{Client, ClientConfig, HttpMethod, Input, Output};
use engineio_proto::{
    CloseReason, Frame, Instant, Message, Protocol, RequestId, Str, Transports, WsId,
};

const T0: Instant = Instant::from_millis(1_000);
const OPEN: &str = r#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200}"#;

fn client(transports: Transports) -> Client {
    let mut config = ClientConfig::default();
    config.protocol = Protocol::V3;
    config.transports = transports;
    let mut client = Client::new(config);
    client.connect(T0).unwrap();
    client
}

fn drain(client: &mut Client) -> Vec<Output> {
    std::iter::from_fn(|| client.poll_output()).collect()
}

/// The request of an `HttpRequest` output, with its method, query and body.
fn request(output: &Output) -> (RequestId, HttpMethod, String, Bytes) {
    match output {
        Output::HttpRequest {
            request,
            method,
            query,
            body,
        } => (*request, *method, query.to_string(), body.clone()),
        other => panic!("not a request: {other:?}"),
    }
}

fn respond(client: &mut Client, at: Instant, request: RequestId, body: &str) -> Vec<Output> {
    client.handle_input(
        at,
        Input::HttpResponse {
            request,
            status: 200,
            body: Bytes::copy_from_slice(body.as_bytes()),
        },
    );
    drain(client)
}

#[test]
fn over_polling_the_client_pings_and_waits_for_the_pong() {
    let mut client = client(Transports::POLLING);
    let outputs = drain(&mut client);
    let (handshake, method, query, _) = request(&outputs[0]);
    assert_eq!(
        (method, query.as_str()),
        (HttpMethod::Get, "EIO=3&transport=polling&b64=1")
    );
    // The OPEN, and the main namespace's CONNECT a 2.x server sends at once.
    let body = format!("{}:{OPEN}2:40", OPEN.len());
    let outputs = respond(&mut client, T0, handshake, &body);
    assert!(matches!(outputs[0], Output::Opened(_)), "{outputs:?}");
    assert_eq!(outputs[1], Output::Message(Message::from("0")));
    let (get, _, query, _) = request(&outputs[2]);
    assert_eq!(query, "EIO=3&transport=polling&b64=1&sid=abc");

    // pingInterval later, a PING goes out in a POST.
    let ping_at = T0 + Duration::from_millis(300);
    assert_eq!(client.poll_timeout(), Some(ping_at));
    client.handle_input(ping_at, Input::Timeout);
    let outputs = drain(&mut client);
    let (post, method, _, body) = request(&outputs[0]);
    assert_eq!((method, &body[..]), (HttpMethod::Post, &b"1:2"[..]));
    respond(&mut client, ping_at, post, "ok");
    // The PONG comes in time: the next PING is pingInterval later.
    let pong_at = ping_at + Duration::from_millis(150);
    let outputs = respond(&mut client, pong_at, get, "1:3");
    let (get, _, _, _) = request(&outputs[0]);
    assert_eq!(
        client.poll_timeout(),
        Some(pong_at + Duration::from_millis(300))
    );

    // The next PING gets no PONG: pingTimeout later the client gives up.
    let ping_at = pong_at + Duration::from_millis(300);
    client.handle_input(ping_at, Input::Timeout);
    drain(&mut client);
    // A message meanwhile does not excuse the missing PONG.
    respond(
        &mut client,
        ping_at + Duration::from_millis(100),
        get,
        "2:4x",
    );
    client.handle_input(ping_at + Duration::from_millis(200), Input::Timeout);
    assert!(drain(&mut client).contains(&Output::Closed(CloseReason::PingTimeout)));
}

#[test]
fn over_websocket_binary_frames_carry_their_type_byte() {
    let mut client = client(Transports::WEBSOCKET);
    let outputs = drain(&mut client);
    let Output::WsConnect { ws, query } = &outputs[0] else {
        panic!("{outputs:?}");
    };
    assert_eq!(query.to_string(), "EIO=3&transport=websocket&b64=1");
    let ws: WsId = *ws;
    client.handle_input(T0, Input::WsOpen(ws));
    client.handle_input(
        T0,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(OPEN)),
        },
    );
    drain(&mut client);
    client
        .send(T0, Message::Binary(Bytes::from_static(&[7, 8])))
        .unwrap();
    assert_eq!(
        drain(&mut client),
        [Output::WsSend {
            ws,
            frame: Frame::Binary(Bytes::from_static(&[4, 7, 8])),
            compress: true,
        }]
    );
    client.handle_input(
        T0,
        Input::WsFrame {
            ws,
            frame: Frame::Binary(Bytes::from_static(&[4, 9])),
        },
    );
    assert_eq!(
        drain(&mut client),
        [Output::Message(Message::Binary(Bytes::from_static(&[9])))]
    );
    // The PING goes as a text frame.
    client.handle_input(T0 + Duration::from_millis(300), Input::Timeout);
    assert_eq!(
        drain(&mut client),
        [Output::WsSend {
            ws,
            frame: Frame::Text(Str::from("2")),
            compress: true,
        }]
    );
}
