//! Feeds sequences of arbitrary APDUs to the software USIM (GBA_ME and GBA_U). The input
//! is split into commands by a one-octet length prefix. The card must always answer with a
//! well-formed response and never with a key it keeps to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_gba::Secret;
use seccf_uicc::apdu::Response;
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::CardTransport;

fn card(gba_u: bool) -> SoftUsim {
    SoftUsim::from_config(SoftUsimConfig {
        impi: "user@example.org".into(),
        k: Secret::new([0x46; 16]),
        opc: Secret::new([0xcd; 16]),
        amf: [0x80, 0x00],
        gba_u,
        sqn_window: None,
        delta: seccf_gba::sqn::SEQ_MAX,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut cards = [card(false), card(true)];
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (apdu, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        for c in cards.iter_mut() {
            let out = c.transmit(apdu).expect("in-memory card never fails");
            let resp = Response::parse(&out).expect("well-formed response");
            assert!(resp.data.len() <= 256);
        }
    }
});
