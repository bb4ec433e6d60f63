//! NonceFactory and NonceCounter through the public API, with a virtual clock.

use base64::Engine as _;
use seccf_digest::nonce::{
    NonceCounter, NonceError, NonceFactory, MAX_FUTURE_SKEW_SECS, NONCE_TEXT_LEN,
};
use seccf_secret::Secret;

const T0: u64 = 1_750_000_000;
const LIFE: u64 = 300;

fn factory() -> NonceFactory {
    NonceFactory::new(Secret::new([0x5a; 32]), LIFE)
}

#[test]
fn valid_nonce_checks_and_reports_issue_time() {
    let f = factory();
    let n = f.issue(T0, b"3GPP-bootstrapping@naf.example.com").unwrap();
    assert_eq!(n.len(), NONCE_TEXT_LEN);
    for now in [T0, T0 + 1, T0 + LIFE] {
        assert_eq!(
            f.check(&n, now, b"3GPP-bootstrapping@naf.example.com"),
            Ok(T0)
        );
    }
    // Two nonces issued in the same second differ (random part).
    assert_ne!(
        n,
        f.issue(T0, b"3GPP-bootstrapping@naf.example.com").unwrap()
    );
}

#[test]
fn stale_after_lifetime() {
    let f = factory();
    let n = f.issue(T0, b"r").unwrap();
    assert_eq!(f.check(&n, T0 + LIFE + 1, b"r"), Err(NonceError::Stale));
    assert_eq!(f.check(&n, u64::MAX, b"r"), Err(NonceError::Stale));
}

#[test]
fn future_nonce_within_skew_only() {
    let f = factory();
    let n = f.issue(T0 + MAX_FUTURE_SKEW_SECS, b"r").unwrap();
    assert_eq!(f.check(&n, T0, b"r"), Ok(T0 + MAX_FUTURE_SKEW_SECS));
    let n = f.issue(T0 + MAX_FUTURE_SKEW_SECS + 1, b"r").unwrap();
    assert_eq!(f.check(&n, T0, b"r"), Err(NonceError::Invalid));
}

#[test]
fn wrong_bound_or_key_is_invalid_not_stale() {
    let f = factory();
    let n = f.issue(T0, b"realm-a").unwrap();
    assert_eq!(f.check(&n, T0, b"realm-b"), Err(NonceError::Invalid));
    assert_eq!(f.check(&n, T0, b""), Err(NonceError::Invalid));
    let other = NonceFactory::new(Secret::new([0x5b; 32]), LIFE);
    assert_eq!(other.check(&n, T0, b"realm-a"), Err(NonceError::Invalid));
    // Even when it is also old, a foreign nonce is Invalid: the MAC is checked first.
    assert_eq!(
        other.check(&n, T0 + 10 * LIFE, b"realm-a"),
        Err(NonceError::Invalid)
    );
}

#[test]
fn every_single_bit_flip_is_detected() {
    let f = factory();
    let n = f.issue(T0, b"r").unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&n)
        .unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut t = raw.clone();
            t[i] ^= 1 << bit;
            let tampered = base64::engine::general_purpose::STANDARD.encode(&t);
            assert_eq!(
                f.check(&tampered, T0, b"r"),
                Err(NonceError::Invalid),
                "byte {i} bit {bit}"
            );
        }
    }
    // Moving the issue time forward to extend the lifetime is tampering too.
    let mut t = raw.clone();
    t[..8].copy_from_slice(&(T0 + 1000).to_be_bytes());
    let extended = base64::engine::general_purpose::STANDARD.encode(&t);
    assert_eq!(
        f.check(&extended, T0 + 1000, b"r"),
        Err(NonceError::Invalid)
    );
}

#[test]
fn malformed_text_is_invalid() {
    let f = factory();
    let n = f.issue(T0, b"r").unwrap();
    let cases = [
        String::new(),
        n[..NONCE_TEXT_LEN - 1].to_owned(),
        format!("{n}A"),
        n.replace('=', "A"),
        // Same length, non-base64 characters.
        "!".repeat(NONCE_TEXT_LEN),
        // A non-canonical spelling of the same 40 bytes: the last data character before
        // "==" carries 2 data bits and 4 unused bits; setting an unused bit keeps the
        // bytes (and so the MAC) but must still be refused, since the counter keys on text.
        {
            const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut b = n.clone().into_bytes();
            let i = NONCE_TEXT_LEN - 3;
            let v = B64.iter().position(|c| *c == b[i]).unwrap();
            assert_eq!(v & 0x0f, 0, "canonical encoding has zero unused bits");
            b[i] = B64[v | 1];
            String::from_utf8(b).unwrap()
        },
        // The Ub style nonce (base64(RAND || AUTN)) is not ours.
        "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=".to_owned(),
    ];
    for c in cases {
        if c == n {
            continue;
        }
        assert_eq!(f.check(&c, T0, b"r"), Err(NonceError::Invalid), "{c:?}");
    }
}

#[test]
fn counter_accepts_increasing_and_rejects_replay() {
    let mut c = NonceCounter::new(16, LIFE);
    assert!(c.is_empty());
    assert_eq!(c.check_and_record("n1", 1, T0), Ok(()));
    assert_eq!(c.check_and_record("n1", 1, T0), Err(NonceError::Replay));
    assert_eq!(c.check_and_record("n1", 2, T0), Ok(()));
    assert_eq!(c.check_and_record("n1", 2, T0 + 1), Err(NonceError::Replay));
    // Independent nonces have independent counts.
    assert_eq!(c.check_and_record("n2", 1, T0), Ok(()));
    assert_eq!(c.len(), 2);
    // nc 0 is never valid (counts start at 00000001).
    assert_eq!(c.check_and_record("n3", 0, T0), Err(NonceError::Replay));
    assert_eq!(c.len(), 2);
    assert_eq!(c.check_and_record("n1", u32::MAX, T0), Ok(()));
    assert_eq!(
        c.check_and_record("n1", u32::MAX, T0),
        Err(NonceError::Replay)
    );
}

#[test]
fn counter_out_of_order_is_refused() {
    // The strict reading of RFC 7616 3.4: after nc 3, a late nc 2 is a replay.
    let mut c = NonceCounter::new(16, LIFE);
    assert_eq!(c.check_and_record("n", 1, T0), Ok(()));
    assert_eq!(c.check_and_record("n", 3, T0), Ok(()));
    assert_eq!(c.check_and_record("n", 2, T0), Err(NonceError::Replay));
    assert_eq!(c.check_and_record("n", 4, T0), Ok(()));
}

#[test]
fn counter_evicts_oldest_at_capacity() {
    let mut c = NonceCounter::new(3, LIFE);
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        c.check_and_record(n, 5, T0 + i as u64).unwrap();
    }
    assert_eq!(c.len(), 3);
    c.check_and_record("d", 1, T0 + 3).unwrap();
    assert_eq!(c.len(), 3);
    // "b" and "c" are still tracked; "a" was evicted and is forgotten.
    assert_eq!(c.check_and_record("b", 5, T0 + 4), Err(NonceError::Replay));
    assert_eq!(c.check_and_record("c", 5, T0 + 4), Err(NonceError::Replay));
    assert_eq!(c.check_and_record("a", 5, T0 + 4), Ok(()));
    assert_eq!(c.len(), 3);
    assert_eq!(c.capacity(), 3);
    // Capacity 0 is clamped to 1.
    let mut one = NonceCounter::new(0, LIFE);
    one.check_and_record("x", 1, T0).unwrap();
    one.check_and_record("y", 1, T0).unwrap();
    assert_eq!(one.len(), 1);
}

#[test]
fn counter_forgets_after_lifetime() {
    let mut c = NonceCounter::new(16, LIFE);
    c.check_and_record("n", 7, T0).unwrap();
    c.check_and_record("m", 1, T0 + 200).unwrap();
    assert_eq!(
        c.check_and_record("n", 7, T0 + LIFE),
        Err(NonceError::Replay)
    );
    // One second past the lifetime "n" is gone ("m" is not); the factory calls "n"
    // stale by then, so forgetting it opens no replay.
    assert_eq!(c.check_and_record("m", 2, T0 + LIFE + 1), Ok(()));
    assert_eq!(c.len(), 1);
    assert_eq!(c.check_and_record("n", 7, T0 + LIFE + 1), Ok(()));
}

#[test]
fn counter_with_issue_times_closes_the_eviction_gap() {
    let f = factory();
    let mut c = NonceCounter::new(2, LIFE);
    let na = f.issue(T0, b"r").unwrap();
    let nb = f.issue(T0 + 1, b"r").unwrap();
    let nc_ = f.issue(T0 + 2, b"r").unwrap();
    let nd = f.issue(T0 + 3, b"r").unwrap();
    let rec = |c: &mut NonceCounter, n: &str, count: u32, now: u64| {
        let issued = f.check(n, now, b"r")?;
        c.check_and_record_issued(n, issued, count, now)
    };
    // "d" is issued before any eviction, then used late.
    assert_eq!(rec(&mut c, &na, 1, T0 + 10), Ok(()));
    assert_eq!(rec(&mut c, &nb, 1, T0 + 10), Ok(()));
    assert_eq!(rec(&mut c, &nc_, 1, T0 + 10), Ok(())); // evicts "a"
                                                       // A replay of "a" after its eviction is refused (as stale: retry with a new nonce).
    assert_eq!(rec(&mut c, &na, 1, T0 + 11), Err(NonceError::Stale));
    // "d" was issued after the evicted "a", so it is still accepted.
    assert_eq!(rec(&mut c, &nd, 1, T0 + 11), Ok(()));
    // Without issue times the gap exists (documented): this is why the variant exists.
    let mut plain = NonceCounter::new(1, LIFE);
    plain.check_and_record("a", 1, T0).unwrap();
    plain.check_and_record("b", 1, T0).unwrap();
    assert_eq!(plain.check_and_record("a", 1, T0), Ok(()));
}

#[test]
fn counter_memory_is_bounded_under_flood() {
    let mut c = NonceCounter::new(100, LIFE);
    for i in 0..10_000u32 {
        let long = format!("{i}-{}", "x".repeat(500));
        c.check_and_record(&long, 1, T0 + u64::from(i % 50))
            .unwrap();
        assert!(c.len() <= 100);
    }
    assert_eq!(c.len(), 100);
}
