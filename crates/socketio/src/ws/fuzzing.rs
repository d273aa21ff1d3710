//! Entry points for `fuzz/fuzz_targets/ws_frames.rs`, compiled only under
//! cargo-fuzz (`--cfg fuzzing`): the WebSocket reader is what a hostile
//! peer talks to first, and it is private to this crate.

use bytes::BytesMut;

use super::deflate::{self, Deflater, Inflater};
use super::frame::{Decoded, Decoder, Event, Role};
use super::PerMessageDeflate;

/// The limit the fuzzed reader enforces on messages.
const MAX_MESSAGE: usize = 64 * 1024;

/// Feeds `data` to a reader of `role` (a server reads masked frames),
/// `chunk` bytes at a time, with permessage-deflate agreed or not (the
/// agreement itself negotiated from `offer`, a client's
/// `Sec-WebSocket-Extensions`). Panics if the reader panics or yields a
/// message over the limit; a protocol error just ends the feed, as it
/// ends a connection.
pub fn decode_frames(server: bool, offer: &str, chunk: usize, data: &[u8]) {
    let config = PerMessageDeflate::default().threshold(0);
    let agreed = match deflate::accept_offer(&config, std::iter::once(offer)) {
        Ok(Some((agreed, answer))) => {
            // Our answer must be one our own client accepts.
            let client = deflate::accept_answer(&config, std::iter::once(answer.as_str()));
            assert!(
                client.is_ok(),
                "our answer {answer:?} to {offer:?} is refused"
            );
            Some(agreed)
        }
        _ => None,
    };
    let role = if server { Role::Server } else { Role::Client };
    let mut decoder = Decoder::new(role, MAX_MESSAGE, agreed.map(Inflater::new));
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Event(Event::Message(frame))) => {
                    assert!(frame.len() <= MAX_MESSAGE, "a message over the limit");
                }
                Ok(Decoded::Event(_)) => {}
                Ok(Decoded::Need(_)) => break,
                Err(_) => return,
            }
        }
    }
}

/// Compresses `messages` with a compressor agreed from `offer` and reads
/// them back with the matching decompressor: what goes out comes back.
pub fn deflate_round_trip(offer: &str, messages: &[&[u8]]) {
    let config = PerMessageDeflate::default().threshold(0);
    let Ok(Some((agreed, answer))) = deflate::accept_offer(&config, std::iter::once(offer)) else {
        return;
    };
    let Ok(Some(client)) = deflate::accept_answer(&config, std::iter::once(answer.as_str())) else {
        panic!("our answer {answer:?} to {offer:?} is refused");
    };
    let mut deflater = Deflater::new(agreed);
    let mut inflater = Inflater::new(client);
    for message in messages {
        // As the writer does: an empty message goes uncompressed.
        if !deflater.wants(message.len()) {
            continue;
        }
        let mut compressed = Vec::new();
        deflater
            .compress(message, &mut compressed)
            .expect("compresses");
        let back = inflater
            .inflate(&compressed, MAX_MESSAGE.max(message.len()))
            .unwrap_or_else(|_| panic!("cannot inflate what we compressed"));
        assert_eq!(&back[..], *message);
    }
}
