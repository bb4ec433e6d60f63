//! Readers for the vector files in `testdata/` (each file names its source in a header).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path(name)).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Whitespace-separated rows.
pub fn rows(name: &str) -> Vec<Vec<String>> {
    lines(name)
        .iter()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// `key = value` lines; repeated keys are collected in order.
pub fn kv(name: &str) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for l in lines(name) {
        let (k, v) = l.split_once(" = ").unwrap();
        m.entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    m
}

pub fn one<'a>(m: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
    let v = m.get(key).unwrap_or_else(|| panic!("missing {key}"));
    assert_eq!(v.len(), 1, "{key} repeated");
    &v[0]
}

pub fn h<const N: usize>(s: &str) -> [u8; N] {
    let v = hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"));
    v.try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("{s}: {} octets, want {N}", v.len()))
}

/// Big-endian 48-bit SQN from 12 hex digits.
pub fn sqn(s: &str) -> u64 {
    seccf_gba::sqn::from_bytes(&h::<6>(s))
}

/// Tiny xorshift64* PRNG for the randomised tests (deterministic, no dependency).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Flips, inserts, deletes or overwrites a few bytes of `input`.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..=self.below(3) {
            match self.below(4) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 => {
                    let i = self.below(v.len() + 1);
                    v.insert(i, self.next() as u8);
                }
                2 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v.remove(i);
                }
                _ if !v.is_empty() => {
                    let i = self.below(v.len());
                    // Bias towards the characters the parsers care about.
                    v[i] = *b"@.-=+/A0\xff\x00".get(self.below(10)).unwrap_or(&0);
                }
                _ => v.push(self.next() as u8),
            }
        }
        v
    }
}
