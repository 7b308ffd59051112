//! SYN cookie and TCP Fast Open cookie round trips, expiry, tampering and key rotation.

use linerate_stack::cookie::{
    decode_ts_options, encode_ts_options, CookieError, CookieInfo, CookieOptions, SynCookies, TfoClientCache,
    TfoCookieJar, MSS_TABLE,
};
use linerate_stack::flow::FourTuple;
use linerate_stack::time::{Duration, Instant};
use linerate_stack::wire::{FastOpenCookie, Ipv4Address, SeqNumber};

const KEY: [u8; 16] = *b"cookie-key-00001";

fn tuple() -> FourTuple {
    FourTuple::new(Ipv4Address::new(198, 18, 0, 1), 80, Ipv4Address::new(198, 18, 0, 2), 40_001)
}

/// Period 10 starts at 640 s.
fn t(secs_after_period_start: u64) -> Instant {
    Instant::from_millis((640 + secs_after_period_start) * 1_000)
}

/// The client's ACK for a cookie SYN-ACK: seq = client ISN + 1, ack = cookie + 1.
fn validate_ack(
    c: &SynCookies,
    now: Instant,
    tuple: &FourTuple,
    client_isn: SeqNumber,
    cookie: SeqNumber,
) -> Result<CookieInfo, CookieError> {
    let (seq, ack) = (client_isn + 1, cookie + 1);
    c.validate(now, tuple, seq - 1, ack)
}

#[test]
fn round_trip_without_timestamps() {
    let c = SynCookies::new(KEY);
    let isn = SeqNumber(0xffff_fff0);
    let (cookie, mss) = c.generate(t(5), &tuple(), isn, 1460);
    assert_eq!(mss, 1460);
    assert_eq!(validate_ack(&c, t(6), &tuple(), isn, cookie), Ok(CookieInfo { mss: 1460 }));
}

#[test]
fn round_trip_with_timestamp_options() {
    let c = SynCookies::new(KEY);
    let isn = SeqNumber(7);
    let (cookie, _) = c.generate(t(0), &tuple(), isn, 8960);
    for options in [
        CookieOptions { window_scale: Some(7), sack_permitted: true, ecn: false },
        CookieOptions { window_scale: Some(0), sack_permitted: false, ecn: true },
        CookieOptions { window_scale: None, sack_permitted: true, ecn: true },
        CookieOptions::default(),
    ] {
        let tsval = encode_ts_options(123_456_789, options);
        assert!(tsval <= 123_456_789);
        // The client echoes our TSval as its TSecr.
        assert_eq!(decode_ts_options(tsval), options);
    }
    let clamped = CookieOptions { window_scale: Some(200), ..CookieOptions::default() };
    assert_eq!(decode_ts_options(encode_ts_options(1 << 20, clamped)).window_scale, Some(14));
    assert_eq!(validate_ack(&c, t(1), &tuple(), isn, cookie), Ok(CookieInfo { mss: 8960 }));
}

#[test]
fn mss_is_rounded_down_to_a_table_entry() {
    let c = SynCookies::new(KEY);
    for (offered, used) in [(1452, 1440), (1500, 1460), (9000, 8960), (1399, 1360), (100, 536)] {
        let (cookie, mss) = c.generate(t(0), &tuple(), SeqNumber(1), offered);
        assert_eq!(mss, used, "offered {offered}");
        assert!(MSS_TABLE.contains(&mss));
        assert_eq!(validate_ack(&c, t(0), &tuple(), SeqNumber(1), cookie), Ok(CookieInfo { mss }));
    }
}

#[test]
fn cookies_expire_after_two_periods() {
    let c = SynCookies::new(KEY);
    let isn = SeqNumber(42);
    let (early, _) = c.generate(t(0), &tuple(), isn, 1460);
    assert!(validate_ack(&c, t(127), &tuple(), isn, early).is_ok());
    assert_eq!(validate_ack(&c, t(128), &tuple(), isn, early), Err(CookieError::Expired));
    let (late, _) = c.generate(t(63), &tuple(), isn, 1460);
    assert!(validate_ack(&c, t(64 + 63), &tuple(), isn, late).is_ok());
    assert_eq!(validate_ack(&c, t(128), &tuple(), isn, late), Err(CookieError::Expired));
    // Four periods later the 2-bit time field aliases; the MAC (over the full counter) does not.
    assert_eq!(validate_ack(&c, t(256), &tuple(), isn, early), Err(CookieError::BadMac));
    // A cookie "from the future" (clock went back, or forged time bits) is refused too.
    assert!(validate_ack(&c, t(0) - Duration::from_secs(65), &tuple(), isn, early).is_err());
}

#[test]
fn wrong_tuple_isn_or_tampered_bits_fail_the_mac() {
    let c = SynCookies::new(KEY);
    let isn = SeqNumber(1_000);
    let (cookie, _) = c.generate(t(10), &tuple(), isn, 1460);
    let mut other = tuple();
    other.remote_port += 1;
    assert_eq!(validate_ack(&c, t(10), &other, isn, cookie), Err(CookieError::BadMac));
    assert_eq!(validate_ack(&c, t(10), &tuple().reversed(), isn, cookie), Err(CookieError::BadMac));
    assert_eq!(validate_ack(&c, t(10), &tuple(), isn + 1, cookie), Err(CookieError::BadMac));
    let bigger_mss = SeqNumber(cookie.0 ^ (1 << 29));
    assert_eq!(validate_ack(&c, t(10), &tuple(), isn, bigger_mss), Err(CookieError::BadMac));
    let flipped = SeqNumber(cookie.0 ^ 1);
    assert_eq!(validate_ack(&c, t(10), &tuple(), isn, flipped), Err(CookieError::BadMac));
    assert_eq!(
        SynCookies::new(*b"some-other-key!!").validate(t(10), &tuple(), isn, cookie + 1),
        Err(CookieError::BadMac)
    );
}

#[test]
fn blind_guesses_are_refused() {
    // Deterministic LCG; the seed is printed on failure.
    const SEED: u64 = 0x00c0_ffee;
    let mut state = SEED;
    let c = SynCookies::new(KEY);
    let mut accepted = 0;
    for _ in 0..200_000 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let guess = SeqNumber((state >> 32) as u32);
        accepted += u32::from(c.validate(t(30), &tuple(), SeqNumber(5), guess).is_ok());
    }
    // Expected accepts: 2e5 * (1/2 time bits) * 2^-27 ~ 0.0007.
    assert_eq!(accepted, 0, "seed {SEED:#x}");
}

#[test]
fn key_rotation_keeps_the_previous_key_for_one_rotation() {
    let mut c = SynCookies::new(KEY);
    let isn = SeqNumber(77);
    let (cookie, _) = c.generate(t(0), &tuple(), isn, 1460);
    c.rotate(*b"cookie-key-00002");
    assert!(validate_ack(&c, t(1), &tuple(), isn, cookie).is_ok(), "previous key accepted");
    let (fresh, _) = c.generate(t(1), &tuple(), isn, 1460);
    assert_ne!(fresh, cookie);
    assert!(validate_ack(&c, t(1), &tuple(), isn, fresh).is_ok());
    c.rotate(*b"cookie-key-00003");
    assert_eq!(validate_ack(&c, t(2), &tuple(), isn, cookie), Err(CookieError::BadMac));
    assert!(validate_ack(&c, t(2), &tuple(), isn, fresh).is_ok());
}

const CLIENT: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);

#[test]
fn tfo_cookie_validates_only_for_its_client() {
    let jar = TfoCookieJar::new(KEY);
    let cookie = jar.generate(CLIENT);
    assert_eq!(cookie.as_bytes().len(), 8);
    assert!(!cookie.is_request());
    let now = Instant::from_millis(1);
    assert!(jar.validate(now, CLIENT, &cookie));
    assert!(!jar.validate(now, Ipv4Address::new(198, 18, 0, 3), &cookie));
    let mut forged = [0u8; 8];
    forged.copy_from_slice(cookie.as_bytes());
    forged[7] ^= 0x80;
    assert!(!jar.validate(now, CLIENT, &FastOpenCookie::new(&forged).unwrap()));
    assert!(!jar.validate(now, CLIENT, &FastOpenCookie::new(&[]).unwrap()), "a request");
    let short = FastOpenCookie::new(&cookie.as_bytes()[..4]).unwrap();
    assert!(!jar.validate(now, CLIENT, &short), "a truncated cookie");
    assert_ne!(TfoCookieJar::new(*b"a-different-key!").generate(CLIENT), cookie);
}

#[test]
fn tfo_rotation_accepts_old_cookies_for_the_grace_period_only() {
    let mut jar = TfoCookieJar::with_grace(KEY, Duration::from_secs(60));
    let old = jar.generate(CLIENT);
    let rotated_at = Instant::from_millis(10_000);
    jar.rotate(*b"cookie-key-00002", rotated_at);
    let new = jar.generate(CLIENT);
    assert_ne!(old, new);
    assert!(jar.validate(rotated_at + Duration::from_secs(59), CLIENT, &old));
    assert!(!jar.validate(rotated_at + Duration::from_secs(60), CLIENT, &old));
    assert!(jar.validate(rotated_at + Duration::from_secs(3_600), CLIENT, &new));
    assert!(!jar.validate(rotated_at, Ipv4Address::new(198, 18, 9, 9), &old));
}

#[test]
fn tfo_client_cache_is_a_bounded_lru() {
    let mut cache = TfoClientCache::new(3);
    let server = |n: u8| Ipv4Address::new(198, 18, 2, n);
    let cookie = |n: u8| FastOpenCookie::new(&[n; 8]).unwrap();
    for n in 1..=3 {
        cache.store(server(n), cookie(n), 1460);
    }
    assert_eq!(cache.get(server(1)).map(|c| c.cookie), Some(cookie(1)), "touch 1: 2 is LRU");
    cache.store(server(4), cookie(4), 8960);
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get(server(2)), None, "evicted");
    assert_eq!(cache.get(server(4)).map(|c| c.mss), Some(8960));
    cache.store(server(1), cookie(9), 1400);
    assert_eq!(cache.get(server(1)).map(|c| (c.cookie, c.mss)), Some((cookie(9), 1400)));
    assert_eq!(cache.len(), 3, "replacing does not grow");
    assert!(cache.forget(server(1)));
    assert!(!cache.forget(server(1)));
    assert_eq!(cache.get(server(1)), None);
    let mut none = TfoClientCache::new(0);
    none.store(server(1), cookie(1), 1460);
    assert!(none.is_empty());
}
