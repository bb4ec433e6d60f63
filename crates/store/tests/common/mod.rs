//! Test helpers shared by the integration tests: the TS 35.208 test-set-1 vector file
//! and records built from it.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use seccf_gba::GbaType;
use seccf_secret::{MasterKey, Secret};
use seccf_store::{BootstrapContext, PendingChallenge, Subscriber, UserSecuritySettings};

/// `crates/store/testdata/<name>`.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// The values of `testdata/ts35208_set1.txt`.
pub struct Vectors(HashMap<String, String>);

impl Vectors {
    pub fn load() -> Self {
        let text = std::fs::read_to_string(testdata("ts35208_set1.txt")).expect("vector file");
        let map = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("NAME = value");
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Vectors(map)
    }

    pub fn text(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from vector file"))
    }

    pub fn bytes<const N: usize>(&self, name: &str) -> [u8; N] {
        hex::decode(self.text(name))
            .expect("hex")
            .try_into()
            .unwrap_or_else(|_| panic!("{name} has the wrong length"))
    }

    pub fn master_key(&self) -> MasterKey {
        MasterKey::new(Secret::new(self.bytes("MASTER_KEY")))
    }

    pub fn sqn(&self) -> u64 {
        let b: [u8; 6] = self.bytes("SQN");
        b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
    }

    pub fn ks(&self) -> [u8; 32] {
        let mut ks = [0u8; 32];
        ks[..16].copy_from_slice(&self.bytes::<16>("CK"));
        ks[16..].copy_from_slice(&self.bytes::<16>("IK"));
        ks
    }

    pub fn btid(&self) -> String {
        let rand: [u8; 16] = self.bytes("RAND");
        format!(
            "{}@{}",
            base64::engine::general_purpose::STANDARD.encode(rand),
            self.text("BSF_DOMAIN")
        )
    }

    pub fn nonce(&self) -> String {
        let rand: [u8; 16] = self.bytes("RAND");
        let autn: [u8; 16] = self.bytes("AUTN");
        base64::engine::general_purpose::STANDARD.encode([rand, autn].concat())
    }

    pub fn subscriber(&self) -> Subscriber {
        Subscriber {
            impi: self.text("IMPI").to_owned(),
            k: Secret::new(self.bytes("K")),
            opc: Secret::new(self.bytes("OPC")),
            amf: self.bytes("AMF"),
            sqn: self.sqn(),
            gba_type: GbaType::Me,
            key_lifetime_secs: Some(3600),
            uss: UserSecuritySettings {
                public_ids: vec!["sip:+13105550100@ims.example.com".into()],
                flags: vec![],
                naf_groups: vec!["default".into()],
            },
        }
    }

    pub fn challenge(&self, expires_at: i64) -> PendingChallenge {
        PendingChallenge {
            nonce: self.nonce(),
            impi: self.text("IMPI").to_owned(),
            rand: self.bytes("RAND"),
            xres: Secret::new(self.bytes("RES")),
            ck: Secret::new(self.bytes("CK")),
            ik: Secret::new(self.bytes("IK")),
            opaque: "5ccc069c403ebaf9f0171e9517f40e41".into(),
            realm: self.text("BSF_DOMAIN").to_owned(),
            gba_type: GbaType::Me,
            expires_at,
        }
    }

    pub fn context(&self, created_at: i64, expires_at: i64) -> BootstrapContext {
        BootstrapContext {
            btid: self.btid(),
            impi: self.text("IMPI").to_owned(),
            rand: self.bytes("RAND"),
            ks: Secret::new(self.ks()),
            gba_type: GbaType::Me,
            created_at,
            expires_at,
        }
    }
}
