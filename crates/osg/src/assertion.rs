//! The signed identity assertion sent to resources (`X-Seccf-Assertion`): a compact
//! JWS (RFC 7515) with ES256 (RFC 7518 §3.4: ECDSA P-256 + SHA-256, signature = R ‖ S,
//! 32 octets each), and its verification against a JWKS (RFC 7517).
//!
//! Claims (RFC 7519 names where one exists):
//!
//! | claim | meaning |
//! |---|---|
//! | `iss` | configured issuer (e.g. `https://naf.example.org`) |
//! | `sub` | the asserted identity (same value as `X-3GPP-Asserted-Identity`) |
//! | `aud` | the upstream authority (`host:port` of the resource) |
//! | `iat`, `exp` | issue time and expiry (iat + ttl), unix seconds |
//! | `jti` | 128 random bits, base64url |
//! | `amr` | `["psk-tls"]`, `["digest"]` or `["mtls"]` |
//! | `btid-hash` | base64url(SHA-256(B-TID)) for GBA methods: lets a resource tell bootstrapping sessions apart without learning the B-TID (a bearer-like identifier) |
//!
//! The key id is the RFC 7638 JWK thumbprint. Hand-written on OpenSSL rather than a JOSE
//! crate because only one algorithm is needed in each direction and OpenSSL is already
//! the TLS stack; the verifier accepts `alg = ES256` only, never `none`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest compact JWS [`verify_assertion`] looks at.
pub const MAX_JWT_LEN: usize = 8 * 1024;
/// Longest JWKS document [`verify_assertion`] parses.
pub const MAX_JWKS_LEN: usize = 64 * 1024;
/// Most keys considered in a JWKS.
pub const MAX_JWKS_KEYS: usize = 16;
/// Clock skew tolerated when checking `iat` and `exp`.
pub const LEEWAY_SECS: i64 = 10;

/// Assertion signing and verification failures. Messages carry no token content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// The signing key could not be loaded or is not P-256.
    #[error("assertion key: {0}")]
    Key(String),
    /// The token is not three base64url parts, too long, or its JSON is malformed.
    #[error("assertion is malformed")]
    Malformed,
    /// `alg` is not ES256.
    #[error("assertion algorithm is not ES256")]
    Algorithm,
    /// No key in the JWKS has the token's `kid` (or the JWKS is unusable).
    #[error("no matching key in the JWKS")]
    UnknownKey,
    /// The signature does not verify.
    #[error("assertion signature does not verify")]
    BadSignature,
    /// `exp` has passed (or `iat` lies in the future).
    #[error("assertion expired or not yet valid")]
    Expired,
    /// An OpenSSL failure while signing.
    #[error("assertion signing failed: {0}")]
    Sign(String),
}

/// The claims of an assertion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Asserted identity.
    pub sub: String,
    /// Audience: the upstream authority.
    pub aud: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// base64url(SHA-256(B-TID)), for GBA methods.
    #[serde(rename = "btid-hash", default, skip_serializing_if = "Option::is_none")]
    pub btid_hash: Option<String>,
}

/// base64url(SHA-256(B-TID)), the `btid-hash` claim.
pub fn btid_hash(btid: &str) -> String {
    B64URL.encode(Sha256::digest(btid.as_bytes()))
}

/// Signs assertions with one ES256 key.
pub struct AssertionSigner {
    key: EcKey<Private>,
    kid: String,
    jwk: serde_json::Value,
    issuer: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

fn p256() -> Result<EcGroup, AssertionError> {
    EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| AssertionError::Key(e.to_string()))
}

impl AssertionSigner {
    /// Loads a P-256 private key (PEM, PKCS#8 or SEC1).
    pub fn from_pem(pem: &[u8], issuer: &str, ttl_secs: u64) -> Result<Self, AssertionError> {
        let pkey = PKey::private_key_from_pem(pem)
            .map_err(|_| AssertionError::Key("not a PEM private key".into()))?;
        let key = pkey
            .ec_key()
            .map_err(|_| AssertionError::Key("not an EC key (ES256 needs P-256)".into()))?;
        if key.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(AssertionError::Key("EC key is not on P-256".into()));
        }
        key.check_key()
            .map_err(|_| AssertionError::Key("EC key fails its consistency check".into()))?;
        Self::with_key(key, issuer, ttl_secs)
    }

    /// A fresh random key (development; replicas would each publish their own key).
    pub fn generate(issuer: &str, ttl_secs: u64) -> Result<Self, AssertionError> {
        let group = p256()?;
        let key = EcKey::generate(&group).map_err(|e| AssertionError::Key(e.to_string()))?;
        Self::with_key(key, issuer, ttl_secs)
    }

    fn with_key(key: EcKey<Private>, issuer: &str, ttl_secs: u64) -> Result<Self, AssertionError> {
        let group = p256()?;
        let mut ctx = BigNumContext::new().map_err(|e| AssertionError::Key(e.to_string()))?;
        let mut x = BigNum::new().map_err(|e| AssertionError::Key(e.to_string()))?;
        let mut y = BigNum::new().map_err(|e| AssertionError::Key(e.to_string()))?;
        key.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .map_err(|e| AssertionError::Key(e.to_string()))?;
        let pad = |b: &BigNum| {
            b.to_vec_padded(32)
                .map_err(|e| AssertionError::Key(e.to_string()))
        };
        let (x, y) = (B64URL.encode(pad(&x)?), B64URL.encode(pad(&y)?));
        // RFC 7638: members in lexicographic order, no whitespace.
        let thumb_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = B64URL.encode(Sha256::digest(thumb_input.as_bytes()));
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "use": "sig", "alg": "ES256",
        });
        Ok(AssertionSigner {
            key,
            kid,
            jwk,
            issuer: issuer.to_string(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        })
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Lifetime of issued assertions, seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The issuer placed in `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `{"keys":[…]}` with the public key.
    pub fn jwks_json(&self) -> String {
        serde_json::json!({ "keys": [self.jwk] }).to_string()
    }

    /// Builds and signs an assertion issued at `now`.
    pub fn issue(
        &self,
        sub: &str,
        aud: &str,
        amr: &str,
        btid: Option<&str>,
        now: i64,
    ) -> Result<String, AssertionError> {
        let jti = B64URL.encode(
            seccf_secret::random_array::<16>().map_err(|e| AssertionError::Sign(e.to_string()))?,
        );
        self.sign(&Claims {
            iss: self.issuer.clone(),
            sub: sub.to_string(),
            aud: aud.to_string(),
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
            jti,
            amr: vec![amr.to_string()],
            btid_hash: btid.map(btid_hash),
        })
    }

    /// Signs arbitrary claims (tests and tools).
    pub fn sign(&self, claims: &Claims) -> Result<String, AssertionError> {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let payload =
            serde_json::to_vec(claims).map_err(|e| AssertionError::Sign(e.to_string()))?;
        let mut out = B64URL.encode(header.to_string());
        out.push('.');
        out.push_str(&B64URL.encode(payload));
        let digest = Sha256::digest(out.as_bytes());
        let sig =
            EcdsaSig::sign(&digest, &self.key).map_err(|e| AssertionError::Sign(e.to_string()))?;
        let mut rs = sig
            .r()
            .to_vec_padded(32)
            .map_err(|e| AssertionError::Sign(e.to_string()))?;
        rs.extend(
            sig.s()
                .to_vec_padded(32)
                .map_err(|e| AssertionError::Sign(e.to_string()))?,
        );
        out.push('.');
        out.push_str(&B64URL.encode(rs));
        Ok(out)
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

fn public_key(jwk: &serde_json::Value) -> Option<EcKey<Public>> {
    if jwk.get("kty")?.as_str()? != "EC" || jwk.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    let coord = |name: &str| -> Option<BigNum> {
        let raw = B64URL.decode(jwk.get(name)?.as_str()?).ok()?;
        if raw.len() != 32 {
            return None;
        }
        BigNum::from_slice(&raw).ok()
    };
    let group = p256().ok()?;
    let (x, y) = (coord("x")?, coord("y")?);
    EcKey::from_public_key_affine_coordinates(&group, &x, &y).ok()
}

/// Verifies a compact JWS against `jwks_json` at unix time `now`: ES256 only, the key
/// chosen by `kid` (or the only key when the token has none), signature, `iat`/`exp`
/// with [`LEEWAY_SECS`]. The caller checks `aud` and `iss` against what it expects.
pub fn verify_assertion(jwt: &str, jwks_json: &str, now: i64) -> Result<Claims, AssertionError> {
    if jwt.len() > MAX_JWT_LEN {
        return Err(AssertionError::Malformed);
    }
    let mut parts = jwt.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed);
    };
    let header: Header = B64URL
        .decode(h64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AssertionError::Malformed)?;
    if header.alg != "ES256" {
        return Err(AssertionError::Algorithm);
    }
    let sig = B64URL.decode(s64).map_err(|_| AssertionError::Malformed)?;
    if sig.len() != 64 {
        return Err(AssertionError::BadSignature);
    }
    if jwks_json.len() > MAX_JWKS_LEN {
        return Err(AssertionError::UnknownKey);
    }
    let jwks: Jwks = serde_json::from_str(jwks_json).map_err(|_| AssertionError::UnknownKey)?;
    let candidates: Vec<&serde_json::Value> = jwks
        .keys
        .iter()
        .take(MAX_JWKS_KEYS)
        .filter(
            |k| match (&header.kid, k.get("kid").and_then(|v| v.as_str())) {
                (Some(want), Some(have)) => want == have,
                (None, _) => true,
                (Some(_), None) => false,
            },
        )
        .collect();
    let jwk = match candidates.as_slice() {
        [one] => *one,
        _ => return Err(AssertionError::UnknownKey),
    };
    let key = public_key(jwk).ok_or(AssertionError::UnknownKey)?;
    let (r, s) = sig.split_at(32);
    let sig = BigNum::from_slice(r)
        .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
        .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
        .map_err(|_| AssertionError::BadSignature)?;
    let signed_len = h64.len() + 1 + p64.len();
    let signed = jwt.get(..signed_len).ok_or(AssertionError::Malformed)?;
    let digest = Sha256::digest(signed.as_bytes());
    if !sig.verify(&digest, &key).unwrap_or(false) {
        return Err(AssertionError::BadSignature);
    }
    let claims: Claims = B64URL
        .decode(p64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AssertionError::Malformed)?;
    if now > claims.exp.saturating_add(LEEWAY_SECS) || claims.iat > now.saturating_add(LEEWAY_SECS)
    {
        return Err(AssertionError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn signer() -> AssertionSigner {
        AssertionSigner::generate("https://naf.example.org", 60).unwrap()
    }

    #[test]
    fn round_trip() {
        let s = signer();
        let jwt = s
            .issue(
                "sip:alice@example.org",
                "127.0.0.1:9000",
                "digest",
                Some("btid@bsf"),
                NOW,
            )
            .unwrap();
        let c = verify_assertion(&jwt, &s.jwks_json(), NOW + 5).unwrap();
        assert_eq!(c.sub, "sip:alice@example.org");
        assert_eq!(c.aud, "127.0.0.1:9000");
        assert_eq!(c.iss, "https://naf.example.org");
        assert_eq!(c.exp, NOW + 60);
        assert_eq!(c.amr, vec!["digest".to_string()]);
        assert_eq!(c.btid_hash.as_deref(), Some(btid_hash("btid@bsf").as_str()));
        assert_eq!(
            verify_assertion(&jwt, &s.jwks_json(), NOW + 60 + LEEWAY_SECS + 1),
            Err(AssertionError::Expired)
        );
        assert_eq!(
            verify_assertion(&jwt, &s.jwks_json(), NOW - LEEWAY_SECS - 1),
            Err(AssertionError::Expired)
        );
    }

    #[test]
    fn signature_is_checked_with_openssl_der_path_too() {
        // Independent check of the JOSE R||S encoding: convert to DER and verify with
        // OpenSSL's generic verifier.
        let s = signer();
        let jwt = s.issue("a", "b", "mtls", None, NOW).unwrap();
        let (signed, sig) = jwt.rsplit_once('.').unwrap();
        let raw = B64URL.decode(sig).unwrap();
        let der = EcdsaSig::from_private_components(
            BigNum::from_slice(&raw[..32]).unwrap(),
            BigNum::from_slice(&raw[32..]).unwrap(),
        )
        .unwrap()
        .to_der()
        .unwrap();
        let pkey = PKey::from_ec_key(s.key.clone()).unwrap();
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        v.update(signed.as_bytes()).unwrap();
        assert!(v.verify(&der).unwrap());
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused() {
        let s = signer();
        let other = signer();
        let jwt = s.issue("alice", "aud", "psk-tls", None, NOW).unwrap();
        let jwks = s.jwks_json();
        assert_eq!(
            verify_assertion(&jwt, &other.jwks_json(), NOW),
            Err(AssertionError::UnknownKey)
        );
        // Same kid, other key material: signature fails.
        let forged_jwks = other.jwks_json().replace(other.kid(), s.kid());
        assert_eq!(
            verify_assertion(&jwt, &forged_jwks, NOW),
            Err(AssertionError::BadSignature)
        );
        // Payload swapped for another one.
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let evil = B64URL.encode(
            br#"{"iss":"x","sub":"root","aud":"aud","iat":0,"exp":9999999999,"jti":"j","amr":[]}"#,
        );
        parts[1] = &evil;
        assert_eq!(
            verify_assertion(&parts.join("."), &jwks, NOW),
            Err(AssertionError::BadSignature)
        );
        // alg=none.
        let none_hdr = B64URL.encode(br#"{"alg":"none","kid":"x"}"#);
        let parts: Vec<&str> = jwt.split('.').collect();
        let t = format!("{none_hdr}.{}.", parts[1]);
        assert_eq!(
            verify_assertion(&t, &jwks, NOW),
            Err(AssertionError::Algorithm)
        );
        assert_eq!(
            verify_assertion("a.b", &jwks, NOW),
            Err(AssertionError::Malformed)
        );
        assert_eq!(
            verify_assertion(&"a".repeat(MAX_JWT_LEN + 1), &jwks, NOW),
            Err(AssertionError::Malformed)
        );
    }

    #[test]
    fn jwk_has_the_rfc7638_thumbprint_as_kid() {
        let s = signer();
        let jwks: serde_json::Value = serde_json::from_str(&s.jwks_json()).unwrap();
        let k = &jwks["keys"][0];
        let input = format!(
            "{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{}\",\"y\":\"{}\"}}",
            k["x"].as_str().unwrap(),
            k["y"].as_str().unwrap()
        );
        assert_eq!(
            k["kid"].as_str().unwrap(),
            B64URL.encode(Sha256::digest(input.as_bytes()))
        );
        assert_eq!(k["alg"], "ES256");
    }

    #[test]
    fn pem_loading() {
        let key = EcKey::generate(&p256().unwrap()).unwrap();
        let pem = key.private_key_to_pem().unwrap();
        let s = AssertionSigner::from_pem(&pem, "iss", 30).unwrap();
        let pkcs8 = PKey::from_ec_key(key)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert_eq!(
            AssertionSigner::from_pem(&pkcs8, "iss", 30).unwrap().kid(),
            s.kid()
        );
        let p384 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
        assert!(AssertionSigner::from_pem(&p384.private_key_to_pem().unwrap(), "i", 1).is_err());
        let rsa = openssl::rsa::Rsa::generate(2048)
            .unwrap()
            .private_key_to_pem()
            .unwrap();
        assert!(AssertionSigner::from_pem(&rsa, "i", 1).is_err());
        assert!(AssertionSigner::from_pem(b"garbage", "i", 1).is_err());
    }

    /// Randomized: the verifier never panics on mutated tokens and JWKS documents.
    #[test]
    fn verifier_never_panics() {
        let s = signer();
        let jwt = s.issue("alice", "aud", "digest", Some("b"), NOW).unwrap();
        let jwks = s.jwks_json();
        let mut state: u64 = 0x0bad_5eed_1234_4321;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..2000 {
            let mut t = jwt.clone().into_bytes();
            let mut k = jwks.clone().into_bytes();
            for _ in 0..(next() % 3) {
                let at = (next() as usize) % t.len();
                t[at] = b".-_aZ9{}\""[(next() % 9) as usize];
            }
            if next() % 3 == 0 {
                let at = (next() as usize) % k.len();
                k[at] = b".-_aZ9{}\""[(next() % 9) as usize];
            }
            let t = String::from_utf8_lossy(&t);
            let k = String::from_utf8_lossy(&k);
            if verify_assertion(&t, &k, NOW).is_ok() {
                accepted += 1;
            }
        }
        // Unmutated inputs (no mutation drawn) verify; most mutated ones must not.
        assert!(accepted < 2000);
    }
}
