//! The WebSocket reader (`socketio`'s own RFC 6455 framing and RFC 7692
//! permessage-deflate), as a hostile peer meets it: whatever bytes arrive,
//! in whatever pieces, with whatever `Sec-WebSocket-Extensions` offer,
//! reading never panics and never yields a message over its limit (a zip
//! bomb stops at the limit); an offer we accept gets an answer our own
//! client accepts; and what our compressor writes, our decompressor reads
//! back.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    server: bool,
    offer: &'a str,
    chunk: u8,
    frames: &'a [u8],
    messages: Vec<&'a [u8]>,
}

fuzz_target!(|input: Input<'_>| {
    socketio::fuzzing::decode_frames(input.server, input.offer, input.chunk.into(), input.frames);
    socketio::fuzzing::deflate_round_trip(input.offer, &input.messages);
});
