//! Fuzzes the PSK identity parser that runs inside the OpenSSL PSK callback on every
//! PSK-TLS handshake (untrusted bytes, including TLS 1.3 session tickets).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::ua::parse_psk_identity;

fuzz_target!(|data: &[u8]| {
    if let Ok(btid) = parse_psk_identity(data) {
        assert!(seccf_gba::btid::parse_btid(btid).is_ok());
    }
});
