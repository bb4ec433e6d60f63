//! Fuzzes the NAF_Id parsers: the octet form (Zn NAF-Id, the GBA_U NAF derivation
//! command), the FQDN validation and the hex form of the Ua security protocol id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_gba::naf::{NafId, UaSecurityProtocolId, MAX_NAF_ID_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = NafId::from_bytes(data) {
        let b = n.to_bytes();
        assert!(b.len() <= MAX_NAF_ID_LEN);
        assert_eq!(b.len(), data.len());
        assert_eq!(NafId::from_bytes(&b).as_ref(), Ok(&n));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = NafId::new(text, UaSecurityProtocolId::HTTP_DIGEST) {
        assert_eq!(n.fqdn, text.to_ascii_lowercase());
    }
    if let Ok(id) = UaSecurityProtocolId::from_hex(text) {
        assert_eq!(id.to_hex(), text.to_ascii_lowercase());
    }
});
