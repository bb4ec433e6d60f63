//! Fuzzes the identity-assertion verifier (compact JWS + JWKS) that resources run on
//! the `X-Seccf-Assertion` header. The first byte chooses how the input splits into a
//! token and a JWKS document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::assertion::verify_assertion;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (jwt, jwks) = rest.split_at(at);
    let jwt = String::from_utf8_lossy(jwt);
    let jwks = String::from_utf8_lossy(jwks);
    let _ = verify_assertion(&jwt, &jwks, 1_800_000_000);
});
