//! Shared helpers for the seccf-uicc API tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use seccf_gba::milenage::Milenage;
use seccf_gba::Secret;
use seccf_uicc::apdu::Command;
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::{CardError, CardTransport};

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// `key = value` lines of a testdata file.
pub fn kv(name: &str) -> HashMap<String, String> {
    std::fs::read_to_string(testdata(name))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Test set 1 values (testdata/test_set_1.txt).
pub struct Set1 {
    pub v: HashMap<String, String>,
}

impl Set1 {
    pub fn load() -> Self {
        Set1 {
            v: kv("test_set_1.txt"),
        }
    }
    pub fn get<const N: usize>(&self, key: &str) -> [u8; N] {
        h(&self.v[key])
    }
    pub fn rand(&self) -> [u8; 16] {
        self.get("rand")
    }
    pub fn autn(&self) -> [u8; 16] {
        self.get("autn")
    }
    pub fn sqn(&self) -> u64 {
        seccf_gba::sqn::from_bytes(&self.get("sqn"))
    }
}

pub fn set1_config() -> SoftUsimConfig {
    let text = std::fs::read_to_string(testdata("soft_usim_set1.toml")).unwrap();
    SoftUsimConfig::from_toml_str(&text).unwrap()
}

pub fn set1_card(gba_u: bool) -> SoftUsim {
    let mut cfg = set1_config();
    cfg.gba_u = gba_u;
    SoftUsim::from_config(cfg)
}

/// The network side's view of the same subscriber.
pub fn network_milenage() -> Milenage {
    let cfg = set1_config();
    Milenage::new(cfg.k.clone(), cfg.opc.clone())
}

pub fn secret_bytes<const N: usize>(s: &Secret<N>) -> Vec<u8> {
    s.expose().to_vec()
}

/// Records every command and response passing through.
pub struct Recorder<T> {
    pub inner: T,
    pub commands: Vec<Vec<u8>>,
    pub responses: Vec<Vec<u8>>,
}

impl<T> Recorder<T> {
    pub fn new(inner: T) -> Self {
        Recorder {
            inner,
            commands: Vec::new(),
            responses: Vec::new(),
        }
    }

    /// Whether `needle` occurs in any recorded command or response.
    pub fn saw(&self, needle: &[u8]) -> bool {
        self.commands
            .iter()
            .chain(self.responses.iter())
            .any(|m| m.windows(needle.len()).any(|w| w == needle))
    }
}

impl<T: CardTransport> CardTransport for Recorder<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        self.commands.push(command.to_vec());
        let r = self.inner.transmit(command)?;
        self.responses.push(r.clone());
        Ok(r)
    }
}

/// Behaves like a T=0 reader: case-4 commands lose their Le, so the card answers 61xx
/// and the terminal has to fetch the data with GET RESPONSE.
pub struct T0Reader<T>(pub T);

impl<T: CardTransport> CardTransport for T0Reader<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut cmd = Command::parse(command).map_err(|e| CardError::Transport(e.to_string()))?;
        if !cmd.data.is_empty() {
            cmd.le = None;
        }
        self.0.transmit(&cmd.encode())
    }
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
                    v[i] = [0x00, 0xFF, 0x10, 0x20, 0x84, 0xDB, 0xDD, 0xDE][self.below(8)];
                }
                _ => v.push(self.next() as u8),
            }
        }
        v
    }
}
