//! Fuzzes the plain Digest users file parser of the gateway.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::users::UsersDb;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(db) = UsersDb::parse(&text, "seccf@naf.example.org") {
        assert_eq!(db.realm(), "seccf@naf.example.org");
    }
});
