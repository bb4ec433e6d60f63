//! The GBA key file shared by one benchmark run: one B-TID and its Ks_NAF for each Ua
//! security protocol id the gateway scenarios use.
//!
//! Why a file: the peers (stunnel) are configured with the PSK before any load runs,
//! and every `seccf-load` invocation of a run must present the same B-TID with the same
//! keys, so the dev subscriber bootstraps once (`seccf-load gba-keys`) and the later
//! runs read the result. The file holds test keys of the dev subscriber; it is written
//! with mode 0600 into the run's temporary directory and deleted with it.
//!
//! Format (JSON, written and read only by this tool):
//!
//! ```json
//! {"btid": "…@bsf.seccf.test", "fqdn": "localhost", "expires_at": 1700000000,
//!  "keys": [{"ua": "01000100a8", "ks_naf": "<64 hex digits>"}]}
//! ```
//!
//! Parsing is bounded ([`MAX_KEY_FILE_LEN`], [`MAX_KEYS`]) and checks the B-TID form,
//! the Ua ids and the key lengths; errors never contain key material.

use seccf_gba::btid::parse_btid;
use seccf_gba::naf::UaSecurityProtocolId;
use seccf_secret::Secret;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Largest key file accepted.
pub const MAX_KEY_FILE_LEN: usize = 16 * 1024;
/// Most keys in one file (a handful of Ua ids are used).
pub const MAX_KEYS: usize = 16;
/// Longest FQDN accepted (RFC 1035 text form).
pub const MAX_FQDN_LEN: usize = 253;
/// Prefix of the PSK identity: TS 24.109 §5.3.3 / Annex F, then the B-TID.
pub const PSK_IDENTITY_PREFIX: &str = "3GPP-bootstrapping.";

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Larger than [`MAX_KEY_FILE_LEN`].
    #[error("key file larger than {MAX_KEY_FILE_LEN} bytes")]
    TooLong,
    /// Not the JSON shape above (serde's message names the place, never a value).
    #[error("key file is not valid: {0}")]
    Json(String),
    /// The B-TID is not of the form base64(RAND)@domain.
    #[error("key file: the B-TID is malformed")]
    Btid,
    /// The FQDN is empty or too long.
    #[error("key file: the FQDN is empty or longer than {MAX_FQDN_LEN} bytes")]
    Fqdn,
    /// No keys, or more than [`MAX_KEYS`].
    #[error("key file: between 1 and {MAX_KEYS} keys expected")]
    KeyCount,
    /// A Ua id is not 10 hex digits.
    #[error("key file: Ua id #{0} is not 10 hex digits")]
    UaId(usize),
    /// A key is not 64 hex digits.
    #[error("key file: key #{0} is not 64 hex digits")]
    Key(usize),
    /// The same Ua id twice.
    #[error("key file: Ua id #{0} is listed twice")]
    Duplicate(usize),
}

/// One B-TID and its NAF keys.
pub struct GbaKeys {
    btid: String,
    fqdn: String,
    expires_at: i64,
    keys: Vec<(UaSecurityProtocolId, Secret<32>)>,
}

impl std::fmt::Debug for GbaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbaKeys")
            .field("btid", &self.btid)
            .field("fqdn", &self.fqdn)
            .field("expires_at", &self.expires_at)
            .field(
                "ua_ids",
                &self
                    .keys
                    .iter()
                    .map(|(u, _)| u.to_hex())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    btid: String,
    fqdn: String,
    expires_at: i64,
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    ua: String,
    ks_naf: Zeroizing<String>,
}

#[derive(Serialize)]
struct OutFile<'a> {
    btid: &'a str,
    fqdn: &'a str,
    expires_at: i64,
    keys: Vec<OutKey>,
}

#[derive(Serialize)]
struct OutKey {
    ua: String,
    ks_naf: Zeroizing<String>,
}

impl GbaKeys {
    /// A key set; the same checks as [`GbaKeys::from_json`].
    pub fn new(
        btid: &str,
        fqdn: &str,
        expires_at: i64,
        keys: Vec<(UaSecurityProtocolId, Secret<32>)>,
    ) -> Result<Self, KeyFileError> {
        parse_btid(btid).map_err(|_| KeyFileError::Btid)?;
        if fqdn.is_empty() || fqdn.len() > MAX_FQDN_LEN {
            return Err(KeyFileError::Fqdn);
        }
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(KeyFileError::KeyCount);
        }
        for (i, (ua, _)) in keys.iter().enumerate() {
            if keys.iter().take(i).any(|(u, _)| u == ua) {
                return Err(KeyFileError::Duplicate(i));
            }
        }
        Ok(GbaKeys {
            btid: btid.to_owned(),
            fqdn: fqdn.to_ascii_lowercase(),
            expires_at,
            keys,
        })
    }

    /// Parses a key file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyFileError> {
        if bytes.len() > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::TooLong);
        }
        // serde_json's messages quote at most a few characters of the input around the
        // error position, which could be key digits: keep only the location.
        let raw: RawFile = serde_json::from_slice(bytes).map_err(|e| {
            KeyFileError::Json(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if raw.keys.is_empty() || raw.keys.len() > MAX_KEYS {
            return Err(KeyFileError::KeyCount);
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (i, k) in raw.keys.iter().enumerate() {
            let ua = UaSecurityProtocolId::from_hex(&k.ua).map_err(|_| KeyFileError::UaId(i))?;
            // Exactly 64 digits: Secret::from_hex would also accept surrounding spaces.
            if k.ks_naf.len() != 64 {
                return Err(KeyFileError::Key(i));
            }
            let key = Secret::<32>::from_hex(&k.ks_naf).ok_or(KeyFileError::Key(i))?;
            keys.push((ua, key));
        }
        GbaKeys::new(&raw.btid, &raw.fqdn, raw.expires_at, keys)
    }

    /// The file text (contains the keys: a zeroizing string).
    pub fn to_json(&self) -> Result<Zeroizing<String>, KeyFileError> {
        let out = OutFile {
            btid: &self.btid,
            fqdn: &self.fqdn,
            expires_at: self.expires_at,
            keys: self
                .keys
                .iter()
                .map(|(ua, k)| OutKey {
                    ua: ua.to_hex(),
                    ks_naf: k.reveal_hex(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&out)
            .map(Zeroizing::new)
            .map_err(|e| KeyFileError::Json(format!("{:?}", e.classify())))
    }

    /// The B-TID.
    pub fn btid(&self) -> &str {
        &self.btid
    }

    /// The NAF FQDN the keys were derived for.
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }

    /// Expiry of the bootstrapping context (unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `3GPP-bootstrapping.<B-TID>`.
    pub fn psk_identity(&self) -> String {
        format!("{PSK_IDENTITY_PREFIX}{}", self.btid)
    }

    /// Ks_NAF for `ua`, if the file has it.
    pub fn key(&self, ua: &UaSecurityProtocolId) -> Option<&Secret<32>> {
        self.keys.iter().find(|(u, _)| u == ua).map(|(_, k)| k)
    }

    /// The Ua ids present, in file order.
    pub fn ua_ids(&self) -> impl Iterator<Item = &UaSecurityProtocolId> {
        self.keys.iter().map(|(u, _)| u)
    }

    /// One line of a stunnel `PSKsecrets` file (`IDENTITY:HEXKEY`, stunnel(8)) for the
    /// key of `ua`, newline included.
    pub fn stunnel_psk_line(&self, ua: &UaSecurityProtocolId) -> Option<Zeroizing<String>> {
        let key = self.key(ua)?;
        Some(Zeroizing::new(format!(
            "{}:{}\n",
            self.psk_identity(),
            key.reveal_hex().as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTID: &str = "AAECAwQFBgcICQoLDA0ODw==@bsf.seccf.test";

    fn sample() -> GbaKeys {
        GbaKeys::new(
            BTID,
            "LocalHost",
            1_700_000_000,
            vec![
                (
                    UaSecurityProtocolId::tls_3gpp(0x00a8),
                    Secret::new([0x11; 32]),
                ),
                (
                    UaSecurityProtocolId::TLS13_SHARED_KEY,
                    Secret::new([0x22; 32]),
                ),
            ],
        )
        .expect("valid key set")
    }

    #[test]
    fn round_trips_and_finds_keys_by_ua_id() {
        let text = sample().to_json().expect("encodes");
        let k = GbaKeys::from_json(text.as_bytes()).expect("parses");
        assert_eq!(k.btid(), BTID);
        assert_eq!(k.fqdn(), "localhost");
        assert_eq!(k.expires_at(), 1_700_000_000);
        assert_eq!(
            k.key(&UaSecurityProtocolId::tls_3gpp(0x00a8))
                .map(|s| *s.expose()),
            Some([0x11; 32])
        );
        assert_eq!(
            k.key(&UaSecurityProtocolId::TLS13_SHARED_KEY)
                .map(|s| *s.expose()),
            Some([0x22; 32])
        );
        assert!(k.key(&UaSecurityProtocolId::HTTP_DIGEST).is_none());
        assert_eq!(k.psk_identity(), format!("3GPP-bootstrapping.{BTID}"));
    }

    #[test]
    fn stunnel_line_is_identity_colon_hex() {
        let k = sample();
        let line = k
            .stunnel_psk_line(&UaSecurityProtocolId::TLS13_SHARED_KEY)
            .expect("key present");
        assert_eq!(
            line.as_str(),
            format!("3GPP-bootstrapping.{BTID}:{}\n", "22".repeat(32))
        );
        assert!(k.stunnel_psk_line(&UaSecurityProtocolId::GPL).is_none());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let dbg = format!("{:?}", sample());
        assert!(dbg.contains("01000100a8"), "{dbg}");
        assert!(!dbg.contains("1111"), "{dbg}");
        assert!(!dbg.contains("2222"), "{dbg}");
    }

    #[test]
    fn bad_files_are_refused_without_echoing_keys() {
        let good = sample().to_json().expect("encodes");
        let cases: Vec<(String, KeyFileError)> = vec![
            (good.replace(BTID, "not-a-btid"), KeyFileError::Btid),
            (
                good.replace("01000100a8", "01000100"),
                KeyFileError::UaId(0),
            ),
            (
                good.replace(&"11".repeat(32), &"11".repeat(31)),
                KeyFileError::Key(0),
            ),
            (
                good.replace(&"22".repeat(32), &format!("{}zz", "22".repeat(31))),
                KeyFileError::Key(1),
            ),
            (
                good.replace("0100000007", "01000100a8"),
                KeyFileError::Duplicate(1),
            ),
            (good.replace("\"localhost\"", "\"\""), KeyFileError::Fqdn),
        ];
        for (text, want) in cases {
            assert_eq!(
                GbaKeys::from_json(text.as_bytes()).map(|_| ()),
                Err(want.clone()),
                "{want}"
            );
        }
        let no_keys = format!(r#"{{"btid":"{BTID}","fqdn":"localhost","expires_at":1,"keys":[]}}"#);
        assert_eq!(
            GbaKeys::from_json(no_keys.as_bytes()).map(|_| ()),
            Err(KeyFileError::KeyCount)
        );
        // A syntax error right inside a key: the message must not carry the digits.
        let broken = good.replace(&"11".repeat(32), &format!("{}\"x", "11".repeat(32)));
        let err = GbaKeys::from_json(broken.as_bytes())
            .map(|_| ())
            .expect_err("broken JSON");
        assert!(!err.to_string().contains("1111"), "{err}");
        assert_eq!(
            GbaKeys::from_json(&vec![b' '; MAX_KEY_FILE_LEN + 1]).map(|_| ()),
            Err(KeyFileError::TooLong)
        );
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Mutations of a valid file and random bytes: never a panic.
    #[test]
    fn parser_never_panics() {
        let good = sample().to_json().expect("encodes");
        let seed = good.as_bytes();
        let alphabet = b"{}[]\":,0123456789abcdefz@=. \n\\";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let input: Vec<u8> = if round % 3 == 0 {
                let len = (rng.next() % 200) as usize;
                (0..len).map(|_| (rng.next() & 0xff) as u8).collect()
            } else {
                let mut v = seed.to_vec();
                for _ in 0..(1 + rng.next() % 4) {
                    let pos = (rng.next() as usize) % (v.len() + 1);
                    let b = alphabet[(rng.next() as usize) % alphabet.len()];
                    if rng.next() % 2 == 0 && pos < v.len() {
                        v[pos] = b;
                    } else {
                        v.insert(pos, b);
                    }
                }
                v
            };
            let _ = GbaKeys::from_json(&input);
        }
    }
}
