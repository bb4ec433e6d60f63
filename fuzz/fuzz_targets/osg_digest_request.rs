//! Fuzzes the gateway's Digest front stage: an arbitrary `Authorization` value and
//! request target through `DigestEngine::begin`, and for GBA credentials the key stage
//! with a fixed key (no network).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use seccf_osg::digest_auth::{Begin, DigestEngine};
use seccf_osg::keys::NafKeys;
use seccf_secret::Secret;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (auth, target) = text.split_once('\n').unwrap_or((&text, "/"));
    let Ok(engine) = DigestEngine::new("naf.example.org", Some("seccf@naf".into()), 300) else {
        return;
    };
    match engine.begin(Some(auth), target, 1_800_000_000) {
        Begin::NeedGbaKey(p) => {
            let keys = Arc::new(NafKeys {
                me_key: Secret::new([1; 32]),
                expires_at: 1_900_000_000,
                impi: "impi".into(),
                ue_ids: vec![],
                flags: vec![],
            });
            let _ = engine.finish_gba(p, Ok(keys), "GET", b"", 1_800_000_000);
        }
        Begin::User(p) => {
            let _ = engine.finish_user(p, None, "GET", b"", 1_800_000_000);
        }
        Begin::Done(_) => {}
    }
});
