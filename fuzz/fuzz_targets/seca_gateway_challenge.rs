//! Fuzzes the agent's choice of a GBA Digest challenge among a 401's
//! `WWW-Authenticate` values (input: values separated by newlines; the first line is
//! the host the request went to).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_seca::gateway::digest::{select_gba_challenge, GBA_REALM_PREFIX};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let host = lines.next().unwrap_or("");
    if let Ok(c) = select_gba_challenge(lines, host) {
        let fqdn = c.realm.strip_prefix(GBA_REALM_PREFIX).expect("a GBA realm");
        assert!(fqdn.eq_ignore_ascii_case(host));
        assert!(!c.algorithm.is_aka());
    }
});
