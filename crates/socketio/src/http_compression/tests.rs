use super::*;

fn accepting(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
    headers
}

/// Each header with what Node's `accepts(req).encodings(["gzip",
/// "deflate"])` answers for it (accepts 1.3.8, run once by hand).
#[test]
fn negotiates_as_node_s_accepts() {
    let cases = [
        ("gzip, deflate, br", Some(Encoding::Gzip)),
        ("deflate, gzip", Some(Encoding::Deflate)),
        ("*", Some(Encoding::Gzip)),
        ("gzip;q=0.5, deflate", Some(Encoding::Deflate)),
        ("br", None),
        ("identity", None),
        ("gzip;q=0", None),
        ("*;q=0.5, deflate;q=0.4", Some(Encoding::Gzip)),
        ("deflate;q=0.5, gzip;q=0.5", Some(Encoding::Deflate)),
        ("GZIP", Some(Encoding::Gzip)),
        ("gzip;q=abc, deflate", Some(Encoding::Deflate)),
        ("", None),
        (" , gzip", Some(Encoding::Gzip)),
        ("*, gzip;q=0", Some(Encoding::Deflate)),
        ("deflate;q=1.0, *;q=0", Some(Encoding::Deflate)),
    ];
    for (header, expected) in cases {
        assert_eq!(negotiate(&accepting(header)), expected, "{header:?}");
    }
    assert_eq!(negotiate(&HeaderMap::new()), None);
}

fn payload(len: usize) -> HttpResponse {
    HttpResponse::payload(Bytes::from("4".repeat(len)))
}

#[test]
fn compresses_from_the_threshold_what_may_be() {
    let config = HttpCompression::default();
    let mut short = payload(1023);
    assert_eq!(compress_response(&config, Encoding::Gzip, &mut short), None);
    assert_eq!(short.body.len(), 1023);

    let mut long = payload(1024);
    let header = compress_response(&config, Encoding::Gzip, &mut long);
    assert_eq!(header, Some(HeaderValue::from_static("gzip")));
    assert!(long.body.len() < 100, "{}", long.body.len());
    let headers = HeaderMap::from_iter([(CONTENT_ENCODING, header.unwrap())]);
    assert_eq!(
        decode(&headers, long.body, 1 << 20).unwrap(),
        "4".repeat(1024)
    );

    let mut refused = HttpResponse {
        compress: false,
        ..payload(4096)
    };
    assert_eq!(
        compress_response(&config, Encoding::Deflate, &mut refused),
        None
    );
    assert_eq!(refused.body.len(), 4096);
}

#[test]
fn both_encodings_round_trip() {
    let data = br#"42["chat",{"text":"hello hello hello hello"}]"#.repeat(50);
    for (encoding, name) in [(Encoding::Gzip, "gzip"), (Encoding::Deflate, "deflate")] {
        let compressed = encode(encoding, 6, &data).unwrap();
        let headers = HeaderMap::from_iter([(CONTENT_ENCODING, HeaderValue::from_static(name))]);
        assert_eq!(decode(&headers, compressed, data.len()).unwrap(), data);
    }
    // Identity and no header leave the body alone.
    let plain = Bytes::from_static(b"4hi");
    assert_eq!(decode(&HeaderMap::new(), plain.clone(), 10).unwrap(), plain);
}

#[test]
fn a_bomb_or_garbage_is_an_error_not_an_allocation() {
    // 4 MiB of zeros compress to about 4 KiB.
    let bomb = encode(Encoding::Gzip, 9, &vec![0u8; 4 << 20]).unwrap();
    let headers = HeaderMap::from_iter([(CONTENT_ENCODING, HeaderValue::from_static("gzip"))]);
    let error = decode(&headers, bomb, 1 << 20).unwrap_err();
    assert!(error.to_string().contains("inflates past"), "{error}");

    let garbage = Bytes::from_static(b"not gzip at all");
    assert!(decode(&headers, garbage, 1 << 20).is_err());

    let unknown = HeaderMap::from_iter([(CONTENT_ENCODING, HeaderValue::from_static("br"))]);
    assert!(decode(&unknown, Bytes::from_static(b"x"), 10).is_err());
}
