//! Fuzzes route selection of the gateway: request authorities and paths are client
//! input. A canonical path must be a fixed point without "//" or dot segments, and a
//! selected route's prefix must match that canonical path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::routes::{canonical_path, prefix_matches, HostKey, RouteTable};
use seccf_osg::OsgConfig;
use std::sync::OnceLock;

const CONFIG: &str = r#"
[osg]
fqdn = "naf.example.org"
[osg.kmc]
url = "https://127.0.0.1:1"
tls = { ca_file = "/ca.pem" }
[[osg.listener]]
name = "fuzz"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = { cert_file = "/c", key_file = "/k" }
upstream = "http://127.0.0.1:1"
[[osg.listener.route]]
name = "root"
path_prefix = "/"
[[osg.listener.route]]
name = "api"
path_prefix = "/api"
[[osg.listener.route]]
name = "dir"
path_prefix = "/api/v2/"
[[osg.listener.route]]
name = "host"
host = "enabler.example.org"
path_prefix = "/a"
[[osg.listener.route]]
name = "host-port"
host = "[::1]:8443"
path_prefix = "/"
"#;

fn table() -> &'static RouteTable {
    static T: OnceLock<RouteTable> = OnceLock::new();
    T.get_or_init(|| {
        let cfg = OsgConfig::from_toml_str(CONFIG).expect("fixed configuration parses");
        let l = cfg.listeners.first().expect("one listener");
        RouteTable::from_listener(l).expect("fixed routes are valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // First line: authority; the rest: path.
    let (authority, path) = text.split_once('\n').unwrap_or(("", &text));
    let _ = HostKey::parse(authority);
    if let Ok(c) = canonical_path(path) {
        assert_eq!(canonical_path(&c).as_deref(), Ok(c.as_str()));
        assert!(!c.contains("//"));
        if let Ok(Some(r)) = table().select(Some(authority), path) {
            assert!(prefix_matches(&r.path_prefix, &c));
        }
    } else {
        assert!(table().select(Some(authority), path).is_err());
    }
});
