//! Backend-neutral column codecs, input checks and sealing of record secrets.
//!
//! Every backend stores the same column values: secrets as sealed blobs, the GBA type as
//! its `GBA_ME`/`GBA_U` name, lists as bounded JSON text. Keeping the encoding here means
//! the SQLite and PostgreSQL backends agree byte for byte and share one set of decoders,
//! which are public so the fuzz target can reach them. Decoders treat their input as
//! untrusted (a database file can be edited) and return [`StoreError::Corrupt`], never
//! panic.

use seccf_gba::GbaType;
use seccf_secret::{MasterKey, Secret};

use crate::{
    BootstrapContext, NafRecord, PendingChallenge, StoreError, Subscriber, UserSecuritySettings,
    MAX_BTID_LEN, MAX_CHALLENGE_TEXT_LEN, MAX_FQDN_LEN, MAX_IMPI_LEN, MAX_NAF_FQDNS,
    MAX_NAF_NAME_LEN, MAX_NONCE_LEN, MAX_SQN, MAX_USS_ENTRIES, MAX_USS_ENTRY_LEN,
};

/// Largest stored user-security-settings JSON accepted by [`decode_uss`]. Entries carry
/// no control characters, so escaping at most doubles them; this bounds the worst case.
pub const MAX_USS_JSON_LEN: usize = 3 * MAX_USS_ENTRIES * (2 * MAX_USS_ENTRY_LEN + 3) + 64;
/// Largest stored FQDN-list JSON accepted by [`decode_fqdns`].
pub const MAX_FQDNS_JSON_LEN: usize = MAX_NAF_FQDNS * (MAX_FQDN_LEN + 3) + 2;

/// Version prefix of every associated-data string; bump it if the layout changes.
const AAD_PREFIX: &str = "seccf/v1/";

/// Associated data binding a sealed value to `table`, `column` and the row's fields:
/// `"seccf/v1/" table "/" column "/"` then each field as a 4-byte big-endian length and
/// its bytes. The length prefixes keep `("ab","c")` and `("a","bc")` distinct.
pub fn aad(table: &str, column: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        AAD_PREFIX.len()
            + table.len()
            + column.len()
            + 2
            + fields.iter().map(|f| f.len() + 4).sum::<usize>(),
    );
    out.extend_from_slice(AAD_PREFIX.as_bytes());
    out.extend_from_slice(table.as_bytes());
    out.push(b'/');
    out.extend_from_slice(column.as_bytes());
    out.push(b'/');
    for f in fields {
        // Every field is bounded by the input checks far below 4 GiB; saturate anyway so
        // an unchecked caller cannot make two encodings collide by wrapping.
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Sealed K and OPc of a subscriber, bound to its IMPI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSubscriber {
    /// Sealed K.
    pub k: Vec<u8>,
    /// Sealed OPc.
    pub opc: Vec<u8>,
}

fn subscriber_aad(column: &str, impi: &str) -> Vec<u8> {
    aad("subscriber", column, &[impi.as_bytes()])
}

/// Seals a subscriber's secrets.
pub fn seal_subscriber(mk: &MasterKey, s: &Subscriber) -> Result<SealedSubscriber, StoreError> {
    Ok(SealedSubscriber {
        k: mk.seal(&subscriber_aad("k", &s.impi), s.k.expose())?,
        opc: mk.seal(&subscriber_aad("opc", &s.impi), s.opc.expose())?,
    })
}

/// Opens a subscriber's K and OPc.
pub fn open_subscriber(
    mk: &MasterKey,
    impi: &str,
    sealed_k: &[u8],
    sealed_opc: &[u8],
) -> Result<(Secret<16>, Secret<16>), StoreError> {
    Ok((
        mk.open_fixed(&subscriber_aad("k", impi), sealed_k)?,
        mk.open_fixed(&subscriber_aad("opc", impi), sealed_opc)?,
    ))
}

/// Sealed XRES, CK and IK of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChallenge {
    /// Sealed XRES.
    pub xres: Vec<u8>,
    /// Sealed CK.
    pub ck: Vec<u8>,
    /// Sealed IK.
    pub ik: Vec<u8>,
}

/// The clear columns of a challenge row, which its sealed values are bound to.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeBinding<'a> {
    /// Nonce (row key).
    pub nonce: &'a str,
    /// IMPI.
    pub impi: &'a str,
    /// RAND.
    pub rand: &'a [u8; 16],
    /// Digest opaque.
    pub opaque: &'a str,
    /// Digest realm.
    pub realm: &'a str,
    /// GBA type.
    pub gba_type: GbaType,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

impl ChallengeBinding<'_> {
    // Binding every clear column, not just the key, means an edited IMPI, realm or
    // expiry in the database makes the row fail to open instead of authenticating
    // someone else or living longer.
    fn aad(&self, column: &str) -> Vec<u8> {
        aad(
            "challenge",
            column,
            &[
                self.nonce.as_bytes(),
                self.impi.as_bytes(),
                self.rand,
                self.opaque.as_bytes(),
                self.realm.as_bytes(),
                self.gba_type.as_str().as_bytes(),
                &self.expires_at.to_be_bytes(),
            ],
        )
    }
}

impl<'a> From<&'a PendingChallenge> for ChallengeBinding<'a> {
    fn from(c: &'a PendingChallenge) -> Self {
        ChallengeBinding {
            nonce: &c.nonce,
            impi: &c.impi,
            rand: &c.rand,
            opaque: &c.opaque,
            realm: &c.realm,
            gba_type: c.gba_type,
            expires_at: c.expires_at,
        }
    }
}

/// Seals a challenge's secrets.
pub fn seal_challenge(mk: &MasterKey, c: &PendingChallenge) -> Result<SealedChallenge, StoreError> {
    let b = ChallengeBinding::from(c);
    Ok(SealedChallenge {
        xres: mk.seal(&b.aad("xres"), c.xres.expose())?,
        ck: mk.seal(&b.aad("ck"), c.ck.expose())?,
        ik: mk.seal(&b.aad("ik"), c.ik.expose())?,
    })
}

/// Opens a challenge's secrets and assembles the record.
pub fn open_challenge(
    mk: &MasterKey,
    b: ChallengeBinding<'_>,
    sealed: &SealedChallenge,
) -> Result<PendingChallenge, StoreError> {
    Ok(PendingChallenge {
        xres: mk.open_fixed(&b.aad("xres"), &sealed.xres)?,
        ck: mk.open_fixed(&b.aad("ck"), &sealed.ck)?,
        ik: mk.open_fixed(&b.aad("ik"), &sealed.ik)?,
        nonce: b.nonce.to_owned(),
        impi: b.impi.to_owned(),
        rand: *b.rand,
        opaque: b.opaque.to_owned(),
        realm: b.realm.to_owned(),
        gba_type: b.gba_type,
        expires_at: b.expires_at,
    })
}

/// The clear columns of a context row, which its sealed Ks is bound to.
#[derive(Debug, Clone, Copy)]
pub struct ContextBinding<'a> {
    /// B-TID (row key).
    pub btid: &'a str,
    /// IMPI.
    pub impi: &'a str,
    /// RAND.
    pub rand: &'a [u8; 16],
    /// GBA type.
    pub gba_type: GbaType,
    /// Creation, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

impl ContextBinding<'_> {
    // An edited IMPI would hand one subscriber's Ks out under another's identity; an
    // edited expiry would extend a key's life. Both must make the row unreadable.
    fn aad(&self) -> Vec<u8> {
        aad(
            "context",
            "ks",
            &[
                self.btid.as_bytes(),
                self.impi.as_bytes(),
                self.rand,
                self.gba_type.as_str().as_bytes(),
                &self.created_at.to_be_bytes(),
                &self.expires_at.to_be_bytes(),
            ],
        )
    }
}

impl<'a> From<&'a BootstrapContext> for ContextBinding<'a> {
    fn from(c: &'a BootstrapContext) -> Self {
        ContextBinding {
            btid: &c.btid,
            impi: &c.impi,
            rand: &c.rand,
            gba_type: c.gba_type,
            created_at: c.created_at,
            expires_at: c.expires_at,
        }
    }
}

/// Seals a context's Ks.
pub fn seal_context(mk: &MasterKey, c: &BootstrapContext) -> Result<Vec<u8>, StoreError> {
    Ok(mk.seal(&ContextBinding::from(c).aad(), c.ks.expose())?)
}

/// Opens a context's Ks and assembles the record.
pub fn open_context(
    mk: &MasterKey,
    b: ContextBinding<'_>,
    sealed_ks: &[u8],
) -> Result<BootstrapContext, StoreError> {
    Ok(BootstrapContext {
        ks: mk.open_fixed(&b.aad(), sealed_ks)?,
        btid: b.btid.to_owned(),
        impi: b.impi.to_owned(),
        rand: *b.rand,
        gba_type: b.gba_type,
        created_at: b.created_at,
        expires_at: b.expires_at,
    })
}

/// Plaintext of the master-key check value each database stores on first open.
pub const KEY_CHECK_PLAINTEXT: &[u8] = b"seccf-store master key check v1";

/// Associated data of the master-key check value.
pub fn key_check_aad() -> Vec<u8> {
    aad("meta", "key_check", &[])
}

/// Opens a stored check value: `Ok` only if `mk` is the key that sealed it.
pub fn verify_key_check(mk: &MasterKey, sealed: &[u8]) -> Result<(), StoreError> {
    let opened = mk.open(&key_check_aad(), sealed)?;
    if seccf_secret::ct_eq(opened.expose(), KEY_CHECK_PLAINTEXT) {
        Ok(())
    } else {
        Err(StoreError::Corrupt(
            "master key check value has unexpected content".into(),
        ))
    }
}

// ---- input checks (values coming from callers) ----

fn check_text(value: &str, max: usize, field: &'static str) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(StoreError::Invalid(field));
    }
    Ok(())
}

fn check_time(t: i64, field: &'static str) -> Result<(), StoreError> {
    if t < 0 {
        return Err(StoreError::Invalid(field));
    }
    Ok(())
}

/// Checks an IMPI: 1..=[`MAX_IMPI_LEN`] bytes, no control characters.
pub fn check_impi(impi: &str) -> Result<(), StoreError> {
    check_text(impi, MAX_IMPI_LEN, "IMPI")
}

/// Checks an SQN against the 48-bit range.
pub fn check_sqn(sqn: u64) -> Result<(), StoreError> {
    if sqn > MAX_SQN {
        return Err(StoreError::Invalid("SQN (above 48 bits)"));
    }
    Ok(())
}

/// Checks a subscriber before it is written.
pub fn check_subscriber(s: &Subscriber) -> Result<(), StoreError> {
    check_impi(&s.impi)?;
    check_sqn(s.sqn)?;
    lifetime_to_db(s.key_lifetime_secs)?;
    check_uss(&s.uss)
}

/// Checks user security settings against the list and entry limits.
pub fn check_uss(uss: &UserSecuritySettings) -> Result<(), StoreError> {
    for list in [&uss.public_ids, &uss.flags, &uss.naf_groups] {
        if list.len() > MAX_USS_ENTRIES {
            return Err(StoreError::Invalid(
                "user security settings (too many entries)",
            ));
        }
        for entry in list {
            check_text(entry, MAX_USS_ENTRY_LEN, "user security settings entry")?;
        }
    }
    Ok(())
}

/// Checks a challenge before it is written.
pub fn check_challenge(c: &PendingChallenge) -> Result<(), StoreError> {
    check_text(&c.nonce, MAX_NONCE_LEN, "challenge nonce")?;
    check_impi(&c.impi)?;
    // opaque may legitimately be empty; only its size and characters matter.
    if c.opaque.len() > MAX_CHALLENGE_TEXT_LEN || c.opaque.chars().any(char::is_control) {
        return Err(StoreError::Invalid("challenge opaque"));
    }
    check_text(&c.realm, MAX_CHALLENGE_TEXT_LEN, "challenge realm")?;
    check_time(c.expires_at, "challenge expiry")
}

/// Checks a bootstrapping context before it is written.
pub fn check_context(c: &BootstrapContext) -> Result<(), StoreError> {
    check_text(&c.btid, MAX_BTID_LEN, "B-TID")?;
    check_impi(&c.impi)?;
    check_time(c.created_at, "context creation time")?;
    check_time(c.expires_at, "context expiry")
}

/// Checks one NAF FQDN entry: lowercase letters, digits, `-`, `_`, dots between
/// non-empty labels, and optionally a leading `*.` wildcard label.
pub fn check_fqdn(fqdn: &str) -> Result<(), StoreError> {
    const FIELD: &str = "NAF FQDN (lowercase labels, optional leading \"*.\")";
    if fqdn.is_empty() || fqdn.len() > MAX_FQDN_LEN {
        return Err(StoreError::Invalid(FIELD));
    }
    let rest = fqdn.strip_prefix("*.").unwrap_or(fqdn);
    let labels_ok = rest.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    if !labels_ok {
        return Err(StoreError::Invalid(FIELD));
    }
    Ok(())
}

/// Checks a certificate hash: exactly 64 lowercase hex digits.
pub fn check_cert_sha256(hash: &str) -> Result<(), StoreError> {
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StoreError::Invalid(
            "certificate SHA-256 (64 lowercase hex digits)",
        ));
    }
    Ok(())
}

/// Checks a NAF record before it is written.
pub fn check_naf(n: &NafRecord) -> Result<(), StoreError> {
    check_text(&n.name, MAX_NAF_NAME_LEN, "NAF name")?;
    check_cert_sha256(&n.cert_sha256)?;
    if n.fqdns.len() > MAX_NAF_FQDNS {
        return Err(StoreError::Invalid("NAF FQDN list (too many entries)"));
    }
    n.fqdns.iter().try_for_each(|f| check_fqdn(f))
}

// ---- column encoders and decoders ----

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// Encodes user security settings as JSON text. Checks them first.
pub fn encode_uss(uss: &UserSecuritySettings) -> Result<String, StoreError> {
    check_uss(uss)?;
    serde_json::to_string(uss).map_err(|_| StoreError::Invalid("user security settings"))
}

/// Decodes stored user security settings, enforcing the same limits as on write.
pub fn decode_uss(text: &str) -> Result<UserSecuritySettings, StoreError> {
    if text.len() > MAX_USS_JSON_LEN {
        return Err(corrupt("user security settings too large"));
    }
    let uss: UserSecuritySettings = serde_json::from_str(text)
        .map_err(|_| corrupt("user security settings are not valid JSON"))?;
    check_uss(&uss).map_err(|_| corrupt("user security settings exceed limits"))?;
    Ok(uss)
}

/// Encodes a NAF's FQDN list as JSON text.
pub fn encode_fqdns(fqdns: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(fqdns).map_err(|_| StoreError::Invalid("NAF FQDN list"))
}

/// Decodes a stored FQDN list, enforcing the same rules as on write.
pub fn decode_fqdns(text: &str) -> Result<Vec<String>, StoreError> {
    if text.len() > MAX_FQDNS_JSON_LEN {
        return Err(corrupt("NAF FQDN list too large"));
    }
    let list: Vec<String> =
        serde_json::from_str(text).map_err(|_| corrupt("NAF FQDN list is not valid JSON"))?;
    if list.len() > MAX_NAF_FQDNS || list.iter().any(|f| check_fqdn(f).is_err()) {
        return Err(corrupt("NAF FQDN list has an invalid entry"));
    }
    Ok(list)
}

/// Decodes a stored GBA type: exactly `GBA_ME` or `GBA_U` (what [`GbaType::as_str`] wrote).
pub fn decode_gba_type(text: &str) -> Result<GbaType, StoreError> {
    match text {
        "GBA_ME" => Ok(GbaType::Me),
        "GBA_U" => Ok(GbaType::U),
        _ => Err(corrupt("unknown GBA type")),
    }
}

/// Decodes a fixed-length blob column (AMF, RAND).
pub fn decode_array<const N: usize>(blob: &[u8], what: &str) -> Result<[u8; N], StoreError> {
    blob.try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} has the wrong length")))
}

/// Decodes a stored SQN (a non-negative integer of at most 48 bits).
pub fn decode_sqn(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v)
        .ok()
        .filter(|s| *s <= MAX_SQN)
        .ok_or_else(|| corrupt("SQN out of range"))
}

/// Encodes an SQN for an integer column. Checks the range first.
pub fn sqn_to_db(sqn: u64) -> Result<i64, StoreError> {
    check_sqn(sqn)?;
    i64::try_from(sqn).map_err(|_| StoreError::Invalid("SQN (above 48 bits)"))
}

/// Encodes a key lifetime for an integer column.
pub fn lifetime_to_db(v: Option<u64>) -> Result<Option<i64>, StoreError> {
    v.map(|secs| i64::try_from(secs).map_err(|_| StoreError::Invalid("key lifetime")))
        .transpose()
}

/// Decodes a stored key lifetime.
pub fn decode_lifetime(v: Option<i64>) -> Result<Option<u64>, StoreError> {
    v.map(|secs| u64::try_from(secs).map_err(|_| corrupt("negative key lifetime")))
        .transpose()
}

/// Decodes a stored count or flag that must be 0 or 1.
pub fn decode_bool(v: i64) -> Result<bool, StoreError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(corrupt("boolean column is neither 0 nor 1")),
    }
}

/// Runs every decoder over one input; for fuzzing and the no-panic test. The first byte
/// picks which decoder sees the rest.
pub fn decode_any(data: &[u8]) -> Result<(), StoreError> {
    let Some((&selector, rest)) = data.split_first() else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(rest);
    let int = rest
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .unwrap_or_default();
    match selector % 8 {
        0 => decode_uss(&text).map(drop),
        1 => decode_fqdns(&text).map(drop),
        2 => decode_gba_type(&text).map(drop),
        3 => decode_array::<2>(rest, "AMF").map(drop),
        4 => decode_array::<16>(rest, "RAND").map(drop),
        5 => decode_sqn(int).map(drop),
        6 => decode_lifetime(Some(int)).map(drop),
        _ => decode_bool(int).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_is_injective_over_field_boundaries() {
        assert_ne!(aad("t", "c", &[b"ab", b"c"]), aad("t", "c", &[b"a", b"bc"]));
        assert_ne!(aad("t", "c", &[b"x"]), aad("t", "d", &[b"x"]));
        assert!(aad("subscriber", "k", &[b"alice"]).starts_with(b"seccf/v1/subscriber/k/"));
    }

    #[test]
    fn uss_round_trip_and_limits() {
        let uss = UserSecuritySettings {
            public_ids: vec!["sip:alice@example.com".into(), "tel:+15551234".into()],
            flags: vec!["\"quoted\\\"".into()],
            naf_groups: vec![],
        };
        let text = encode_uss(&uss).unwrap();
        assert_eq!(decode_uss(&text).unwrap(), uss);
        assert_eq!(decode_uss("{}").unwrap(), UserSecuritySettings::default());
        assert!(matches!(
            decode_uss("{\"extra\":[]}"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(decode_uss("[1,2"), Err(StoreError::Corrupt(_))));
        let too_many = UserSecuritySettings {
            flags: vec!["f".into(); MAX_USS_ENTRIES + 1],
            ..Default::default()
        };
        assert!(matches!(encode_uss(&too_many), Err(StoreError::Invalid(_))));
        let hand_written = serde_json::to_string(&too_many).unwrap();
        assert!(matches!(
            decode_uss(&hand_written),
            Err(StoreError::Corrupt(_))
        ));
        // The worst case that passes the write checks still fits the read bound.
        let worst_entry = "\"".repeat(MAX_USS_ENTRY_LEN);
        let worst = UserSecuritySettings {
            public_ids: vec![worst_entry.clone(); MAX_USS_ENTRIES],
            flags: vec![worst_entry.clone(); MAX_USS_ENTRIES],
            naf_groups: vec![worst_entry; MAX_USS_ENTRIES],
        };
        assert_eq!(decode_uss(&encode_uss(&worst).unwrap()).unwrap(), worst);
        assert!(matches!(
            decode_uss(&" ".repeat(MAX_USS_JSON_LEN + 1)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn fqdn_rules() {
        for ok in [
            "naf.example.com",
            "*.example.com",
            "a-b_c.example",
            "localhost",
            "x1",
        ] {
            assert!(check_fqdn(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "NAF.example.com",
            "*.",
            "*",
            "a.*.example.com",
            "**.example.com",
            "a..b",
            ".a",
            "a.",
            "a b",
            "naf.exämple.com",
            &"a".repeat(64),
            &format!("{}a", "a.".repeat(127)),
        ] {
            assert!(check_fqdn(bad).is_err(), "{bad:?}");
        }
        // The longest valid entry (labels at their 63-byte limit) passes.
        let long_ok = format!(
            "*.{}.abcdefghijklmnopqrstuvwxyz0123456789ab",
            vec!["a".repeat(63); 3].join(".")
        );
        assert!(long_ok.len() <= MAX_FQDN_LEN, "{}", long_ok.len());
        assert!(check_fqdn(&long_ok).is_ok());
        let list = vec![long_ok; MAX_NAF_FQDNS];
        assert_eq!(decode_fqdns(&encode_fqdns(&list).unwrap()).unwrap(), list);
        assert!(decode_fqdns("[\"UPPER.example\"]").is_err());
    }

    #[test]
    fn cert_hash_rules() {
        assert!(check_cert_sha256(&"0a".repeat(32)).is_ok());
        assert!(check_cert_sha256(&"0A".repeat(32)).is_err());
        assert!(check_cert_sha256(&"0a".repeat(31)).is_err());
        assert!(check_cert_sha256(&"0g".repeat(32)).is_err());
    }

    #[test]
    fn scalar_decoders() {
        assert_eq!(decode_gba_type("GBA_U").unwrap(), GbaType::U);
        assert_eq!(decode_gba_type("GBA_ME").unwrap(), GbaType::Me);
        // The lenient FromStr forms are not valid storage.
        assert!(decode_gba_type("u").is_err());
        assert!(decode_sqn(-1).is_err());
        assert!(decode_sqn(1 << 48).is_err());
        assert_eq!(decode_sqn((1 << 48) - 1).unwrap(), MAX_SQN);
        assert!(sqn_to_db(MAX_SQN + 1).is_err());
        assert!(decode_array::<2>(&[1, 2, 3], "AMF").is_err());
        assert_eq!(decode_array::<2>(&[1, 2], "AMF").unwrap(), [1, 2]);
        assert!(decode_lifetime(Some(-5)).is_err());
        assert!(lifetime_to_db(Some(u64::MAX)).is_err());
        assert!(decode_bool(2).is_err());
    }

    #[test]
    fn record_seals_are_bound_to_their_rows() {
        let mk = MasterKey::new(Secret::new([9; 32]));
        let ctx = BootstrapContext {
            btid: "abc@bsf".into(),
            impi: "alice".into(),
            rand: [1; 16],
            ks: Secret::new([2; 32]),
            gba_type: GbaType::Me,
            created_at: 10,
            expires_at: 20,
        };
        let sealed = seal_context(&mk, &ctx).unwrap();
        let good = ContextBinding::from(&ctx);
        assert_eq!(open_context(&mk, good, &sealed).unwrap().ks, ctx.ks);
        let moved = ContextBinding {
            impi: "mallory",
            ..good
        };
        assert!(matches!(
            open_context(&mk, moved, &sealed),
            Err(StoreError::Seal(_))
        ));
        let extended = ContextBinding {
            expires_at: 99,
            ..good
        };
        assert!(matches!(
            open_context(&mk, extended, &sealed),
            Err(StoreError::Seal(_))
        ));

        let sub_sealed = seal_subscriber(
            &mk,
            &Subscriber {
                impi: "alice".into(),
                k: Secret::new([3; 16]),
                opc: Secret::new([4; 16]),
                amf: [0x80, 0],
                sqn: 0,
                gba_type: GbaType::U,
                key_lifetime_secs: None,
                uss: UserSecuritySettings::default(),
            },
        )
        .unwrap();
        let (k, opc) = open_subscriber(&mk, "alice", &sub_sealed.k, &sub_sealed.opc).unwrap();
        assert_eq!((k.expose(), opc.expose()), (&[3; 16], &[4; 16]));
        // K and OPc swapped between columns do not open.
        assert!(open_subscriber(&mk, "alice", &sub_sealed.opc, &sub_sealed.k).is_err());
        assert!(open_subscriber(&mk, "bob", &sub_sealed.k, &sub_sealed.opc).is_err());
    }

    /// xorshift64*: tiny deterministic generator for the no-panic test.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn decoders_never_panic_on_random_and_mutated_input() {
        let valid: Vec<Vec<u8>> = vec![
            [
                &[0u8][..],
                br#"{"public_ids":["sip:a@b"],"flags":["x"],"naf_groups":[]}"#,
            ]
            .concat(),
            [&[1u8][..], br#"["naf.example.com","*.example.org"]"#].concat(),
            [&[2u8][..], b"GBA_ME"].concat(),
            vec![3, 0x80, 0x00],
            [&[4u8][..], &[7u8; 16][..]].concat(),
            [&[5u8][..], &42i64.to_be_bytes()[..]].concat(),
        ];
        let alphabet = b"{}[]\",:\\ua0GBA_ME*.-\x00\xff";
        let mut rng = XorShift(0x5EED_CAFE_F00D_1234);
        let mut rejected = 0u32;
        for i in 0..5000u32 {
            let mut input = valid[(rng.next() % valid.len() as u64) as usize].clone();
            if i % 3 == 0 {
                // Fully random input.
                let len = (rng.next() % 64) as usize;
                input = (0..len).map(|_| rng.next() as u8).collect();
            } else {
                for _ in 0..=(rng.next() % 4) {
                    let pos = (rng.next() as usize) % (input.len() + 1);
                    let byte = alphabet[(rng.next() as usize) % alphabet.len()];
                    match rng.next() % 3 {
                        0 if pos < input.len() => input[pos] = byte,
                        1 if pos < input.len() => {
                            input.remove(pos);
                        }
                        _ => input.insert(pos, byte),
                    }
                }
            }
            if decode_any(&input).is_err() {
                rejected += 1;
            }
        }
        // The generator must actually reach the error paths, or the test proves little.
        assert!(rejected > 500, "only {rejected} inputs rejected");
        for v in &valid {
            assert!(decode_any(v).is_ok(), "{v:?}");
        }
    }
}
