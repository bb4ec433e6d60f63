//! The bootstrapped state of the terminal and its binary record (the plaintext of
//! the sealed state file).

use seccf_gba::{GbaType, Secret};
use zeroize::Zeroizing;

use crate::error::SecaError;

/// A context is treated as expired this many seconds before its lifetime ends, so a
/// key handed to a NAF does not expire while the NAF is still looking it up.
pub const VALIDITY_MARGIN_SECS: i64 = 30;

/// Longest B-TID stored (the bound of `seccf_gba::btid::parse_btid`).
pub const MAX_BTID_LEN: usize = 256;
/// Longest IMPI stored.
pub const MAX_IMPI_LEN: usize = 255;
/// Largest context record.
pub const MAX_RECORD_LEN: usize = 4 + 1 + 1 + 8 + 16 + 1 + 32 + 2 + MAX_BTID_LEN + 2 + MAX_IMPI_LEN;

const MAGIC: &[u8; 4] = b"SCTX";
const VERSION: u8 = 1;

/// The bootstrapped state of the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapContext {
    /// The bootstrapping transaction identifier, base64(RAND)@BSF-domain.
    pub btid: String,
    /// The IMPI that bootstrapped.
    pub impi: String,
    /// RAND of the AKA run (an input of every NAF key).
    pub rand: [u8; 16],
    /// Expiry of Ks, unix seconds in the terminal's clock (corrected for the BSF's
    /// clock when the BSF sent `<currenttime>`).
    pub expires_at: i64,
    /// GBA_ME or GBA_U.
    pub gba_type: GbaType,
    /// Ks for GBA_ME; None for GBA_U (it is in the card).
    pub ks: Option<Secret<32>>,
}

impl BootstrapContext {
    /// True while at least [`VALIDITY_MARGIN_SECS`] of the lifetime remain at `now_unix`.
    pub fn is_valid(&self, now_unix: i64) -> bool {
        now_unix.saturating_add(VALIDITY_MARGIN_SECS) < self.expires_at
    }

    /// Serialises the context, Ks included, into the record that the agent seals at
    /// rest. The buffer zeroizes on drop; never write it anywhere unsealed.
    ///
    /// Layout (integers big-endian): `"SCTX"`, version 1, GBA type (0 ME, 1 U),
    /// expires_at (i64), RAND (16), Ks flag (0/1) and Ks (32) when 1, B-TID length (u16)
    /// and bytes, IMPI length (u16) and bytes.
    pub fn to_record(&self) -> Result<Zeroizing<Vec<u8>>, SecaError> {
        if self.btid.len() > MAX_BTID_LEN || self.impi.len() > MAX_IMPI_LEN {
            return Err(SecaError::State("B-TID or IMPI too long to store".into()));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_RECORD_LEN));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(match self.gba_type {
            GbaType::Me => 0,
            GbaType::U => 1,
        });
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.rand);
        match &self.ks {
            Some(ks) => {
                out.push(1);
                out.extend_from_slice(ks.expose());
            }
            None => out.push(0),
        }
        for field in [self.btid.as_bytes(), self.impi.as_bytes()] {
            // Both lengths were bounded above, far below u16::MAX.
            out.extend_from_slice(&(field.len() as u16).to_be_bytes());
            out.extend_from_slice(field);
        }
        Ok(out)
    }

    /// Parses a record written by [`BootstrapContext::to_record`]. Strict: exact
    /// length, known version, Ks present exactly for GBA_ME, UTF-8 printable strings.
    pub fn from_record(record: &[u8]) -> Result<Self, SecaError> {
        let bad = |what: &str| SecaError::State(format!("context record: {what}"));
        if record.len() > MAX_RECORD_LEN {
            return Err(bad("too long"));
        }
        let mut r = Cursor(record);
        if r.take::<4>().ok_or_else(|| bad("truncated"))? != *MAGIC {
            return Err(bad("not a context record"));
        }
        if r.take::<1>().ok_or_else(|| bad("truncated"))? != [VERSION] {
            return Err(bad("unsupported version"));
        }
        let gba_type = match r.take::<1>().ok_or_else(|| bad("truncated"))? {
            [0] => GbaType::Me,
            [1] => GbaType::U,
            _ => return Err(bad("unknown GBA type")),
        };
        let expires_at = i64::from_be_bytes(r.take::<8>().ok_or_else(|| bad("truncated"))?);
        let rand = r.take::<16>().ok_or_else(|| bad("truncated"))?;
        let ks = match r.take::<1>().ok_or_else(|| bad("truncated"))? {
            [0] => None,
            [1] => {
                let raw = Zeroizing::new(r.take::<32>().ok_or_else(|| bad("truncated"))?);
                Some(Secret::new(*raw))
            }
            _ => return Err(bad("bad Ks flag")),
        };
        if ks.is_some() != (gba_type == GbaType::Me) {
            return Err(bad("Ks must be present for GBA_ME and absent for GBA_U"));
        }
        let btid = r.string(MAX_BTID_LEN).ok_or_else(|| bad("bad B-TID"))?;
        let impi = r.string(MAX_IMPI_LEN).ok_or_else(|| bad("bad IMPI"))?;
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(BootstrapContext {
            btid,
            impi,
            rand,
            expires_at,
            gba_type,
            ks,
        })
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn string(&mut self, max: usize) -> Option<String> {
        let len = usize::from(u16::from_be_bytes(self.take::<2>()?));
        if len == 0 || len > max || len > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        let s = std::str::from_utf8(head).ok()?;
        s.bytes()
            .all(|b| b.is_ascii_graphic())
            .then(|| s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> BootstrapContext {
        BootstrapContext {
            btid: "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org".into(),
            impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org".into(),
            rand: [0x23; 16],
            expires_at: 1_735_732_800,
            gba_type: GbaType::Me,
            ks: Some(Secret::new([0xb4; 32])),
        }
    }

    #[test]
    fn validity_margin() {
        let c = me();
        assert!(c.is_valid(c.expires_at - VALIDITY_MARGIN_SECS - 1));
        assert!(!c.is_valid(c.expires_at - VALIDITY_MARGIN_SECS));
        assert!(!c.is_valid(c.expires_at + 1));
        assert!(!c.is_valid(i64::MAX));
    }

    #[test]
    fn record_round_trip() {
        let c = me();
        let rec = c.to_record().unwrap();
        assert_eq!(BootstrapContext::from_record(&rec).unwrap(), c);
        let u = BootstrapContext {
            gba_type: GbaType::U,
            ks: None,
            expires_at: -5,
            ..me()
        };
        assert_eq!(
            BootstrapContext::from_record(&u.to_record().unwrap()).unwrap(),
            u
        );
        // Ks differs → contexts differ (the comparison really covers the key).
        let other = BootstrapContext {
            ks: Some(Secret::new([0xb5; 32])),
            ..me()
        };
        assert_ne!(
            BootstrapContext::from_record(&other.to_record().unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn record_rejects_inconsistent_or_damaged_input() {
        let rec = me().to_record().unwrap();
        // Every truncation fails.
        for n in 0..rec.len() {
            assert!(
                BootstrapContext::from_record(&rec[..n]).is_err(),
                "prefix {n}"
            );
        }
        let mut trailing = rec.to_vec();
        trailing.push(0);
        assert!(BootstrapContext::from_record(&trailing).is_err());
        let mut version = rec.to_vec();
        version[4] = 2;
        assert!(BootstrapContext::from_record(&version).is_err());
        // GBA_U flag with a Ks present.
        let mut mixed = rec.to_vec();
        mixed[5] = 1;
        assert!(BootstrapContext::from_record(&mixed).is_err());
        let bad_ks = BootstrapContext { ks: None, ..me() };
        assert!(BootstrapContext::from_record(&bad_ks.to_record().unwrap()).is_err());
        let long = BootstrapContext {
            btid: "a".repeat(MAX_BTID_LEN + 1),
            ..me()
        };
        assert!(long.to_record().is_err());
    }

    #[test]
    fn record_parser_never_panics() {
        let mut state: u64 = 0xdead_beef_cafe_f00d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = me().to_record().unwrap();
        for i in 0..5000 {
            let mut buf = if i % 4 == 0 {
                (0..(next() % 400)).map(|_| next() as u8).collect()
            } else {
                valid.to_vec()
            };
            for _ in 0..(1 + next() % 3) {
                if buf.is_empty() {
                    break;
                }
                let pos = (next() % buf.len() as u64) as usize;
                match next() % 3 {
                    0 => buf[pos] = next() as u8,
                    1 => {
                        buf.remove(pos);
                    }
                    _ => buf.insert(pos, next() as u8),
                }
            }
            if let Ok(c) = BootstrapContext::from_record(&buf) {
                assert!(c.btid.len() <= MAX_BTID_LEN && c.impi.len() <= MAX_IMPI_LEN);
                assert_eq!(c.ks.is_some(), c.gba_type == GbaType::Me);
            }
        }
    }
}
