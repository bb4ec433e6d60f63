//! Reader for `testdata/digest_vectors.txt` (format described in that file's header).
//! Test-only; also compiled into the integration tests with `#[path]`.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;

/// The vector file, embedded at compile time.
pub const VECTORS: &str = include_str!("../testdata/digest_vectors.txt");

/// One `[name]` block.
#[derive(Debug, Clone)]
pub struct Vector {
    pub name: String,
    pub fields: BTreeMap<String, String>,
}

impl Vector {
    /// A field that the test needs; panics (in tests) with the vector name if absent.
    pub fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("vector {} has no {key}", self.name))
    }

    /// An optional field.
    pub fn opt(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// All blocks, in file order.
pub fn all() -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    for line in VECTORS.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(Vector {
                name: name.to_owned(),
                fields: BTreeMap::new(),
            });
            continue;
        }
        let (key, value) = line
            .split_once(" =")
            .unwrap_or_else(|| panic!("bad vector line: {line}"));
        let value = value.strip_prefix(' ').unwrap_or(value);
        let v = out.last_mut().expect("field before first [name]");
        let old = v.fields.insert(key.to_owned(), value.to_owned());
        assert!(old.is_none(), "duplicate {key} in {}", v.name);
    }
    out
}

/// Vectors that carry a digest `response`.
pub fn digest_vectors() -> Vec<Vector> {
    all()
        .into_iter()
        .filter(|v| v.fields.contains_key("response"))
        .collect()
}

/// Reads a file from `testdata/`.
pub fn testdata_file(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The password octets of a vector: `password` text, `password_hex`, or RES derived
/// from `xor_k`/`xor_rand` with the 3GPP XOR test algorithm (RES = K xor RAND).
pub fn password(v: &Vector) -> Vec<u8> {
    if let Some(p) = v.opt("password") {
        return p.as_bytes().to_vec();
    }
    if let Some(h) = v.opt("password_hex") {
        return hex::decode(h).expect("password_hex");
    }
    let (k, rand) = xor_k_rand(v);
    k.iter().zip(rand.iter()).map(|(a, b)| a ^ b).collect()
}

fn xor_k_rand(v: &Vector) -> (Vec<u8>, Vec<u8>) {
    let k = hex::decode(v.get("xor_k")).expect("xor_k");
    let rand = hex::decode(v.get("xor_rand")).expect("xor_rand");
    assert_eq!((k.len(), rand.len()), (16, 16));
    (k, rand)
}

/// For XOR-algorithm vectors: the nonce base64(RAND ‖ AUTN) the network would send,
/// with SQN = 0 and AMF = 0000, so the test can check the stored nonce against it.
pub fn xor_nonce(v: &Vector) -> Option<String> {
    use base64::Engine as _;
    v.opt("xor_k")?;
    let (k, rand) = xor_k_rand(v);
    let xdout: Vec<u8> = k.iter().zip(rand.iter()).map(|(a, b)| a ^ b).collect();
    let sqn = [0u8; 6];
    let amf = [0u8; 2];
    let ak = &xdout[3..9];
    let mut sqn_amf = sqn.to_vec();
    sqn_amf.extend_from_slice(&amf);
    let mac: Vec<u8> = xdout[..8]
        .iter()
        .zip(sqn_amf.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    let mut raw = rand.clone();
    raw.extend(sqn.iter().zip(ak.iter()).map(|(a, b)| a ^ b));
    raw.extend_from_slice(&amf);
    raw.extend_from_slice(&mac);
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}
