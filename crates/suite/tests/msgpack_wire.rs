//! Our msgpack parser against the official `socket.io-msgpack-parser`
//! (npm, pinned; `interop/msgpack-wire.mjs`), side by side: for packets of
//! every kind, as Node's server builds them, the official encoder writes
//! exactly our bytes, and the official decoder reads our bytes back as the
//! same packet. (The other direction, Node's bytes read by us, is in
//! `socketio-proto`'s unit tests and in every msgpack interop run.)

use bytes::Bytes;
use engineio_proto::{Message, Str};
use socketio::adapter::{Packet, PacketKind};
use socketio::{MsgpackParser, SharedParser};

/// A packet, and the same packet as the object Node's server builds (keys
/// in its order, `{"$bin": hex}` for a Buffer). One known difference is
/// left out: a whole number of 2^63 or more (`1e300`) notepack writes as a
/// uint64 whose high word overflowed (`1e300` becomes 0); ours stays the
/// float64 it is.
fn cases() -> Vec<(Packet, &'static str)> {
    let packet =
        |kind, nsp: &str, id: Option<u64>, data: Option<&str>, attachments: Vec<Bytes>| Packet {
            id: id.map(socketio::adapter::AckId),
            attachments,
            ..Packet::new(kind, Str::from(nsp), data.map(Str::from))
        };
    let long = "x".repeat(300);
    let long: &'static str = Box::leak(format!(r#"["long","{long}"]"#).into_boxed_str());
    let long_spec: &'static str = Box::leak(
        format!(
            r#"{{"type":2,"data":["long","{}"],"nsp":"/"}}"#,
            "x".repeat(300)
        )
        .into_boxed_str(),
    );
    vec![
        (
            packet(PacketKind::Connect, "/", None, Some(r#"{"sid":"abc","pid":"p1"}"#), vec![]),
            r#"{"type":0,"data":{"sid":"abc","pid":"p1"},"nsp":"/"}"#,
        ),
        (
            packet(PacketKind::Disconnect, "/admin", None, None, vec![]),
            r#"{"type":1,"nsp":"/admin"}"#,
        ),
        (
            packet(
                PacketKind::Event,
                "/",
                None,
                Some(r#"["mixed",0,127,128,255,256,65535,65536,4294967295,4294967296,-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649,1.5,-0.25,9007199254740992,true,false,null,"é",{"k":[{}]}]"#),
                vec![],
            ),
            r#"{"type":2,"data":["mixed",0,127,128,255,256,65535,65536,4294967295,4294967296,-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649,1.5,-0.25,9007199254740992,true,false,null,"é",{"k":[{}]}],"nsp":"/"}"#,
        ),
        (
            packet(
                PacketKind::Event,
                "/chat",
                Some(12),
                Some(r#"["file",{"name":"a","body":{"_placeholder":true,"num":0}},[{"_placeholder":true,"num":1}]]"#),
                vec![Bytes::from_static(&[1, 2, 3]), Bytes::from(vec![7u8; 300])],
            ),
            Box::leak(
                format!(
                    r#"{{"type":2,"data":["file",{{"name":"a","body":{{"$bin":"010203"}}}},[{{"$bin":"{}"}}]],"id":12,"nsp":"/chat"}}"#,
                    "07".repeat(300)
                )
                .into_boxed_str(),
            ),
        ),
        (
            packet(PacketKind::Ack, "/", Some(300), Some(r#"[{"ok":true}]"#), vec![]),
            r#"{"id":300,"type":3,"data":[{"ok":true}],"nsp":"/"}"#,
        ),
        (
            packet(PacketKind::ConnectError, "/private", None, Some(r#"{"message":"not authorized","data":{"code":4}}"#), vec![]),
            r#"{"type":4,"data":{"message":"not authorized","data":{"code":4}},"nsp":"/private"}"#,
        ),
        (packet(PacketKind::Event, "/", None, Some(long), vec![]), long_spec),
    ]
}

#[test]
fn our_msgpack_bytes_are_the_official_parsers() {
    let parser = SharedParser::new(MsgpackParser);
    let mut args = Vec::new();
    for (packet, spec) in cases() {
        let encoded = parser.encode(&packet);
        let Message::Binary(bytes) = encoded.head() else {
            panic!("msgpack writes binary");
        };
        args.push(spec.to_owned());
        args.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    let outcome = smol::block_on(suite::node::run_script(
        "msgpack-wire.mjs",
        &args,
        "msgpack bytes side by side",
    ));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
