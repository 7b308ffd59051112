use super::*;

fn limits() -> HttpLimits {
    HttpLimits { max_request_line: 64, max_head_bytes: 256, max_headers: 4 }
}

/// Pushes `raw` one byte at a time and parses it; returns the head or the first error.
fn parse_bytewise(raw: &[u8]) -> Result<(Method, Version, Vec<u8>, BodyFraming, bool), ParseError> {
    let mut buf = HeadBuffer::new();
    let mut complete = false;
    for (i, b) in raw.iter().enumerate() {
        let (n, done) = buf.push(std::slice::from_ref(b), &limits())?;
        assert_eq!(n, 1, "byte {i} not consumed");
        if done {
            assert_eq!(i, raw.len() - 1, "head ended early");
            complete = true;
        }
    }
    assert!(complete, "head not complete");
    let mut path = Vec::new();
    let head = parse_head(buf.bytes(), &limits(), &mut path)?;
    Ok((head.method, head.version, path, head.body, head.keep_alive))
}

fn status_of(raw: &[u8]) -> u16 {
    match parse_bytewise(raw) {
        Ok(_) => 200,
        Err(e) => e.status(),
    }
}

#[test]
fn parses_a_simple_get() {
    let (m, v, path, body, ka) = parse_bytewise(b"GET /a%20b/c.txt?x=1 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!((m, v, body, ka), (Method::Get, Version::Http11, BodyFraming::None, true));
    assert_eq!(path, b"/a b/c.txt");
}

#[test]
fn absolute_form_and_leading_blank_lines() {
    let (_, _, path, _, _) =
        parse_bytewise(b"\r\n\r\nHEAD http://h:80/x/y HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(path, b"/x/y");
    let (_, _, path, _, _) = parse_bytewise(b"GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(path, b"/");
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let (m, _, _, _, _) = parse_bytewise(b"GET / HTTP/1.1\nHost: h\n\n").unwrap();
    assert_eq!(m, Method::Get);
}

#[test]
fn http10_closes_unless_keep_alive() {
    assert!(!parse_bytewise(b"GET / HTTP/1.0\r\n\r\n").unwrap().4);
    assert!(parse_bytewise(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().4);
    assert!(!parse_bytewise(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n").unwrap().4);
}

#[test]
fn body_framing() {
    let cl = parse_bytewise(b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n").unwrap();
    assert_eq!(cl.3, BodyFraming::Length(5));
    let te = parse_bytewise(b"PUT /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
    assert_eq!(te.3, BodyFraming::Chunked);
    let zero = parse_bytewise(b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(zero.3, BodyFraming::None);
}

#[test]
fn refusals_map_to_statuses() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        (b"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417),
        (b"GET /a/../b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /%2e%2E/b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET a HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /#x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"H:1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431),
    ];
    for (raw, want) in cases {
        assert_eq!(status_of(raw), *want, "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn other_methods_parse_for_405() {
    assert_eq!(parse_bytewise(b"DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().0, Method::Other);
    assert_eq!(parse_bytewise(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap().0, Method::Other);
}

#[test]
fn limits_are_enforced_while_bytes_arrive() {
    let mut buf = HeadBuffer::new();
    let long = [b'A'; 100];
    // The request line is refused before its end arrives.
    assert_eq!(buf.push(&long, &limits()), Err(ParseError::RequestLineTooLong));
    let mut buf = HeadBuffer::new();
    buf.push(b"GET / HTTP/1.1\r\n", &limits()).unwrap();
    let mut err = None;
    for _ in 0..100 {
        if let Err(e) = buf.push(b"X-Filler: 0123456789\r\n", &limits()) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(ParseError::HeadTooLarge));
    assert_eq!(ParseError::HeadTooLarge.status(), 431);
}

#[test]
fn push_stops_at_the_end_of_the_head() {
    let mut buf = HeadBuffer::new();
    let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next";
    let (n, done) = buf.push(input, &limits()).unwrap();
    assert!(done);
    assert_eq!(&input[n..], b"GET /next");
}

#[test]
fn a_head_split_anywhere_is_collected_like_a_whole_one() {
    let input = b"\r\n\nGET /a%20b HTTP/1.1\r\nHost: h\nX: 1\r\n\r\nGET /next";
    let mut whole = HeadBuffer::new();
    let (n, done) = whole.push(input, &limits()).unwrap();
    assert!(done);
    for cut in 0..=n {
        let mut buf = HeadBuffer::new();
        let (first, done) = buf.push(&input[..cut], &limits()).unwrap();
        assert_eq!((first, done), (cut, cut == n), "cut {cut}");
        if !done {
            let (second, done) = buf.push(&input[cut..], &limits()).unwrap();
            assert_eq!((first + second, done), (n, true), "cut {cut}");
        }
        assert_eq!(buf.bytes(), whole.bytes(), "cut {cut}");
    }
}

#[test]
fn range_syntax() {
    assert_eq!(parse_range(b"bytes=0-9"), RangeRequest::Single(ByteRange::FromTo(0, 9)));
    assert_eq!(parse_range(b"bytes=5-"), RangeRequest::Single(ByteRange::From(5)));
    assert_eq!(parse_range(b"bytes=-5"), RangeRequest::Single(ByteRange::Suffix(5)));
    assert_eq!(parse_range(b"bytes=0-1,4-5"), RangeRequest::Multiple);
    for bad in
        [&b"bytes=9-0"[..], b"bytes=-", b"items=0-1", b"bytes=a-b", b"bytes=", b"bytes=99999999999999999999-"]
    {
        assert_eq!(parse_range(bad), RangeRequest::Ignored, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn range_resolution() {
    assert_eq!(ByteRange::FromTo(0, 9).resolve(5), Some((0, 5)));
    assert_eq!(ByteRange::FromTo(5, 9).resolve(5), None);
    assert_eq!(ByteRange::From(4).resolve(5), Some((4, 1)));
    assert_eq!(ByteRange::Suffix(10).resolve(5), Some((0, 5)));
    assert_eq!(ByteRange::Suffix(0).resolve(5), None);
    assert_eq!(ByteRange::Suffix(1).resolve(0), None);
    assert_eq!(ByteRange::From(0).resolve(0), None);
}

#[test]
fn conditional_fields_are_kept() {
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";
    let mut path = Vec::new();
    let head = parse_head(raw, &limits(), &mut path).unwrap();
    assert_eq!(head.if_none_match(), &[&b"\"a\""[..]]);
    assert_eq!(head.if_modified_since, Some(784_111_777));
}

/// Every byte string either parses or is refused; nothing panics (seeded, so reproducible).
#[test]
fn random_heads_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet =
        b"GETPUHAD /%2e.:\r\n\t\x00HTTP/1.0chunked-,=0123456789abcdefContent-LengthTransfer-Encoding";
    for case in 0..20_000 {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        let len = (seed % 80) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            raw.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        raw.extend_from_slice(b"\r\n\r\n");
        let mut buf = HeadBuffer::new();
        let mut path = Vec::new();
        if let Ok((_, true)) = buf.push(&raw, &limits()) {
            let _ = parse_head(buf.bytes(), &limits(), &mut path);
        }
        let _ = case;
    }
}

#[test]
fn token_characters_are_exactly_rfc_9110s() {
    for b in 0..=255u8 {
        let expected = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_tchar(b), expected, "byte {b:#04x}");
    }
}
