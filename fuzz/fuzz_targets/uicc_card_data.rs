//! Fuzzes the parsers of card data: AUTHENTICATE command and response fields, EF_GBABP
//! and EF_IMPI content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_uicc::authenticate::{parse_request, parse_response, P2_3G, P2_GBA};
use seccf_uicc::ef::{parse_impi, Gbabp};

fuzz_target!(|data: &[u8]| {
    for p2 in [P2_3G, P2_GBA, 0x00] {
        let _ = parse_request(p2, data);
    }
    let _ = parse_response(data);
    if let Ok(Some(g)) = Gbabp::parse(data) {
        if let Ok(enc) = g.encode() {
            assert!(data.starts_with(&enc));
        }
    }
    let _ = parse_impi(data);
});
