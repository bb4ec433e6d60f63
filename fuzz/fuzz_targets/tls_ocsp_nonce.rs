//! Fuzzes the OCSP nonce handling of seccf-tls: finding the nonce in a DER
//! OCSPResponse (bytes from the network) and adding one to a DER OCSPRequest. The first
//! input byte picks the target; for requests, the second byte is the nonce length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_tls::revocation::{request_with_nonce, response_nonce};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        let _ = response_nonce(rest);
    } else if let Some((&n, rest)) = rest.split_first() {
        let n = usize::from(n).min(rest.len());
        let (nonce, request) = rest.split_at(n);
        if let Ok(out) = request_with_nonce(request, nonce) {
            // A request we extended must refuse a second nonce.
            assert!(request_with_nonce(&out, &[1]).is_err());
        }
    }
});
