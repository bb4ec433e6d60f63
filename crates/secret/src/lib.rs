//! Secret values and sealing at rest.
//!
//! Every key seccf handles (K, OPc, Ks, Ks_NAF, PSKs, master keys, passwords) lives in
//! [`Secret`] or [`SecretBytes`]: the memory is zeroized on drop, `Debug` prints
//! `Secret([REDACTED; n])`, there is no `Display` or `Serialize`, and equality is
//! constant time. Reading the bytes is explicit ([`Secret::expose`]).
//!
//! [`MasterKey`] seals values with AES-256-GCM before they are written anywhere
//! (database, agent state file). The associated data binds a ciphertext to the record
//! it belongs to, so a sealed K cannot be moved to another subscriber's row.
//!
//! This crate does no IO except reading the OS random source.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// A fixed-size secret. Zeroized on drop, redacted in `Debug`, constant-time equality.
#[derive(Clone)]
pub struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    /// Wraps key material. The caller's copy should be a temporary.
    pub fn new(bytes: [u8; N]) -> Self {
        Secret(bytes)
    }

    /// Copies from a slice; `None` when the length is not `N`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; N] = bytes.try_into().ok()?;
        Some(Secret(arr))
    }

    /// Parses hex (upper or lower case); `None` on bad hex or wrong length.
    /// The intermediate buffer is zeroized.
    pub fn from_hex(text: &str) -> Option<Self> {
        let raw = Zeroizing::new(hex::decode(text.trim()).ok()?);
        Self::from_slice(&raw)
    }

    /// Fresh random secret from the OS generator.
    pub fn random() -> Result<Self, RandomError> {
        let mut b = [0u8; N];
        fill_random(&mut b)?;
        Ok(Secret(b))
    }

    /// The key bytes. Every call site is a place where the secret is used; keep them few.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Hex of the secret, in a zeroizing string. For explicit "reveal" outputs only.
    pub fn reveal_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([REDACTED; {N}])")
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl<const N: usize> Eq for Secret<N> {}

/// A variable-length secret (passwords, PSKs, digest passwords).
#[derive(Clone, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of the buffer; it is zeroized on drop.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> From<&Secret<N>> for SecretBytes {
    fn from(s: &Secret<N>) -> Self {
        SecretBytes(s.0.to_vec())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}
impl Eq for SecretBytes {}

/// Constant-time equality of two byte strings. The lengths are not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The OS random source failed.
#[derive(Debug, thiserror::Error)]
#[error("operating system random source failed")]
pub struct RandomError;

/// Fills `buf` from the OS random source.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::getrandom(buf).map_err(|_| RandomError)
}

/// `N` random bytes (not secret material; for nonces, opaque values, RAND).
pub fn random_array<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    fill_random(&mut b)?;
    Ok(b)
}

/// Errors of sealing and opening.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The ciphertext was altered, belongs to another record, or another master key sealed it.
    #[error("sealed value failed authentication (wrong master key, wrong record, or tampered)")]
    Authentication,
    /// The sealed blob is shorter than a header or has an unknown version.
    #[error("sealed value is malformed")]
    Malformed,
    /// The master key text is not 32 bytes of hex or base64.
    #[error("master key must be 32 bytes given as 64 hex digits or base64")]
    BadMasterKey,
    /// The OS random source failed.
    #[error("operating system random source failed")]
    Random,
}

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The AES-256-GCM key that seals every secret at rest.
#[derive(Clone)]
pub struct MasterKey(Secret<32>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// From raw key bytes.
    pub fn new(key: Secret<32>) -> Self {
        MasterKey(key)
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Self, SealError> {
        Ok(MasterKey(Secret::random().map_err(|_| SealError::Random)?))
    }

    /// Parses 64 hex digits or standard base64 of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        use base64::Engine as _;
        let t = text.trim();
        if let Some(s) = Secret::<32>::from_hex(t) {
            return Ok(MasterKey(s));
        }
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| SealError::BadMasterKey)?,
        );
        Secret::from_slice(&raw)
            .map(MasterKey)
            .ok_or(SealError::BadMasterKey)
    }

    /// Hex text of the key, for writing a new key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        self.0.reveal_hex()
    }

    /// A 32-byte key for another purpose, derived as HMAC-SHA-256(master, label), so one
    /// master key can serve several uses without reusing key material across them.
    pub fn derive_subkey(&self, label: &str) -> Secret<32> {
        use hmac::{Hmac, Mac};
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(label.as_bytes());
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        Secret::new(out)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.expose().into())
    }

    /// Seals `plaintext` bound to `aad` (for example `b"subscriber.k:" + impi`).
    /// Output: version (1) ‖ nonce (12) ‖ ciphertext+tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_LEN] = random_array().map_err(|_| SealError::Random)?;
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Malformed)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value sealed with [`MasterKey::seal`] under the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, SealError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(SecretBytes::new)
            .map_err(|_| SealError::Authentication)
    }

    /// Opens a sealed fixed-size secret; a length mismatch is `Malformed`.
    pub fn open_fixed<const N: usize>(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Secret<N>, SealError> {
        let b = self.open(aad, sealed)?;
        Secret::from_slice(b.expose()).ok_or(SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new([0xAB; 16]);
        let d = format!("{s:?}");
        assert!(!d.to_lowercase().contains("ab"), "{d}");
        let b = SecretBytes::new(b"hunter2".to_vec());
        assert!(!format!("{b:?}").contains("hunter2"));
        let mk = MasterKey::new(Secret::new([7; 32]));
        assert!(!format!("{mk:?}").contains('7'));
    }

    #[test]
    fn equality() {
        assert_eq!(Secret::new([1u8; 4]), Secret::new([1u8; 4]));
        assert_ne!(Secret::new([1u8; 4]), Secret::new([1, 1, 1, 2]));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"abc", b"abc"));
    }

    #[test]
    fn seal_roundtrip_and_binding() {
        let mk = MasterKey::generate().unwrap();
        let sealed = mk.seal(b"row-1", b"secret-k").unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"secret-k"));
        assert_eq!(mk.open(b"row-1", &sealed).unwrap().expose(), b"secret-k");
        assert_eq!(mk.open(b"row-2", &sealed), Err(SealError::Authentication));
        let other = MasterKey::generate().unwrap();
        assert_eq!(
            other.open(b"row-1", &sealed),
            Err(SealError::Authentication)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(mk.open(b"row-1", &tampered), Err(SealError::Authentication));
        assert_eq!(mk.open(b"row-1", &sealed[..5]), Err(SealError::Malformed));
        // Two seals of the same value differ (random nonce).
        assert_ne!(sealed, mk.seal(b"row-1", b"secret-k").unwrap());
    }

    #[test]
    fn master_key_parsing() {
        let hex64 = "00".repeat(32);
        assert!(MasterKey::parse(&hex64).is_ok());
        assert!(MasterKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert_eq!(
            MasterKey::parse("short").unwrap_err(),
            SealError::BadMasterKey
        );
        assert!(Secret::<4>::from_hex("0011223").is_none());
    }
}
