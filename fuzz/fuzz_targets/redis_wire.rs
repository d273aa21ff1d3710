//! Whatever another server (or anything else) publishes on the Redis
//! adapter's channels, in the classic format or the sharded one, or adds
//! to a Streams-format stream or session key: decoding never panics and
//! allocates no more than the message's size allows, and a broadcast that
//! decodes re-encodes to one that decodes to the same sender, packet and
//! options (also through a stream entry and through pub/sub msgpack).
#![no_main]

use adapter_redis::{sharded_wire, streams_wire, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode_request(data);
    let _ = wire::decode_response(data);
    if let Ok(broadcast) = wire::decode_broadcast(data) {
        let encoded = wire::encode_broadcast(&broadcast.uid, &broadcast.packet, &broadcast.opts)
            .expect("a decoded broadcast encodes");
        let again = wire::decode_broadcast(&encoded).expect("an encoded broadcast decodes");
        assert_eq!(again.uid, broadcast.uid);
        assert_eq!(again.packet, broadcast.packet);
        assert_eq!(again.opts, broadcast.opts);
    }
    if let Ok(envelope) = sharded_wire::decode(data) {
        if let sharded_wire::Message::Broadcast(broadcast) = envelope.message {
            let encoded =
                sharded_wire::broadcast(&broadcast.uid, &broadcast.packet, &broadcast.opts)
                    .expect("a decoded sharded broadcast encodes");
            let again = sharded_wire::decode(&encoded).expect("an encoded broadcast decodes");
            let sharded_wire::Message::Broadcast(again_broadcast) = again.message else {
                panic!("a broadcast re-encoded as something else");
            };
            assert_eq!((again.uid, again.nsp), (broadcast.uid, envelope.nsp));
            assert_eq!(again_broadcast.packet, broadcast.packet);
            assert_eq!(again_broadcast.opts, broadcast.opts);
            // The Streams format carries the same message as an entry.
            let streams_wire::Route::Stream(fields) =
                streams_wire::route(encoded).expect("an envelope routes")
            else {
                panic!("a broadcast without acks goes to the stream");
            };
            let fields: Vec<(String, Vec<u8>)> = fields
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.into_bytes()))
                .collect();
            let entry = streams_wire::decode_entry(&fields).expect("its entry decodes");
            let sharded_wire::Message::Broadcast(from_entry) = entry.message else {
                panic!("a broadcast entry decoded as something else");
            };
            assert_eq!(from_entry.packet, again_broadcast.packet);
            assert_eq!(from_entry.opts, again_broadcast.opts);
        }
        // What goes to pub/sub instead goes as msgpack that still decodes.
        if let Ok(streams_wire::Route::PubSub(message)) = streams_wire::route(data.to_vec()) {
            assert!(
                sharded_wire::decode(&message).is_ok(),
                "pub/sub msgpack decodes"
            );
        }
    }
    // A stream entry whose `data` (and type) are arbitrary, and a session.
    let kind = data.first().map_or(3, |byte| byte % 16).to_string();
    let fields = [
        ("uid".to_owned(), b"other".to_vec()),
        ("nsp".to_owned(), b"/".to_vec()),
        ("type".to_owned(), kind.into_bytes()),
        ("data".to_owned(), data.to_vec()),
    ];
    let _ = streams_wire::decode_entry(&fields);
    let _ = streams_wire::route(data.to_vec());
    if let Ok(session) = streams_wire::decode_session(data) {
        let encoded = streams_wire::encode_session(&session).expect("a session encodes");
        let again = streams_wire::decode_session(encoded.as_bytes()).expect("and decodes");
        assert_eq!(again.sid, session.sid);
        assert_eq!(again.pid, session.pid);
        assert_eq!(again.rooms, session.rooms);
    }
});
