//! Polling payloads: decoding arbitrary HTTP bodies never panics, stops at the
//! first bad record, and what decodes re-encodes canonically. Also checks
//! `count_fitting`, which batches packets into POST bodies.

#![no_main]

use bytes::Bytes;
use engineio_proto::payload::{self, SEPARATOR};
use engineio_proto::{DecodeError, Message, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let mut decoder = match payload::decode(body) {
        Ok(decoder) => decoder,
        Err(error) => {
            assert_eq!(error, DecodeError::InvalidUtf8);
            assert!(core::str::from_utf8(data).is_err(), "UTF-8 body refused");
            return;
        }
    };
    assert!(
        core::str::from_utf8(data).is_ok(),
        "non-UTF-8 body accepted"
    );

    let records = data.iter().filter(|&&b| b == SEPARATOR).count() + 1;
    let mut packets = Vec::new();
    let mut failed = false;
    // One item per record at most; the bound also guards against a decoder
    // that never ends.
    for _ in 0..records + 1 {
        match decoder.next() {
            Some(Ok(packet)) => packets.push(packet),
            Some(Err(_)) => {
                failed = true;
                break;
            }
            None => break,
        }
    }
    if failed {
        // Nothing after the first error, however often one asks.
        for _ in 0..3 {
            assert!(decoder.next().is_none(), "decoder yielded after an error");
        }
        assert!(packets.len() < records);
    } else {
        assert!(decoder.next().is_none());
        assert_eq!(packets.len(), records, "a record was skipped or invented");
    }

    check_count_fitting(&packets, data.len());

    if packets.is_empty() {
        return;
    }
    // A text containing the separator cannot travel in a payload; a decoded
    // one never does, but keep the round trip honest about it.
    let travels = packets.iter().all(|p| match p {
        Packet::Message(Message::Binary(_)) => true,
        other => match other.encode_frame() {
            engineio_proto::Frame::Text(t) => !t.as_bytes().contains(&SEPARATOR),
            engineio_proto::Frame::Binary(_) => true,
        },
    });
    assert!(travels, "a decoded packet carries the separator");

    let encoded = payload::encode(&packets);
    let expected_len: usize = packets
        .iter()
        .map(Packet::encoded_len_in_payload)
        .sum::<usize>()
        + packets.len()
        - 1;
    assert_eq!(
        encoded.len(),
        expected_len,
        "encoded_len_in_payload disagrees with encode"
    );
    let again: Vec<Packet> = payload::decode(encoded.clone())
        .expect("an encoded payload is UTF-8")
        .collect::<Result<_, _>>()
        .expect("an encoded payload decodes");
    assert_eq!(again, packets);
    assert_eq!(
        payload::encode(&again),
        encoded,
        "encoding is not canonical"
    );
});

fn check_count_fitting(packets: &[Packet], input_len: usize) {
    let limits = [
        0,
        1,
        2,
        7,
        64,
        input_len / 2,
        input_len,
        input_len.saturating_add(1),
        usize::MAX,
    ];
    for max in limits {
        let count = payload::count_fitting(packets, max);
        assert!(count <= packets.len(), "count_fitting counted past the end");
        if packets.is_empty() {
            assert_eq!(count, 0);
            continue;
        }
        assert!(count >= 1, "the first packet always goes");
        let batch_len = payload::encode(&packets[..count]).len();
        if count > 1 {
            assert!(batch_len <= max, "batch of {count} is {batch_len} > {max}");
        }
        if count < packets.len() {
            // Greedy: one more would not have fitted.
            let more = payload::encode(&packets[..count + 1]).len();
            assert!(
                more > max,
                "count_fitting stopped early at {count} ({more} <= {max})"
            );
        }
    }
}
