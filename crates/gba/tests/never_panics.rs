//! Randomised "parser never panics" tests: random inputs and mutations of valid inputs
//! for every parser of the crate, with round-trip checks where the parser accepts.
//! Deterministic (fixed seeds); the libFuzzer targets in /fuzz go further.

mod common;

use common::XorShift;
use seccf_gba::btid::{make_btid, parse_btid};
use seccf_gba::impi::validate_impi;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};

const ROUNDS: usize = 5000;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn parse_btid_never_panics() {
    let mut r = XorShift::new(0xb71d);
    let seeds = [
        make_btid(&[0x23; 16], "bsf.mnc001.mcc001.pub.3gppnetwork.org"),
        make_btid(&[0; 16], "localhost"),
        "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example".to_owned(),
    ];
    let mut accepted = 0;
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            let pick = r.below(seeds.len());
            r.mutate(seeds[pick].as_bytes())
        } else {
            r.bytes(300)
        };
        let s = text(&input);
        if let Ok((rand, domain)) = parse_btid(&s) {
            accepted += 1;
            // Strict parsing: an accepted B-TID is exactly what make_btid produces.
            assert_eq!(make_btid(&rand, domain), s);
        }
    }
    assert!(accepted > 0, "mutations never produced a valid B-TID");
}

#[test]
fn naf_id_parsers_never_panic() {
    let mut r = XorShift::new(0x9af);
    let seed = NafId::new("naf.example.com", UaSecurityProtocolId::HTTP_DIGEST)
        .unwrap()
        .to_bytes();
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            r.mutate(&seed)
        } else {
            r.bytes(300)
        };
        if let Ok(n) = NafId::from_bytes(&input) {
            // Lower-casing the FQDN is the only normalisation; the id octets are kept.
            let (name, ua) = input.split_at(input.len() - 5);
            let mut expect = name.to_ascii_lowercase();
            expect.extend_from_slice(ua);
            assert_eq!(n.to_bytes(), expect);
        }
        let s = text(&input);
        if let Ok(n) = NafId::new(&s, UaSecurityProtocolId::GPL) {
            assert_eq!(n.fqdn, s.to_ascii_lowercase());
            assert!(n.fqdn.len() <= 253);
        }
        if let Ok(id) = UaSecurityProtocolId::from_hex(&s) {
            assert_eq!(id.to_hex(), s.to_ascii_lowercase());
        }
        let hex_seed = r.mutate(b"0100010013");
        let _ = UaSecurityProtocolId::from_hex(&text(&hex_seed));
    }
}

#[test]
fn validate_impi_never_panics() {
    let mut r = XorShift::new(0x1e1);
    let seed = b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
    let mut accepted = 0;
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            r.mutate(seed)
        } else {
            r.bytes(300)
        };
        let s = text(&input);
        if validate_impi(&s).is_ok() {
            accepted += 1;
            assert!(s.is_ascii() && s.matches('@').count() == 1);
            assert!(!s.contains(['"', '\\', ' ', ',']));
        }
    }
    assert!(accepted > 0);
}
