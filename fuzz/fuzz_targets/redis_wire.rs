//! Whatever another server (or anything else) publishes on the Redis
//! adapter's channels, in the classic format or the sharded one: decoding
//! never panics and allocates no more than the message's size allows, and
//! a broadcast that decodes re-encodes to one that decodes to the same
//! sender, packet and options.
#![no_main]

use adapter_redis::{sharded_wire, wire};
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
        }
    }
});
