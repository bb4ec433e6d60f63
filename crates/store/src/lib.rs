//! Persistent state of the KMC (the GBA Bootstrapping Server Function).
//!
//! What it does:
//! - defines the records the KMC keeps: [`Subscriber`] (AuC data), [`PendingChallenge`]
//!   (one AKA vector handed out on Ub, waiting for the response), [`BootstrapContext`]
//!   (B-TID → Ks) and [`NafRecord`] (the gateways allowed to fetch keys over Zn);
//! - defines one [`Store`] trait with no backend-specific notions in it, so that the
//!   embedded SQLite backend ([`sqlite::SqliteStore`]) and a later PostgreSQL backend
//!   (several KMC replicas on one database) are interchangeable;
//! - seals every secret (K, OPc, XRES, CK, IK, Ks) with the [`seccf_secret::MasterKey`]
//!   before it reaches the backend, with associated data that binds the ciphertext to its
//!   table, column and row, so rows cannot be swapped or edited unnoticed;
//! - ships a backend conformance suite (`conformance`, behind the `conformance`
//!   feature) that every backend's tests run.
//!
//! What it does not do: no AKA or key derivation (that is `seccf-gba`), no policy (which
//! NAF may get which key is decided by the KMC; [`NafRecord::allows_fqdn`] is only the
//! matching rule), no clock reads (every time-dependent call takes `now`), no caching.

use std::future::Future;

use seccf_gba::GbaType;
use seccf_secret::Secret;

pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod sqlite;

/// Largest SQN value: the HE counter is a 48-bit number (TS 33.102 C.1).
pub const MAX_SQN: u64 = (1 << 48) - 1;
/// Longest IMPI accepted (an NAI; RFC 7542 suggests 253 octets are enough).
pub const MAX_IMPI_LEN: usize = 256;
/// Longest challenge nonce accepted (base64 of RAND‖AUTN is 44 characters).
pub const MAX_NONCE_LEN: usize = 256;
/// Longest B-TID accepted (base64(RAND) "@" BSF domain name).
pub const MAX_BTID_LEN: usize = 512;
/// Longest opaque or realm string of a challenge.
pub const MAX_CHALLENGE_TEXT_LEN: usize = 512;
/// Longest NAF name.
pub const MAX_NAF_NAME_LEN: usize = 128;
/// Most FQDNs one NAF record may list.
pub const MAX_NAF_FQDNS: usize = 256;
/// Longest FQDN (RFC 1035 limit in text form).
pub const MAX_FQDN_LEN: usize = 253;
/// Most entries in each list of [`UserSecuritySettings`].
pub const MAX_USS_ENTRIES: usize = 64;
/// Longest single entry of a [`UserSecuritySettings`] list.
pub const MAX_USS_ENTRY_LEN: usize = 512;
/// Default of how many bootstrapping contexts one IMPI may have at once.
pub const DEFAULT_MAX_CONTEXTS_PER_IMPI: usize = 8;

/// Subscriber (AuC data). K and OPc are sealed with the master key before they touch disk.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// IP Multimedia Private Identity; the primary key.
    pub impi: String,
    /// Subscriber key K.
    pub k: Secret<16>,
    /// OPc (operator variant key already combined with K).
    pub opc: Secret<16>,
    /// Authentication management field used in new vectors.
    pub amf: [u8; 2],
    /// HE counter: the last SQN issued (48-bit value, at most [`MAX_SQN`]).
    pub sqn: u64,
    /// GBA_ME or GBA_U.
    pub gba_type: GbaType,
    /// Per-subscriber Ks lifetime override, in seconds.
    pub key_lifetime_secs: Option<u64>,
    /// User security settings handed to NAFs with the keys.
    pub uss: UserSecuritySettings,
}

/// User security settings (GUSS content the KMC hands a NAF with a key).
///
/// Missing lists deserialize as empty; unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSecuritySettings {
    /// Public identities (IMPU, MSISDN …) of the subscriber.
    pub public_ids: Vec<String>,
    /// Service flags.
    pub flags: Vec<String>,
    /// NAF groups the subscriber belongs to.
    pub naf_groups: Vec<String>,
}

/// What listing shows (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberSummary {
    /// IMPI.
    pub impi: String,
    /// `GBA_ME` or `GBA_U`.
    pub gba_type: String,
    /// Last SQN issued.
    pub sqn: u64,
    /// AMF as four lowercase hex digits.
    pub amf: String,
    /// Ks lifetime override in seconds.
    pub key_lifetime_secs: Option<u64>,
    /// User security settings.
    pub uss: UserSecuritySettings,
}

/// A pending Ub challenge (one AV handed out, waiting for the client's response).
#[derive(Clone, Debug)]
pub struct PendingChallenge {
    /// base64(RAND‖AUTN) exactly as sent: the key.
    pub nonce: String,
    /// Whom the challenge was sent to.
    pub impi: String,
    /// RAND of the vector.
    pub rand: [u8; 16],
    /// Expected response.
    pub xres: Secret<8>,
    /// Cipher key.
    pub ck: Secret<16>,
    /// Integrity key.
    pub ik: Secret<16>,
    /// Digest `opaque` sent with the challenge.
    pub opaque: String,
    /// Digest realm sent with the challenge.
    pub realm: String,
    /// GBA type the vector was made for.
    pub gba_type: GbaType,
    /// Unix seconds after which the challenge is void.
    pub expires_at: i64,
}

/// A bootstrapping context (B-TID → Ks).
#[derive(Clone, Debug)]
pub struct BootstrapContext {
    /// Bootstrapping transaction identifier; the key.
    pub btid: String,
    /// Whose context it is.
    pub impi: String,
    /// RAND of the AKA run that made it.
    pub rand: [u8; 16],
    /// Ks = CK‖IK.
    pub ks: Secret<32>,
    /// GBA type of the run.
    pub gba_type: GbaType,
    /// Unix seconds of the bootstrap.
    pub created_at: i64,
    /// Unix seconds at which Ks expires.
    pub expires_at: i64,
}

/// A NAF (gateway) allowed to fetch keys over Zn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NafRecord {
    /// Unique name.
    pub name: String,
    /// NAF FQDNs it may ask keys for (exact, lowercase; `*.example.com` = one-label wildcard).
    pub fqdns: Vec<String>,
    /// Lowercase hex SHA-256 of its client certificate (DER); unique.
    pub cert_sha256: String,
    /// Whether the NAF understands GBA_U keys (Ks_ext_NAF/Ks_int_NAF).
    #[serde(default)]
    pub gba_u_aware: bool,
}

impl NafRecord {
    /// Whether this NAF may ask for keys for `naf_fqdn`: an exact match, or a `*.suffix`
    /// entry and `naf_fqdn` is exactly one label followed by `.suffix`. ASCII case is
    /// ignored on the asked name; the stored entries are lowercase already.
    pub fn allows_fqdn(&self, naf_fqdn: &str) -> bool {
        let asked = naf_fqdn.to_ascii_lowercase();
        self.fqdns
            .iter()
            .any(|entry| match entry.strip_prefix("*.") {
                Some(suffix) => match asked.split_once('.') {
                    // `split_once` splits at the first dot, so `label` is one label and the
                    // rest must equal the suffix exactly: `a.b.example.com` does not match
                    // `*.example.com`.
                    Some((label, rest)) => !label.is_empty() && label != "*" && rest == suffix,
                    None => false,
                },
                None => *entry == asked,
            })
    }
}

/// What [`Store::gc`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    /// Expired bootstrapping contexts deleted.
    pub contexts: u64,
    /// Expired challenges deleted.
    pub challenges: u64,
}

/// Errors of every store operation. Messages never include secrets or SQL parameters.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with the same key (or unique value) exists; names which kind.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The record the operation needs does not exist; names which kind.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A sealed value did not open: wrong master key, a row moved or edited.
    #[error("stored secret could not be opened (wrong master key or tampered row)")]
    Seal(#[from] seccf_secret::SealError),
    /// The backend failed (IO, locking, SQL); the text names the operation, never values.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A stored row does not decode (bad length, unknown enum text, oversize JSON).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The caller passed a value the store refuses (too long, SQN above 48 bits,
    /// malformed certificate hash); names which field. Added beside the agreed variants.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The KMC's persistent state.
///
/// All methods are atomic; writes are durable when the future resolves (SQLite: WAL +
/// synchronous=FULL) — an acknowledged bootstrap survives `kill -9`. Dropping a future
/// early is safe: the operation then either happened completely or not at all (for
/// [`Store::take_challenge`] that can mean a consumed challenge nobody received; the
/// client simply gets a new one).
pub trait Store: Send + Sync + 'static {
    /// Adds a subscriber. [`StoreError::AlreadyExists`] if the IMPI is taken.
    fn insert_subscriber(
        &self,
        s: &Subscriber,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces K, OPc, AMF, type, lifetime, USS, and sqn. [`StoreError::NotFound`] if
    /// there is no such IMPI. Note: the sqn written is `s.sqn` as given, so a
    /// read-modify-write races with [`Store::next_sqn`]; keep such windows short.
    fn update_subscriber(
        &self,
        s: &Subscriber,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The subscriber with its secrets opened, or `None`.
    fn get_subscriber(
        &self,
        impi: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;
    /// Every subscriber without secrets, ordered by IMPI.
    fn list_subscribers(
        &self,
    ) -> impl Future<Output = Result<Vec<SubscriberSummary>, StoreError>> + Send;
    /// Deletes a subscriber and its contexts and challenges; `false` if there was none.
    fn delete_subscriber(
        &self,
        impi: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Atomically sqn := sqn + 1 and return the new value (None if no such subscriber).
    /// Correct under concurrent callers and processes. A counter at [`MAX_SQN`] is
    /// [`StoreError::Invalid`] rather than wrapping.
    fn next_sqn(&self, impi: &str) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
    /// After a verified resync: sqn := value (unconditional). Returns false if no such subscriber.
    fn set_sqn(
        &self,
        impi: &str,
        value: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Stores a challenge. [`StoreError::AlreadyExists`] on a nonce clash,
    /// [`StoreError::NotFound`] if the subscriber does not exist (any more).
    fn put_challenge(
        &self,
        c: &PendingChallenge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Atomically remove and return the challenge (single use: a second call returns None).
    /// Expired ones (expires_at <= now) are removed and reported as None.
    fn take_challenge(
        &self,
        nonce: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<PendingChallenge>, StoreError>> + Send;
    /// Durable insert; a new context for the same IMPI does NOT delete older ones (they
    /// expire) — but at most `max_contexts_per_impi` (constructor option, default 8) are
    /// kept, by deleting the oldest inserted. [`StoreError::AlreadyExists`] on a B-TID
    /// clash, [`StoreError::NotFound`] if the subscriber does not exist (any more), so a
    /// bootstrap racing a deletion cannot leave a usable context behind.
    fn put_context(
        &self,
        c: &BootstrapContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Returns the context if it exists and expires_at > now.
    fn get_context(
        &self,
        btid: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<BootstrapContext>, StoreError>> + Send;
    /// Registers a NAF. [`StoreError::AlreadyExists`] on a name or certificate clash;
    /// [`StoreError::Invalid`] unless the hash is 64 lowercase hex digits and every FQDN
    /// is lowercase with at most a leading `*.`.
    fn put_naf(&self, n: &NafRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a NAF; `false` if there was none.
    fn delete_naf(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every NAF, ordered by name.
    fn list_nafs(&self) -> impl Future<Output = Result<Vec<NafRecord>, StoreError>> + Send;
    /// The NAF whose client certificate has this SHA-256 (hex, either case).
    fn naf_by_cert(
        &self,
        cert_sha256: &str,
    ) -> impl Future<Output = Result<Option<NafRecord>, StoreError>> + Send;
    /// Deletes expired contexts and challenges (expires_at <= now).
    fn gc(&self, now: i64) -> impl Future<Output = Result<GcStats, StoreError>> + Send;
    /// Liveness check for health endpoints.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naf(fqdns: &[&str]) -> NafRecord {
        NafRecord {
            name: "n".into(),
            fqdns: fqdns.iter().map(|s| s.to_string()).collect(),
            cert_sha256: "00".repeat(32),
            gba_u_aware: false,
        }
    }

    #[test]
    fn fqdn_matching_exact_and_one_label_wildcard() {
        let n = naf(&["naf.example.com", "*.apps.example.com"]);
        assert!(n.allows_fqdn("naf.example.com"));
        assert!(
            n.allows_fqdn("NAF.Example.COM"),
            "asked name is case-folded"
        );
        assert!(!n.allows_fqdn("other.example.com"));
        assert!(!n.allows_fqdn("naf.example.com.evil"));
        assert!(n.allows_fqdn("svc.apps.example.com"));
        assert!(
            !n.allows_fqdn("apps.example.com"),
            "wildcard needs one label"
        );
        assert!(
            !n.allows_fqdn("a.b.apps.example.com"),
            "wildcard is one label only"
        );
        assert!(!n.allows_fqdn(".apps.example.com"), "empty label");
        assert!(
            !n.allows_fqdn("*.apps.example.com"),
            "a literal star is not a label"
        );
        assert!(!naf(&[]).allows_fqdn("naf.example.com"));
    }

    #[test]
    fn uss_and_naf_serde_shapes() {
        let uss: UserSecuritySettings = serde_json::from_str(r#"{"flags":["a"]}"#).unwrap();
        assert_eq!(uss.flags, vec!["a".to_string()]);
        assert!(uss.public_ids.is_empty());
        assert!(serde_json::from_str::<UserSecuritySettings>(r#"{"flag":[]}"#).is_err());
        let n: NafRecord =
            serde_json::from_str(r#"{"name":"x","fqdns":[],"cert_sha256":"ab"}"#).unwrap();
        assert!(!n.gba_u_aware);
    }
}
