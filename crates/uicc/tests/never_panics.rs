//! Randomised "parser never panics" tests for every parser of the crate, and for the
//! software card fed arbitrary APDUs. Deterministic seeds; /fuzz has libFuzzer targets.

mod common;

use common::{set1_card, XorShift};
use seccf_uicc::apdu::{Command, Response};
use seccf_uicc::authenticate::{
    encode_3g, encode_gba_bootstrap, encode_naf_derivation, encode_success, encode_sync_failure,
    parse_request, parse_response, P2_3G, P2_GBA,
};
use seccf_uicc::ef::{encode_impi, parse_impi, Gbabp};
use seccf_uicc::soft::SoftUsimConfig;
use seccf_uicc::CardTransport;

const ROUNDS: usize = 5000;

#[test]
fn apdu_parsers_never_panic_and_round_trip() {
    let mut r = XorShift::new(0xa9d);
    let seeds: Vec<Vec<u8>> = vec![
        vec![0x00, 0x88, 0x00, 0x81, 0x22],
        [
            &[0x00, 0x88, 0x00, 0x81, 34][..],
            &encode_3g(&[1; 16], &[2; 16]),
            &[0],
        ]
        .concat(),
        vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0x6F, 0xD6],
        vec![0x00, 0xB0, 0x00, 0x00],
        vec![0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00],
    ];
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            let pick = r.below(seeds.len());
            r.mutate(&seeds[pick])
        } else {
            r.bytes(300)
        };
        if let Ok(c) = Command::parse(&input) {
            assert_eq!(c.encode(), input, "command round trip");
        }
        if let Ok(resp) = Response::parse(&input) {
            assert_eq!(resp.encode(), input, "response round trip");
        }
    }
}

#[test]
fn authenticate_and_file_parsers_never_panic() {
    let mut r = XorShift::new(0xdb);
    let seeds: Vec<Vec<u8>> = vec![
        encode_3g(&[1; 16], &[2; 16]),
        encode_gba_bootstrap(&[1; 16], &[2; 16]),
        encode_naf_derivation(b"naf.example.com\x01\x00\x00\x00\x02", b"a@b").unwrap(),
        encode_success(&[&[1; 8], &[2; 16], &[3; 16]]).unwrap(),
        encode_sync_failure(&[4; 14]),
        Gbabp {
            rand: [5; 16],
            btid: "BQUFBQUFBQUFBQUFBQUFBQ==@bsf.example".into(),
            lifetime: "2030-01-01T00:00:00Z".into(),
        }
        .encode()
        .unwrap(),
        encode_impi("user@example.org").unwrap(),
    ];
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            let pick = r.below(seeds.len());
            r.mutate(&seeds[pick])
        } else {
            r.bytes(300)
        };
        for p2 in [P2_3G, P2_GBA, 0x80] {
            let _ = parse_request(p2, &input);
        }
        let _ = parse_response(&input);
        if let Ok(Some(g)) = Gbabp::parse(&input) {
            // What parses re-encodes to a prefix of the input.
            let enc = g.encode().unwrap();
            assert_eq!(&input[..enc.len()], &enc[..]);
        }
        if let Ok(impi) = parse_impi(&input) {
            assert!(impi.is_ascii());
        }
    }
}

#[test]
fn soft_card_survives_random_apdus() {
    let mut r = XorShift::new(0x5c);
    let mut gba_me = set1_card(false);
    let mut gba_u = set1_card(true);
    let seeds: Vec<Vec<u8>> = vec![
        [
            &[0x00, 0x88, 0x00, 0x81, 34][..],
            &encode_3g(&[1; 16], &[2; 16]),
            &[0],
        ]
        .concat(),
        [
            &[0x00, 0x88, 0x00, 0x84, 35][..],
            &encode_gba_bootstrap(&[1; 16], &[2; 16]),
            &[0],
        ]
        .concat(),
        {
            let d = encode_naf_derivation(b"naf.example.com\x01\x00\x00\x00\x02", b"a@b").unwrap();
            [&[0x00, 0x88, 0x00, 0x84, d.len() as u8][..], &d, &[0]].concat()
        },
        vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0x6F, 0xD6],
        vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0x6F, 0x02],
        vec![0x00, 0xB0, 0x00, 0x00, 0x00],
        vec![0x00, 0xD6, 0x00, 0x00, 0x03, 0x10, 0x01, 0x02],
        vec![0x00, 0xC0, 0x00, 0x00, 0x10],
    ];
    for i in 0..ROUNDS {
        let input = if i % 3 != 0 {
            let pick = r.below(seeds.len());
            r.mutate(&seeds[pick])
        } else {
            r.bytes(270)
        };
        for card in [&mut gba_me, &mut gba_u] {
            let out = card.transmit(&input).expect("in-memory card never fails");
            let resp = Response::parse(&out).expect("card output is a response APDU");
            assert!(resp.data.len() <= 256);
        }
    }
}

#[test]
fn config_parser_never_panics() {
    let mut r = XorShift::new(0xc0f);
    let seed = std::fs::read(common::testdata("soft_usim_set1.toml")).unwrap();
    for i in 0..1000 {
        let input = if i % 2 == 0 {
            r.mutate(&seed)
        } else {
            r.bytes(400)
        };
        let _ = SoftUsimConfig::from_toml_str(&String::from_utf8_lossy(&input));
    }
}
