//! Fuzzes the PROXY protocol v2 decoder of the gateway (resources and tests decode what
//! the OSG's TCP tunnels send). Whatever decodes must re-encode and decode to the same
//! header, and the SSL TLV parser must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::proxy_v2::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((h, n))) = decode(data) {
        assert!(n <= data.len());
        let _ = h.ssl();
        if let Ok(again) = h.encode() {
            assert_eq!(decode(&again).ok().flatten().map(|x| x.0), Some(h));
        }
    }
});
