//! Fuzzes the GBA key file parser of the load generator (seccf-load). A file that
//! parses must encode and parse back to the same B-TID, FQDN and keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_load::keyfile::{GbaKeys, MAX_KEYS, MAX_KEY_FILE_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = GbaKeys::from_json(data) else {
        return;
    };
    assert!(data.len() <= MAX_KEY_FILE_LEN);
    assert!(keys.ua_ids().count() <= MAX_KEYS);
    let Ok(text) = keys.to_json() else {
        return;
    };
    let back = GbaKeys::from_json(text.as_bytes()).expect("own output parses");
    assert_eq!(back.btid(), keys.btid());
    assert_eq!(back.fqdn(), keys.fqdn());
    for ua in keys.ua_ids() {
        let (a, b) = (keys.key(ua), back.key(ua));
        assert!(a.is_some() && a.map(|k| *k.expose()) == b.map(|k| *k.expose()));
    }
});
