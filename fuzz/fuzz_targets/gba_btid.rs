//! Fuzzes the B-TID parser (the B-TID arrives from UEs in Digest usernames and PSK
//! identities). Anything accepted must be exactly what make_btid would produce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_gba::btid::{make_btid, parse_btid, MAX_BTID_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((rand, domain)) = parse_btid(text) {
        assert!(text.len() <= MAX_BTID_LEN);
        assert_eq!(make_btid(&rand, domain), text);
    }
});
