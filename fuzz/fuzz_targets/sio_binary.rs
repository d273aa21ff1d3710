//! Binary reassembly: a sequence of text and binary messages into one
//! `Decoder` with small limits, checked step by step against a model of the
//! reassembly (announced count, attachments so far, bytes so far).
//!
//! Invariants: no panic; a text message is decoded as a fresh decoder would
//! decode it unless attachments are awaited (then it is `UnexpectedText`); a
//! binary message with nothing awaited is `UnexpectedBinary`; a completed
//! packet carries exactly the announced attachments, in order; the bytes
//! buffered for one packet never exceed `max_attachment_bytes` (the message
//! that would cross it is `AttachmentsTooLarge`); after any error the decoder
//! is not reassembling.

#![no_main]

use bytes::Bytes;
use engineio_fuzz::sio::{lossy, NspSpec, PacketSpec};
use engineio_fuzz::{tracing, MAX_RAW};
use engineio_proto::{Message, Str};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use socketio_proto::{DecodeError, Decoder, DecoderConfig};

/// At most this many messages per run.
const MAX_MESSAGES: usize = 256;

#[derive(Arbitrary, Debug)]
enum MessageSpec {
    /// A well-formed packet's messages (text, then its attachments).
    Packet(PacketSpec),
    /// Just the text of a binary event or ack announcing `count` attachments.
    Header {
        ack: bool,
        count: u8,
        nsp: NspSpec,
        id: Option<u16>,
    },
    Text(Vec<u8>),
    Binary(Vec<u8>),
    /// A binary message of this many bytes (modulo 4096).
    Sized(u16),
}

impl MessageSpec {
    fn messages(&self) -> Vec<Message> {
        match self {
            MessageSpec::Packet(spec) => spec.build(&[], &[]).messages(),
            MessageSpec::Header {
                ack,
                count,
                nsp,
                id,
            } => {
                let mut text = format!("{}{}-", if *ack { 6 } else { 5 }, count % 16);
                let nsp = nsp.to_nsp(&[]);
                if nsp.as_str() != "/" {
                    text.push_str(&nsp);
                    text.push(',');
                }
                if let Some(id) = id {
                    text.push_str(&id.to_string());
                }
                text.push_str(if *ack { "[" } else { "[\"ev\"," });
                text.push_str(r#"{"_placeholder":true,"num":0}]"#);
                vec![Message::Text(Str::from(text))]
            }
            MessageSpec::Text(b) => vec![Message::Text(Str::from(lossy(b)))],
            MessageSpec::Binary(b) => vec![Message::Binary(Bytes::copy_from_slice(
                &b[..b.len().min(MAX_RAW)],
            ))],
            MessageSpec::Sized(n) => vec![Message::Binary(Bytes::from(vec![
                0xab;
                usize::from(*n) % 4096
            ]))],
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_attachments: u8,
    max_attachment_bytes: u16,
    messages: Vec<MessageSpec>,
}

/// A binary packet being reassembled, as the model sees it.
struct Partial {
    announced: usize,
    received: Vec<Bytes>,
    bytes: usize,
}

/// The attachment count of a `5`/`6` text: the digits before the `-`; `None`
/// when it does not fit a `usize`.
fn announced(text: &str) -> Option<usize> {
    let digits = text.get(1..)?.split('-').next()?;
    let mut n = 0usize;
    for d in digits.bytes() {
        n = n
            .checked_mul(10)?
            .checked_add(usize::from(d.wrapping_sub(b'0')))?;
    }
    Some(n)
}

fuzz_target!(|input: Input| {
    let mut config = DecoderConfig::default();
    config.max_attachments = usize::from(input.max_attachments % 13);
    config.max_attachment_bytes = usize::from(input.max_attachment_bytes % 2048);
    let mut decoder = Decoder::new(config.clone());
    let mut partial: Option<Partial> = None;

    let messages = input
        .messages
        .iter()
        .take(MAX_MESSAGES)
        .flat_map(|m| m.messages());
    for message in messages {
        if tracing() {
            eprintln!("{message:?}");
        }
        let result = decoder.decode(message.clone());
        if tracing() {
            eprintln!("  -> {result:?}");
        }
        match message {
            Message::Text(text) => {
                if partial.take().is_some() {
                    assert_eq!(result, Err(DecodeError::UnexpectedText));
                } else {
                    // Between packets the decoder holds no state.
                    let fresh = Decoder::new(config.clone()).decode(Message::Text(text.clone()));
                    assert_eq!(result, fresh, "decoded unlike a fresh decoder");
                    match &result {
                        Ok(Some(packet)) => assert!(packet.attachments.is_empty()),
                        Ok(None) => {
                            let count = announced(&text).expect("a waiting packet has a count");
                            assert!((1..=config.max_attachments).contains(&count));
                            partial = Some(Partial {
                                announced: count,
                                received: Vec::new(),
                                bytes: 0,
                            });
                        }
                        Err(DecodeError::TooManyAttachments) => {
                            assert!(matches!(text.as_bytes()[0], b'5' | b'6'));
                            assert!(announced(&text).is_none_or(|n| n > config.max_attachments));
                        }
                        Err(_) => {}
                    }
                }
            }
            Message::Binary(data) => match partial.as_mut() {
                None => assert_eq!(result, Err(DecodeError::UnexpectedBinary)),
                Some(p) => {
                    p.bytes += data.len();
                    if p.bytes > config.max_attachment_bytes {
                        assert_eq!(result, Err(DecodeError::AttachmentsTooLarge));
                        partial = None;
                    } else {
                        p.received.push(data);
                        if p.received.len() < p.announced {
                            assert_eq!(result, Ok(None));
                        } else {
                            let packet = result
                                .clone()
                                .expect("the last attachment completes the packet")
                                .expect("the last attachment completes the packet");
                            assert_eq!(packet.attachments.len(), p.announced);
                            assert_eq!(packet.attachments, p.received);
                            let total: usize = packet.attachments.iter().map(Bytes::len).sum();
                            assert!(total <= config.max_attachment_bytes);
                            partial = None;
                        }
                    }
                }
            },
        }
        if result.is_err() {
            assert!(!decoder.is_reassembling(), "reassembling after an error");
        }
        assert_eq!(decoder.is_reassembling(), partial.is_some());
    }
});
