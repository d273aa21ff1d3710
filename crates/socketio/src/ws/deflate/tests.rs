use super::*;

fn server_answer(
    config: &PerMessageDeflate,
    offer: &str,
) -> Result<Option<(Agreed, String)>, BadOffer> {
    accept_offer(config, [offer].into_iter())
}

fn answer(config: &PerMessageDeflate, offer: &str) -> Option<String> {
    server_answer(config, offer)
        .unwrap()
        .map(|(_, answer)| answer)
}

#[test]
fn browsers_and_node_s_ws_offers_are_answered_as_node_answers_them() {
    let node = PerMessageDeflate::default();
    // Chromium, Firefox and `ws` offer this; Node answers the bare name.
    let offer = "permessage-deflate; client_max_window_bits";
    assert_eq!(answer(&node, offer).as_deref(), Some("permessage-deflate"));
    let (agreed, _) = server_answer(&node, offer).unwrap().unwrap();
    assert_eq!(
        agreed,
        Agreed {
            threshold: 1024,
            level: 6,
            our_window: 15,
            our_reset: false,
            their_window: 15,
            their_reset: false,
        }
    );
    // Other extensions are ignored; no offer, no compression.
    assert_eq!(answer(&node, "x-webkit-deflate-frame"), None);
    assert_eq!(answer(&node, ""), None);
}

#[test]
fn memory_settings_are_asked_of_the_client_where_its_offer_allows() {
    let lean = PerMessageDeflate::default()
        .context_takeover(false)
        .max_window_bits(10);
    let (agreed, answer) = server_answer(&lean, "permessage-deflate; client_max_window_bits")
        .unwrap()
        .unwrap();
    assert_eq!(
        answer,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10"
    );
    assert_eq!((agreed.our_window, agreed.their_window), (10, 10));
    assert!(agreed.our_reset && agreed.their_reset);
    // Without the parameter the client's window cannot be capped.
    let (agreed, answer) = server_answer(&lean, "permessage-deflate").unwrap().unwrap();
    assert!(!answer.contains("client_max_window_bits"));
    assert_eq!((agreed.our_window, agreed.their_window), (10, 15));
}

#[test]
fn the_client_s_caps_on_our_side_are_kept_or_the_offer_declined() {
    let node = PerMessageDeflate::default();
    let (agreed, answered) = server_answer(
        &node,
        "permessage-deflate; server_max_window_bits=11; server_no_context_takeover",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        answered,
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"
    );
    assert_eq!(agreed.our_window, 11);
    assert!(agreed.our_reset && !agreed.their_reset);
    // zlib cannot compress with 8 bits: that offer is declined, the next
    // one taken.
    assert_eq!(
        answer(&node, "permessage-deflate; server_max_window_bits=8"),
        None
    );
    assert_eq!(
        answer(
            &node,
            "permessage-deflate; server_max_window_bits=8, permessage-deflate"
        )
        .as_deref(),
        Some("permessage-deflate")
    );
    // A client's own 8-bit window is inflated with 9 bits.
    let (agreed, answered) = server_answer(&node, "permessage-deflate; client_max_window_bits=8")
        .unwrap()
        .unwrap();
    assert_eq!(answered, "permessage-deflate; client_max_window_bits=8");
    assert_eq!(agreed.their_window, 9);
}

#[test]
fn offers_that_cannot_be_read_refuse_the_handshake() {
    let node = PerMessageDeflate::default();
    for bad in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; unknown",
        "permessage-deflate;",
        "; permessage-deflate",
    ] {
        assert_eq!(server_answer(&node, bad), Err(BadOffer), "{bad}");
    }
    // Quoted values are values.
    assert_eq!(
        answer(&node, "permessage-deflate; client_max_window_bits=\"12\"").as_deref(),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    // Several header lines are one list.
    let offers = ["foo; a=\"x,y\"", "permessage-deflate"];
    assert!(accept_offer(&node, offers.into_iter()).unwrap().is_some());
}

#[test]
fn our_client_s_offer_and_our_server_s_answer_agree() {
    for config in [
        PerMessageDeflate::default(),
        PerMessageDeflate::default().context_takeover(false),
        PerMessageDeflate::default().max_window_bits(9),
    ] {
        let offer = offer(&config);
        let (server, answer) = server_answer(&config, &offer).unwrap().unwrap();
        let client = accept_answer(&config, [answer.as_str()].into_iter())
            .unwrap()
            .unwrap();
        assert_eq!(client.our_window, server.their_window.max(9), "{offer}");
        assert_eq!(client.their_window, server.our_window, "{offer}");
        assert_eq!(client.our_reset, server.their_reset, "{offer}");
        assert_eq!(client.their_reset, server.our_reset, "{offer}");
    }
    assert_eq!(
        offer(&PerMessageDeflate::default()),
        "permessage-deflate; client_max_window_bits"
    );
}

#[test]
fn answers_a_client_cannot_keep_to_fail_the_connection() {
    let node = PerMessageDeflate::default();
    let lean = PerMessageDeflate::default()
        .context_takeover(false)
        .max_window_bits(10);
    let fails = |config: &PerMessageDeflate, answer: &str| {
        accept_answer(config, [answer].into_iter()).is_err()
    };
    assert!(fails(&node, "permessage-deflate; client_max_window_bits"));
    assert!(fails(&node, "permessage-deflate; client_max_window_bits=8"));
    assert!(fails(&node, "x-other"));
    assert!(fails(&node, "permessage-deflate, permessage-deflate"));
    assert!(fails(&lean, "permessage-deflate"));
    assert!(fails(
        &lean,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"
    ));
    // Node's answer to `ws`'s default offer, and a declined offer.
    let agreed = accept_answer(&node, ["permessage-deflate"].into_iter())
        .unwrap()
        .unwrap();
    assert_eq!((agreed.our_window, agreed.their_window), (15, 15));
    assert_eq!(accept_answer(&node, std::iter::empty()), Ok(None));
}

fn agreed(reset: bool) -> Agreed {
    Agreed {
        threshold: 0,
        level: 6,
        our_window: 15,
        our_reset: reset,
        their_window: 15,
        their_reset: reset,
    }
}

#[test]
fn the_rfc_7692_examples_inflate() {
    // Section 7.2.3.1 and 7.2.3.2: "Hello", then "Hello" again with the
    // context taken over.
    let mut inflater = Inflater::new(agreed(false));
    let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(inflater.inflate(&first, 100).unwrap(), b"Hello");
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(inflater.inflate(&second, 100).unwrap(), b"Hello");
    // 7.2.3.3: a stored block; 7.2.3.4: a final block ends the stream.
    let mut inflater = Inflater::new(agreed(true));
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(inflater.inflate(&stored, 100).unwrap(), b"Hello");
    let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(inflater.inflate(&last, 100).unwrap(), b"Hello");
    assert_eq!(inflater.inflate(&first, 100).unwrap(), b"Hello");
}

#[test]
fn our_compressor_writes_what_the_rfc_shows_and_keeps_or_drops_its_context() {
    let mut deflater = Deflater::new(agreed(false));
    let mut out = Vec::new();
    deflater.compress(b"Hello", &mut out).unwrap();
    assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    let mut again = Vec::new();
    deflater.compress(b"Hello", &mut again).unwrap();
    assert!(again.len() < out.len(), "{again:x?}");
    assert!(deflater.state.is_some());
    // Without context takeover each message stands alone and no state is
    // kept between them: it waits, reset, in the thread's pool, and the
    // next message (of any connection) compresses as a fresh one would.
    for _ in 0..2 {
        let mut fresh = Deflater::new(agreed(true));
        let mut alone = Vec::new();
        fresh.compress(b"Hello", &mut alone).unwrap();
        assert_eq!(alone, out);
        assert!(fresh.state.is_none());
        assert_eq!(COMPRESSORS.with(|pool| pool.borrow().len()), 1);
    }
}

#[test]
fn messages_round_trip_at_every_size_and_window() {
    for window in [9, 12, 15] {
        for reset in [false, true] {
            let agreed = Agreed {
                our_window: window,
                their_window: window,
                ..agreed(reset)
            };
            let mut deflater = Deflater::new(agreed);
            let mut inflater = Inflater::new(agreed);
            for len in [1, 100, 5_000, 70_000, 300_000] {
                let message: Vec<u8> = (0..len)
                    .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 17)
                    .collect();
                let mut compressed = Vec::new();
                deflater.compress(&message, &mut compressed).unwrap();
                let inflated = inflater.inflate(&compressed, 1 << 20).unwrap();
                assert!(
                    inflated == message,
                    "window {window}, reset {reset}, {len} bytes"
                );
            }
        }
    }
}

#[test]
fn inflating_stops_at_the_limit_without_growing_past_it() {
    let mut deflater = Deflater::new(agreed(false));
    let mut bomb = Vec::new();
    deflater.compress(&vec![b'a'; 10 << 20], &mut bomb).unwrap();
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let mut inflater = Inflater::new(agreed(false));
    assert_eq!(
        inflater.inflate(&bomb, 1 << 20),
        Err(InflateError::TooLarge)
    );
    // The failed stream is dropped; the next message starts afresh.
    assert!(inflater.state.is_none());
    let mut fresh = Deflater::new(agreed(false));
    let mut hello = Vec::new();
    fresh.compress(b"Hello", &mut hello).unwrap();
    assert_eq!(inflater.inflate(&hello, 5).unwrap(), b"Hello");
    assert_eq!(inflater.inflate(&hello, 4), Err(InflateError::TooLarge));
    assert_eq!(
        Inflater::new(agreed(false)).inflate(&[0xff, 0xff, 0xff], 100),
        Err(InflateError::Invalid)
    );
}
