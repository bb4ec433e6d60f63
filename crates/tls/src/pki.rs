//! A small PKI for development and tests, and certificate fingerprints.
//!
//! `seccf dev` and the test suites use it to mint a CA, server leaves (with DNS/IP
//! subject alternative names) and client leaves, all ECDSA P-256 signed with SHA-256.
//! For revocation tests it can also put OCSP (AIA) and CRL distribution point URLs into
//! leaves, mint an OCSP responder certificate, and sign a CRL. It is not a production CA:
//! no intermediates, no CRL or OCSP service of its own, no key escrow policy.
//!
//! The fingerprint functions are production code: the KMC identifies a NAF (an OSG)
//! by the lowercase hex SHA-256 of the DER certificate it presents on Zn.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::CrlNumber;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509CrlBuilder, X509Extension, X509NameBuilder, X509RevokedBuilder, X509,
};
use seccf_secret::SecretBytes;

use crate::der::{self, context, tlv, tlv_of, TAG_SEQUENCE};
use crate::files;
use crate::revocation::OcspUrl;
use crate::TlsError;

/// Longest validity accepted, in days (about 100 years); keeps the arithmetic far from
/// `time_t` limits and catches a typo such as a unix timestamp passed as `days`.
pub const MAX_VALIDITY_DAYS: u32 = 36_500;
/// Upper bound of the X.520 commonName attribute (ub-common-name).
pub const MAX_COMMON_NAME_LEN: usize = 64;
/// Most subject alternative names one server certificate may carry.
pub const MAX_SANS: usize = 100;
/// Longest DNS name accepted as a SAN (RFC 1035 text form).
pub const MAX_DNS_NAME_LEN: usize = 253;

/// Certificates start one hour in the past so that a peer whose clock is a little
/// behind does not reject a certificate minted a moment ago.
const BACKDATE_SECS: i64 = 3600;
const SECS_PER_DAY: i64 = 86_400;
/// Serial numbers: 159 random bits with the top bit set, so every serial is positive,
/// exactly 20 DER octets, and unguessable (CA/B Forum asks for at least 64 random bits).
const SERIAL_BITS: i32 = 159;

/// A certificate with its private key (PEM), generated for dev/test PKI.
#[derive(Clone, Debug)]
pub struct CertifiedKey {
    /// The certificate alone (no chain), PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM, unencrypted (zeroized on drop, redacted in Debug).
    pub key_pem: SecretBytes,
    /// The certificate, DER (what fingerprints are computed over).
    pub cert_der: Vec<u8>,
}

impl CertifiedKey {
    /// Lowercase hex SHA-256 of the DER certificate (how the KMC names a NAF client).
    pub fn sha256_fingerprint(&self) -> String {
        fingerprint_der(&self.cert_der)
    }

    /// Builds a `CertifiedKey` from PEM text: the first certificate of `cert_pem` and the
    /// private key of `key_pem` (PKCS#8 or traditional, unencrypted), which must belong to
    /// that certificate. The key is re-encoded as PKCS#8.
    pub fn from_pem(cert_pem: &[u8], key_pem: &SecretBytes) -> Result<Self, TlsError> {
        let cert = first_certificate(cert_pem, "certificate PEM")?;
        let key = parse_private_key(key_pem.expose(), "private key PEM")?;
        ensure_key_matches(&cert, &key, "private key PEM")?;
        certified_key(&cert, &key).map_err(|e| TlsError::Config(format!("re-encoding PEM: {e}")))
    }

    /// The serial number as uppercase hex without leading zeros (the form OpenSSL's CA
    /// index files, `openssl ocsp -index`, use).
    pub fn serial_hex(&self) -> Result<String, TlsError> {
        let cert = self.certificate()?;
        let bn = cert
            .serial_number()
            .to_bn()
            .map_err(pki_err("serial number"))?;
        let hex = bn.to_hex_str().map_err(pki_err("serial number"))?;
        Ok(hex.to_string())
    }

    fn certificate(&self) -> Result<X509, TlsError> {
        X509::from_der(&self.cert_der).map_err(pki_err("issuer certificate"))
    }

    fn private_key(&self) -> Result<PKey<Private>, TlsError> {
        parse_private_key(self.key_pem.expose(), "issuer private key")
    }
}

/// ECDSA P-256 keys, SHA-256 signatures, serials random, validity [now-1h, now+days].
///
/// The CA may only sign end-entity certificates (pathLenConstraint 0).
pub fn generate_ca(common_name: &str, days: u32) -> Result<CertifiedKey, TlsError> {
    build(
        common_name,
        &Profile::Ca,
        None,
        Validity::days_from_now(days)?,
    )
}

/// serverAuth leaf with SANs (DNS names and IP addresses given as strings; "127.0.0.1" → IP SAN).
///
/// IPv6 addresses may be given bare or in brackets (`"::1"`, `"[::1]"`). At least one SAN is
/// required: TLS clients match names against SANs, not the common name.
pub fn issue_server_cert(
    ca: &CertifiedKey,
    common_name: &str,
    sans: &[&str],
    days: u32,
) -> Result<CertifiedKey, TlsError> {
    if sans.is_empty() {
        return Err(TlsError::Pki(
            "a server certificate needs at least one subject alternative name".into(),
        ));
    }
    if sans.len() > MAX_SANS {
        return Err(TlsError::Pki(format!(
            "too many subject alternative names ({} > {MAX_SANS})",
            sans.len()
        )));
    }
    let sans = sans
        .iter()
        .map(|s| San::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    build(
        common_name,
        &Profile::Server(&sans),
        Some(ca),
        Validity::days_from_now(days)?,
    )
}

/// clientAuth leaf.
pub fn issue_client_cert(
    ca: &CertifiedKey,
    common_name: &str,
    days: u32,
) -> Result<CertifiedKey, TlsError> {
    build(
        common_name,
        &Profile::Client,
        Some(ca),
        Validity::days_from_now(days)?,
    )
}

/// Where relying parties find revocation status for a leaf: URLs written into the
/// authorityInfoAccess (OCSP) and cRLDistributionPoints extensions. Plain `http://`
/// URLs only, as RFC 5280 recommends for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevocationPointers<'a> {
    /// OCSP responder URL (AIA id-ad-ocsp).
    pub ocsp_url: Option<&'a str>,
    /// CRL URL (distribution point fullName).
    pub crl_url: Option<&'a str>,
}

/// clientAuth leaf carrying OCSP and/or CRL pointers.
pub fn issue_client_cert_with(
    ca: &CertifiedKey,
    common_name: &str,
    days: u32,
    pointers: &RevocationPointers<'_>,
) -> Result<CertifiedKey, TlsError> {
    build_with(
        common_name,
        &Profile::Client,
        Some(ca),
        Validity::days_from_now(days)?,
        pointers,
    )
}

/// serverAuth leaf (as [`issue_server_cert`]) carrying OCSP and/or CRL pointers, for a
/// server that staples its own OCSP status.
pub fn issue_server_cert_with(
    ca: &CertifiedKey,
    common_name: &str,
    sans: &[&str],
    days: u32,
    pointers: &RevocationPointers<'_>,
) -> Result<CertifiedKey, TlsError> {
    if sans.is_empty() || sans.len() > MAX_SANS {
        return Err(TlsError::Pki(format!(
            "a server certificate needs 1..={MAX_SANS} subject alternative names, got {}",
            sans.len()
        )));
    }
    let sans = sans
        .iter()
        .map(|s| San::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    build_with(
        common_name,
        &Profile::Server(&sans),
        Some(ca),
        Validity::days_from_now(days)?,
        pointers,
    )
}

/// A delegated OCSP responder certificate (RFC 6960 4.2.2.2): issued by `ca`,
/// extendedKeyUsage id-kp-OCSPSigning, and id-pkix-ocsp-nocheck so that relying parties
/// do not ask for the responder's own status.
pub fn issue_ocsp_responder_cert(
    ca: &CertifiedKey,
    common_name: &str,
    days: u32,
) -> Result<CertifiedKey, TlsError> {
    build(
        common_name,
        &Profile::OcspResponder,
        Some(ca),
        Validity::days_from_now(days)?,
    )
}

/// Longest CRL validity accepted by [`generate_crl`], in days.
pub const MAX_CRL_DAYS: u32 = 3650;

/// A v2 CRL signed by `ca` that revokes `revoked` (may be empty), valid from one hour
/// ago for `days` days, with CRL number `number`. PEM text.
///
/// Built with `openssl::x509::X509CrlBuilder` (openssl 0.10.82), not the `openssl ca`
/// command.
pub fn generate_crl(
    ca: &CertifiedKey,
    revoked: &[&CertifiedKey],
    number: u32,
    days: u32,
) -> Result<String, TlsError> {
    if days == 0 || days > MAX_CRL_DAYS {
        return Err(TlsError::Pki(format!(
            "CRL validity must be 1..={MAX_CRL_DAYS} days, got {days}"
        )));
    }
    let ca_cert = ca.certificate()?;
    let ca_key = ca.private_key()?;
    ensure_key_matches(&ca_cert, &ca_key, "issuer private key")?;
    let now = now_unix()?;
    let this_update = Asn1Time::from_unix(now - BACKDATE_SECS).map_err(pki_err("thisUpdate"))?;
    let next_update =
        Asn1Time::from_unix(now + i64::from(days) * SECS_PER_DAY).map_err(pki_err("nextUpdate"))?;

    let mut b = X509CrlBuilder::new().map_err(pki_err("CRL builder"))?;
    b.set_issuer_name(ca_cert.subject_name())
        .map_err(pki_err("CRL issuer"))?;
    b.set_last_update(&this_update)
        .map_err(pki_err("thisUpdate"))?;
    b.set_next_update(&next_update)
        .map_err(pki_err("nextUpdate"))?;
    for leaf in revoked {
        let cert = leaf.certificate()?;
        let mut r = X509RevokedBuilder::new().map_err(pki_err("revoked entry"))?;
        r.set_serial_number(cert.serial_number())
            .map_err(pki_err("revoked serial"))?;
        r.set_revocation_date(&this_update)
            .map_err(pki_err("revocation date"))?;
        b.add_revoked(r.build()).map_err(pki_err("revoked entry"))?;
    }
    // X509CrlBuilder::build insists on an authorityKeyIdentifier and a cRLNumber
    // (RFC 5280 5.2.1, 5.2.3). The key id is the CA's own subjectKeyIdentifier.
    let ski = ca_cert
        .subject_key_id()
        .ok_or_else(|| TlsError::Pki("issuer certificate has no subjectKeyIdentifier".into()))?;
    let aki = tlv(TAG_SEQUENCE, &tlv(0x80, ski.as_slice()));
    b.append_extension(der_extension(OID_AUTHORITY_KEY_ID, false, &aki)?)
        .map_err(pki_err("CRL authorityKeyIdentifier"))?;
    let number = BigNum::from_u32(number).map_err(pki_err("CRL number"))?;
    let number = CrlNumber::new(number)
        .and_then(CrlNumber::build)
        .map_err(pki_err("CRL number"))?;
    b.append_extension(number).map_err(pki_err("CRL number"))?;
    b.sort().map_err(pki_err("CRL sort"))?;
    b.sign(&ca_key, MessageDigest::sha256())
        .map_err(pki_err("CRL signing"))?;
    let crl = b.build().map_err(pki_err("CRL"))?;
    let pem = crl.to_pem().map_err(pki_err("CRL encoding"))?;
    String::from_utf8(pem).map_err(|_| TlsError::Pki("CRL encoding: not UTF-8".into()))
}

const OID_AUTHORITY_INFO_ACCESS: &str = "1.3.6.1.5.5.7.1.1";
const OID_CRL_DISTRIBUTION_POINTS: &str = "2.5.29.31";
const OID_AUTHORITY_KEY_ID: &str = "2.5.29.35";
const OID_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";
/// id-ad-ocsp.
const ARCS_AD_OCSP: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 48, 1];
/// GeneralName uniformResourceIdentifier, [6] IMPLICIT IA5String.
const TAG_GN_URI: u8 = 0x86;

/// An X.509 extension from its dotted OID and DER value. The `openssl` crate builds AIA
/// and CRL distribution points only through OpenSSL's deprecated config-string API, so
/// these values are encoded here (module `der`).
fn der_extension(oid: &str, critical: bool, value: &[u8]) -> Result<X509Extension, TlsError> {
    let obj = Asn1Object::from_str(oid).map_err(pki_err("extension OID"))?;
    let value = Asn1OctetString::new_from_bytes(value).map_err(pki_err("extension value"))?;
    X509Extension::new_from_der(&obj, critical, &value).map_err(pki_err("extension"))
}

/// authorityInfoAccess with one OCSP access description (RFC 5280 4.2.2.1).
fn aia_ocsp_der(url: &str) -> Vec<u8> {
    let access = tlv_of(
        TAG_SEQUENCE,
        &[&der::oid(&ARCS_AD_OCSP), &tlv(TAG_GN_URI, url.as_bytes())],
    );
    tlv(TAG_SEQUENCE, &access)
}

/// cRLDistributionPoints with one point whose fullName is `url` (RFC 5280 4.2.1.13).
/// DistributionPointName is a CHOICE, so its [0] tag is explicit; fullName [0] is
/// implicit GeneralNames.
fn crl_dp_der(url: &str) -> Vec<u8> {
    let full_name = tlv(context(0), &tlv(TAG_GN_URI, url.as_bytes()));
    let dp_name = tlv(context(0), &full_name);
    tlv(TAG_SEQUENCE, &tlv(TAG_SEQUENCE, &dp_name))
}

/// Refuses URLs that are not plain http (the same rules the OCSP client applies).
fn check_pointer_url(url: &str, what: &str) -> Result<(), TlsError> {
    OcspUrl::parse(url)
        .map(|_| ())
        .map_err(|e| TlsError::Pki(format!("{what}: {e}")))
}

/// Writes cert and key PEM files (key file mode 0600 on unix), creating parent dirs.
///
/// Each file is written to a temporary name in the same directory and renamed into
/// place, so a reader never sees a half-written key and an existing file's looser
/// permissions are not inherited.
pub fn write_pem_pair(
    ck: &CertifiedKey,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), TlsError> {
    write_atomically(cert_path, ck.cert_pem.as_bytes(), 0o644)?;
    write_atomically(key_path, ck.key_pem.expose(), 0o600)
}

/// Reads a certificate file (its first certificate) and a private key file written by
/// [`write_pem_pair`] or by other tools; the key must belong to the certificate.
pub fn load_pem_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = files::read_pem_file(cert_path, "certificate file")?;
    let key_pem = files::read_secret_pem_file(key_path, "key file")?;
    let what_cert = format!("certificate file {}", cert_path.display());
    let what_key = format!("key file {}", key_path.display());
    let cert = first_certificate(&cert_pem, &what_cert)?;
    let key = parse_private_key(key_pem.expose(), &what_key)?;
    ensure_key_matches(&cert, &key, &what_key)?;
    certified_key(&cert, &key).map_err(|e| TlsError::Config(format!("{what_cert}: {e}")))
}

/// SHA-256 fingerprint of the first certificate in a PEM file.
pub fn fingerprint_pem_file(path: &Path) -> Result<String, TlsError> {
    let pem = files::read_pem_file(path, "certificate file")?;
    let cert = first_certificate(&pem, &format!("certificate file {}", path.display()))?;
    der_fingerprint_of(&cert)
}

/// SHA-256 fingerprint (lowercase hex) of the first certificate in PEM text.
pub fn fingerprint_pem(pem: &[u8]) -> Result<String, TlsError> {
    let cert = first_certificate(pem, "certificate PEM")?;
    der_fingerprint_of(&cert)
}

/// Lowercase hex SHA-256 of `der`. The bytes are hashed as given (not parsed), so the
/// result equals `openssl x509 -fingerprint -sha256` of the same certificate.
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(der))
}

// ---------------------------------------------------------------------------------------

/// What kind of certificate to mint.
enum Profile<'a> {
    Ca,
    Server(&'a [San]),
    Client,
    OcspResponder,
}

/// A subject alternative name, classified once so the builder cannot misread it.
#[derive(Debug, PartialEq, Eq)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn parse(text: &str) -> Result<San, TlsError> {
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        if is_dns_name(text) {
            Ok(San::Dns(text.to_owned()))
        } else {
            Err(TlsError::Pki(format!(
                "subject alternative name {text:?} is neither an IP address nor a DNS name"
            )))
        }
    }
}

/// Letters, digits and hyphens in labels of 1..=63 octets, not starting or ending with
/// a hyphen; a leading "*." wildcard label is allowed. Anything else would produce a
/// certificate no client can match, so it is refused at generation time.
fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_DNS_NAME_LEN {
        return false;
    }
    let rest = name.strip_prefix("*.").unwrap_or(name);
    !rest.is_empty()
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Validity in unix seconds.
#[derive(Clone, Copy, Debug)]
struct Validity {
    not_before: i64,
    not_after: i64,
}

impl Validity {
    fn days_from_now(days: u32) -> Result<Validity, TlsError> {
        Validity::days_from(now_unix()?, days)
    }

    fn days_from(now: i64, days: u32) -> Result<Validity, TlsError> {
        if days == 0 || days > MAX_VALIDITY_DAYS {
            return Err(TlsError::Pki(format!(
                "validity must be 1..={MAX_VALIDITY_DAYS} days, got {days}"
            )));
        }
        Ok(Validity {
            not_before: now - BACKDATE_SECS,
            not_after: now + i64::from(days) * SECS_PER_DAY,
        })
    }
}

fn now_unix() -> Result<i64, TlsError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TlsError::Pki("system clock is before 1970".into()))?
        .as_secs();
    i64::try_from(secs).map_err(|_| TlsError::Pki("system clock out of range".into()))
}

fn pki_err(context: &'static str) -> impl FnOnce(ErrorStack) -> TlsError {
    move |e| TlsError::Pki(format!("{context}: {e}"))
}

fn check_common_name(cn: &str) -> Result<(), TlsError> {
    if cn.is_empty() || cn.len() > MAX_COMMON_NAME_LEN {
        return Err(TlsError::Pki(format!(
            "common name must be 1..={MAX_COMMON_NAME_LEN} bytes, got {}",
            cn.len()
        )));
    }
    if cn.chars().any(char::is_control) {
        return Err(TlsError::Pki(
            "common name contains control characters".into(),
        ));
    }
    Ok(())
}

/// Mints a fresh P-256 key and a certificate for it, self-signed when `issuer` is None.
fn build(
    common_name: &str,
    profile: &Profile<'_>,
    issuer: Option<&CertifiedKey>,
    validity: Validity,
) -> Result<CertifiedKey, TlsError> {
    build_with(
        common_name,
        profile,
        issuer,
        validity,
        &RevocationPointers::default(),
    )
}

/// [`build`] with revocation pointers.
fn build_with(
    common_name: &str,
    profile: &Profile<'_>,
    issuer: Option<&CertifiedKey>,
    validity: Validity,
    pointers: &RevocationPointers<'_>,
) -> Result<CertifiedKey, TlsError> {
    check_common_name(common_name)?;
    if let Some(url) = pointers.ocsp_url {
        check_pointer_url(url, "OCSP URL")?;
    }
    if let Some(url) = pointers.crl_url {
        check_pointer_url(url, "CRL URL")?;
    }

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(pki_err("P-256 group"))?;
    let ec = EcKey::generate(&group).map_err(pki_err("key generation"))?;
    let key = PKey::from_ec_key(ec).map_err(pki_err("key generation"))?;

    let issuer = match issuer {
        Some(ca) => {
            let cert = ca.certificate()?;
            let ca_key = ca.private_key()?;
            ensure_key_matches(&cert, &ca_key, "issuer private key")?;
            Some((cert, ca_key))
        }
        None => None,
    };

    let mut name = X509NameBuilder::new().map_err(pki_err("subject name"))?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .map_err(pki_err("subject common name"))?;
    let name = name.build();

    let mut serial = BigNum::new().map_err(pki_err("serial"))?;
    serial
        .rand(SERIAL_BITS, MsbOption::ONE, false)
        .map_err(pki_err("serial"))?;
    let serial = serial.to_asn1_integer().map_err(pki_err("serial"))?;
    let not_before = Asn1Time::from_unix(validity.not_before).map_err(pki_err("notBefore"))?;
    let not_after = Asn1Time::from_unix(validity.not_after).map_err(pki_err("notAfter"))?;

    let mut b = X509Builder::new().map_err(pki_err("certificate builder"))?;
    b.set_version(2).map_err(pki_err("version"))?; // 2 = X.509 v3
    b.set_serial_number(&serial).map_err(pki_err("serial"))?;
    b.set_subject_name(&name).map_err(pki_err("subject name"))?;
    match &issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()),
        None => b.set_issuer_name(&name),
    }
    .map_err(pki_err("issuer name"))?;
    b.set_pubkey(&key).map_err(pki_err("public key"))?;
    b.set_not_before(&not_before)
        .map_err(pki_err("notBefore"))?;
    b.set_not_after(&not_after).map_err(pki_err("notAfter"))?;

    let issuer_cert = issuer.as_ref().map(|(cert, _)| cert.as_ref());
    match profile {
        Profile::Ca => {
            let bc = BasicConstraints::new()
                .critical()
                .ca()
                .pathlen(0)
                .build()
                .map_err(pki_err("basicConstraints"))?;
            b.append_extension(bc)
                .map_err(pki_err("basicConstraints"))?;
            let ku = KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .digital_signature()
                .build()
                .map_err(pki_err("keyUsage"))?;
            b.append_extension(ku).map_err(pki_err("keyUsage"))?;
        }
        Profile::Server(_) | Profile::Client | Profile::OcspResponder => {
            let bc = BasicConstraints::new()
                .critical()
                .build()
                .map_err(pki_err("basicConstraints"))?;
            b.append_extension(bc)
                .map_err(pki_err("basicConstraints"))?;
            // ECDSA keys sign the handshake; they never encrypt a premaster secret.
            let ku = KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .map_err(pki_err("keyUsage"))?;
            b.append_extension(ku).map_err(pki_err("keyUsage"))?;
            let mut eku = ExtendedKeyUsage::new();
            match profile {
                Profile::Server(_) => eku.server_auth(),
                Profile::OcspResponder => eku.other("OCSPSigning"),
                _ => eku.client_auth(),
            };
            let eku = eku.build().map_err(pki_err("extendedKeyUsage"))?;
            b.append_extension(eku)
                .map_err(pki_err("extendedKeyUsage"))?;
        }
    }

    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer_cert, None))
        .map_err(pki_err("subjectKeyIdentifier"))?;
    b.append_extension(ski)
        .map_err(pki_err("subjectKeyIdentifier"))?;

    if issuer_cert.is_some() {
        // Lets verifiers pick the right CA certificate when several share a name.
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer_cert, None))
            .map_err(pki_err("authorityKeyIdentifier"))?;
        b.append_extension(aki)
            .map_err(pki_err("authorityKeyIdentifier"))?;
    }

    if let Profile::OcspResponder = profile {
        // id-pkix-ocsp-nocheck: value NULL.
        b.append_extension(der_extension(OID_OCSP_NOCHECK, false, &[0x05, 0x00])?)
            .map_err(pki_err("ocspNoCheck"))?;
    }
    if let Some(url) = pointers.ocsp_url {
        b.append_extension(der_extension(
            OID_AUTHORITY_INFO_ACCESS,
            false,
            &aia_ocsp_der(url),
        )?)
        .map_err(pki_err("authorityInfoAccess"))?;
    }
    if let Some(url) = pointers.crl_url {
        b.append_extension(der_extension(
            OID_CRL_DISTRIBUTION_POINTS,
            false,
            &crl_dp_der(url),
        )?)
        .map_err(pki_err("cRLDistributionPoints"))?;
    }

    if let Profile::Server(sans) = profile {
        let mut alt = SubjectAlternativeName::new();
        for san in sans.iter() {
            match san {
                San::Dns(d) => alt.dns(d),
                San::Ip(ip) => alt.ip(&ip.to_string()),
            };
        }
        let alt = alt
            .build(&b.x509v3_context(issuer_cert, None))
            .map_err(pki_err("subjectAltName"))?;
        b.append_extension(alt).map_err(pki_err("subjectAltName"))?;
    }

    let signer = issuer.as_ref().map_or(&key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256())
        .map_err(pki_err("signing"))?;
    let cert = b.build();
    certified_key(&cert, &key).map_err(pki_err("encoding"))
}

fn certified_key(cert: &X509, key: &PKey<Private>) -> Result<CertifiedKey, ErrorStack> {
    let cert_der = cert.to_der()?;
    // PEM is base64 text, so this conversion cannot fail; map it anyway instead of
    // panicking.
    let cert_pem = String::from_utf8(cert.to_pem()?).map_err(|_| ErrorStack::get())?;
    let key_pem = SecretBytes::new(key.private_key_to_pem_pkcs8()?);
    Ok(CertifiedKey {
        cert_pem,
        key_pem,
        cert_der,
    })
}

fn der_fingerprint_of(cert: &X509) -> Result<String, TlsError> {
    let der = cert
        .to_der()
        .map_err(|e| TlsError::Config(format!("re-encoding certificate: {e}")))?;
    Ok(fingerprint_der(&der))
}

/// All certificates in PEM text; an error names `what` when there are none.
pub(crate) fn parse_certificates(pem: &[u8], what: &str) -> Result<Vec<X509>, TlsError> {
    let certs = X509::stack_from_pem(pem)
        .map_err(|e| TlsError::Config(format!("{what}: not valid PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Config(format!("{what}: no certificate found")));
    }
    Ok(certs)
}

fn first_certificate(pem: &[u8], what: &str) -> Result<X509, TlsError> {
    // Reads only the first CERTIFICATE block (other PEM blocks before it are skipped),
    // so a damaged certificate later in a bundle does not change the answer.
    X509::from_pem(pem)
        .map_err(|e| TlsError::Config(format!("{what}: no readable PEM certificate: {e}")))
}

/// Parses an unencrypted private key. Encrypted keys are refused rather than letting
/// OpenSSL's default passphrase callback prompt on a terminal, which would hang a
/// server at start-up.
pub(crate) fn parse_private_key(pem: &[u8], what: &str) -> Result<PKey<Private>, TlsError> {
    PKey::private_key_from_pem_callback(pem, |_passphrase| Ok(0)).map_err(|e| {
        TlsError::Config(format!(
            "{what}: not an unencrypted PEM private key (encrypted keys are not supported): {e}"
        ))
    })
}

pub(crate) fn ensure_key_matches(
    cert: &X509,
    key: &PKey<Private>,
    what: &str,
) -> Result<(), TlsError> {
    let public = cert
        .public_key()
        .map_err(|e| TlsError::Config(format!("{what}: certificate public key: {e}")))?;
    if public.public_eq(key) {
        Ok(())
    } else {
        Err(TlsError::Config(format!(
            "{what}: private key does not belong to the certificate"
        )))
    }
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TlsError::Write { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr(&dir))?;
    let file_name = path.file_name().ok_or_else(|| TlsError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let tag: [u8; 8] = seccf_secret::random_array().map_err(|_| TlsError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other("operating system random source failed"),
    })?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", hex::encode(tag)));
    let tmp = dir.join(tmp_name);

    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = opts
        .open(&tmp)
        .and_then(|mut f| {
            // The umask may have narrowed the mode; set it exactly (0644 stays readable
            // for other services, 0600 stays private whatever the umask).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            f.write_all(contents)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(TlsError::Write {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    /// Verifies `leaf` against `ca` in-process; Err carries OpenSSL's reason.
    fn verify(ca: &CertifiedKey, leaf: &CertifiedKey) -> Result<(), String> {
        verify_via(ca, &[], leaf)
    }

    /// Same, with untrusted intermediates offered for chain building.
    fn verify_via(
        ca: &CertifiedKey,
        intermediates: &[&CertifiedKey],
        leaf: &CertifiedKey,
    ) -> Result<(), String> {
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca.certificate().unwrap()).unwrap();
        let store = store.build();
        let leaf = leaf.certificate().unwrap();
        let mut chain = Stack::new().unwrap();
        for i in intermediates {
            chain.push(i.certificate().unwrap()).unwrap();
        }
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, &leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok(if ok {
                Ok(())
            } else {
                Err(c.error().error_string().to_owned())
            })
        })
        .unwrap()
    }

    #[test]
    fn ca_has_p256_key_and_sha256_signature() {
        let ca = generate_ca("seccf test CA", 30).unwrap();
        let cert = ca.certificate().unwrap();
        assert_eq!(
            cert.signature_algorithm().object().nid(),
            Nid::ECDSA_WITH_SHA256
        );
        let key = ca.private_key().unwrap();
        let ec = key.ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        assert!(
            String::from_utf8_lossy(ca.key_pem.expose()).starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // Self-signed: subject == issuer, and it verifies against itself.
        assert_eq!(
            cert.subject_name().to_der().unwrap(),
            cert.issuer_name().to_der().unwrap()
        );
        verify(&ca, &ca).unwrap();
    }

    #[test]
    fn validity_window_is_backdated_one_hour() {
        let before = now_unix().unwrap();
        let ca = generate_ca("validity", 10).unwrap();
        let after = now_unix().unwrap();
        let cert = ca.certificate().unwrap();
        let epoch = Asn1Time::from_unix(0).unwrap();
        let secs = |t: &openssl::asn1::Asn1TimeRef| {
            let d = epoch.diff(t).unwrap();
            i64::from(d.days) * SECS_PER_DAY + i64::from(d.secs)
        };
        let nb = secs(cert.not_before());
        let na = secs(cert.not_after());
        assert!(nb >= before - 3600 && nb <= after - 3600, "notBefore {nb}");
        assert!(
            na >= before + 10 * 86_400 && na <= after + 10 * 86_400,
            "notAfter {na}"
        );
    }

    #[test]
    fn leaves_verify_against_their_ca_only() {
        let ca = generate_ca("CA one", 5).unwrap();
        let other = generate_ca("CA two", 5).unwrap();
        let server = issue_server_cert(&ca, "kmc", &["localhost", "127.0.0.1"], 5).unwrap();
        let client = issue_client_cert(&ca, "naf.example.org", 5).unwrap();
        verify(&ca, &server).unwrap();
        verify(&ca, &client).unwrap();
        assert!(verify(&other, &server).is_err());
        assert!(verify(&other, &client).is_err());
        // A leaf must not act as a CA (basicConstraints CA:FALSE): even when offered
        // as an intermediate, a certificate it signed does not verify.
        let sub = issue_client_cert(&client, "grandchild", 5).unwrap();
        let err = verify_via(&ca, &[&client], &sub).unwrap_err();
        assert!(err.contains("CA"), "{err}");
        // Control: a genuine chain through the same helper verifies.
        verify_via(&ca, &[&server], &client).unwrap();
    }

    #[test]
    fn expired_certificate_fails_verification() {
        let ca = generate_ca("CA", 5).unwrap();
        let now = now_unix().unwrap();
        let past = Validity {
            not_before: now - 10 * SECS_PER_DAY,
            not_after: now - SECS_PER_DAY,
        };
        let leaf = build("old", &Profile::Client, Some(&ca), past).unwrap();
        let err = verify(&ca, &leaf).unwrap_err();
        assert!(err.contains("expired"), "{err}");
    }

    #[test]
    fn sans_are_typed() {
        let ca = generate_ca("CA", 1).unwrap();
        let s = issue_server_cert(
            &ca,
            "srv",
            &["localhost", "127.0.0.1", "[::1]", "kmc.example.org"],
            1,
        )
        .unwrap();
        let cert = s.certificate().unwrap();
        let names = cert.subject_alt_names().unwrap();
        let dns: Vec<&str> = names.iter().filter_map(|n| n.dnsname()).collect();
        let ips: Vec<&[u8]> = names.iter().filter_map(|n| n.ipaddress()).collect();
        assert_eq!(dns, ["localhost", "kmc.example.org"]);
        assert_eq!(ips.len(), 2);
        assert_eq!(ips[0], [127, 0, 0, 1]);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ips[1], v6);
        // Client leaves carry no SAN.
        let c = issue_client_cert(&ca, "cli", 1).unwrap();
        assert!(c.certificate().unwrap().subject_alt_names().is_none());
    }

    #[test]
    fn san_parsing() {
        assert_eq!(
            San::parse("10.0.0.1").unwrap(),
            San::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(San::parse("::1").unwrap(), San::Ip("::1".parse().unwrap()));
        assert_eq!(
            San::parse("*.example.org").unwrap(),
            San::Dns("*.example.org".into())
        );
        for bad in [
            "",
            "a,IP:1.2.3.4",
            "-a.example",
            "a..b",
            "a.b-",
            "exa mple",
            "*",
            "a.*.b",
            "bücher.example",
            &"a".repeat(64),
            &format!("{}.example", "a.".repeat(130)),
        ] {
            assert!(San::parse(bad).is_err(), "{bad:?} accepted");
        }
        let ca = generate_ca("CA", 1).unwrap();
        assert!(matches!(
            issue_server_cert(&ca, "srv", &[], 1),
            Err(TlsError::Pki(_))
        ));
    }

    /// Randomized: SAN classification never panics, and whatever it accepts as a DNS
    /// name is one OpenSSL can put in a certificate.
    #[test]
    fn san_parse_never_panics() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = ["localhost", "127.0.0.1", "[::1]", "*.example.org", "a-b.c"];
        let alphabet = b"a9.-*[]:, \0\xff";
        for i in 0..5000 {
            let mut bytes = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 6) {
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 if !bytes.is_empty() => {
                        let at = (next() % bytes.len() as u64) as usize;
                        bytes[at] = c;
                    }
                    1 => bytes.insert((next() % (bytes.len() as u64 + 1)) as usize, c),
                    _ => {
                        let n = (next() % 300) as usize;
                        bytes.resize(bytes.len() + n, c);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(San::Dns(d)) = San::parse(&text) {
                assert!(d.len() <= MAX_DNS_NAME_LEN && d.is_ascii(), "{d:?}");
            }
        }
        // Spot-check that accepted names really build.
        let ca = generate_ca("CA", 1).unwrap();
        issue_server_cert(&ca, "s", &["a-b.c", "*.x.y", "::ffff:1.2.3.4"], 1).unwrap();
    }

    #[test]
    fn revocation_pointers_are_read_back_by_openssl() {
        let ca = generate_ca("CA", 1).unwrap();
        let leaf = issue_client_cert_with(
            &ca,
            "leaf",
            1,
            &RevocationPointers {
                ocsp_url: Some("http://127.0.0.1:2560/ocsp"),
                crl_url: Some("http://crl.example.org/ca.crl"),
            },
        )
        .unwrap();
        let cert = leaf.certificate().unwrap();
        // OpenSSL's own decoders of AIA and CRLDP (independent of our DER writer).
        let ocsp: Vec<String> = cert
            .ocsp_responders()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(ocsp, ["http://127.0.0.1:2560/ocsp"]);
        let dps = cert.crl_distribution_points().unwrap();
        let uris: Vec<&str> = dps
            .iter()
            .filter_map(|dp| dp.distpoint())
            .filter_map(|n| n.fullname())
            .flat_map(|names| names.iter().filter_map(|g| g.uri()))
            .collect();
        assert_eq!(uris, ["http://crl.example.org/ca.crl"]);
        verify(&ca, &leaf).unwrap();
        // Plain leaves carry neither.
        let plain = issue_client_cert(&ca, "plain", 1)
            .unwrap()
            .certificate()
            .unwrap();
        assert!(plain.ocsp_responders().is_err() || plain.ocsp_responders().unwrap().is_empty());
        assert!(plain.crl_distribution_points().is_none());
        // Only http URLs.
        for bad in ["https://x/", "ldap://x/", "not a url"] {
            let p = RevocationPointers {
                ocsp_url: Some(bad),
                crl_url: None,
            };
            assert!(issue_client_cert_with(&ca, "x", 1, &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn ocsp_responder_cert_profile() {
        let ca = generate_ca("CA", 1).unwrap();
        let r = issue_ocsp_responder_cert(&ca, "responder", 1).unwrap();
        verify(&ca, &r).unwrap();
        let cert = r.certificate().unwrap();
        let der = cert.to_der().unwrap();
        // id-kp-OCSPSigning 1.3.6.1.5.5.7.3.9 and id-pkix-ocsp-nocheck 1.3.6.1.5.5.7.48.1.5
        // appear as encoded OIDs.
        let eku = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
        let nocheck = [
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05,
        ];
        assert!(der.windows(eku.len()).any(|w| w == eku));
        assert!(der.windows(nocheck.len()).any(|w| w == nocheck));
    }

    #[test]
    fn crl_revokes_exactly_the_given_certificates() {
        use openssl::x509::{CrlStatus, X509Crl};
        let ca = generate_ca("CA", 1).unwrap();
        let a = issue_client_cert(&ca, "a", 1).unwrap();
        let b = issue_client_cert(&ca, "b", 1).unwrap();
        let pem = generate_crl(&ca, &[&a], 7, 30).unwrap();
        let crl = X509Crl::from_pem(pem.as_bytes()).unwrap();
        let ca_cert = ca.certificate().unwrap();
        assert!(crl.verify(&ca_cert.public_key().unwrap()).unwrap());
        assert!(matches!(
            crl.get_by_cert(&a.certificate().unwrap()),
            CrlStatus::Revoked(_)
        ));
        assert!(matches!(
            crl.get_by_cert(&b.certificate().unwrap()),
            CrlStatus::NotRevoked
        ));
        let next = crl.next_update().unwrap();
        let in_29 = Asn1Time::days_from_now(29).unwrap();
        let in_31 = Asn1Time::days_from_now(31).unwrap();
        assert!(next > in_29 && next < in_31);
        // An empty CRL is valid too.
        let empty = generate_crl(&ca, &[], 8, 1).unwrap();
        let empty = X509Crl::from_pem(empty.as_bytes()).unwrap();
        assert!(empty.get_revoked().is_none());
        assert!(generate_crl(&ca, &[], 1, 0).is_err());
        assert!(generate_crl(&ca, &[], 1, MAX_CRL_DAYS + 1).is_err());
    }

    #[test]
    fn serial_hex_matches_the_certificate() {
        let ca = generate_ca("CA", 1).unwrap();
        let hex = ca.serial_hex().unwrap();
        let bn = BigNum::from_hex_str(&hex).unwrap();
        assert_eq!(
            bn,
            ca.certificate().unwrap().serial_number().to_bn().unwrap()
        );
        assert_eq!(hex, hex.to_uppercase());
        assert_eq!(hex.len(), 40); // 159-bit serials: 20 octets
    }

    #[test]
    fn bad_names_and_days_are_refused() {
        assert!(matches!(generate_ca("", 1), Err(TlsError::Pki(_))));
        assert!(matches!(
            generate_ca(&"x".repeat(65), 1),
            Err(TlsError::Pki(_))
        ));
        assert!(generate_ca(&"x".repeat(64), 1).is_ok());
        assert!(matches!(generate_ca("a\nb", 1), Err(TlsError::Pki(_))));
        assert!(matches!(generate_ca("ok", 0), Err(TlsError::Pki(_))));
        assert!(matches!(
            generate_ca("ok", MAX_VALIDITY_DAYS + 1),
            Err(TlsError::Pki(_))
        ));
    }

    #[test]
    fn serials_are_random_positive_20_octets() {
        let ca = generate_ca("CA", 1).unwrap();
        let a = issue_client_cert(&ca, "a", 1).unwrap();
        let b = issue_client_cert(&ca, "a", 1).unwrap();
        let sa = a.certificate().unwrap().serial_number().to_bn().unwrap();
        let sb = b.certificate().unwrap().serial_number().to_bn().unwrap();
        assert_ne!(sa, sb);
        assert!(!sa.is_negative());
        assert_eq!(sa.num_bits(), SERIAL_BITS);
        assert_ne!(a.sha256_fingerprint(), b.sha256_fingerprint());
    }

    #[test]
    fn fingerprint_is_lowercase_hex_of_der() {
        let ca = generate_ca("CA", 1).unwrap();
        let fp = ca.sha256_fingerprint();
        assert_eq!(fp.len(), 64);
        assert!(fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(fingerprint_pem(ca.cert_pem.as_bytes()).unwrap(), fp);
        // OpenSSL's own digest of the certificate is an independent computation.
        let digest = ca
            .certificate()
            .unwrap()
            .digest(MessageDigest::sha256())
            .unwrap();
        assert_eq!(hex::encode(digest), fp);
    }

    #[test]
    fn issuer_key_must_match_issuer_cert() {
        let ca = generate_ca("CA", 1).unwrap();
        let other = generate_ca("CA2", 1).unwrap();
        let franken = CertifiedKey {
            cert_pem: ca.cert_pem.clone(),
            key_pem: other.key_pem.clone(),
            cert_der: ca.cert_der.clone(),
        };
        assert!(matches!(
            issue_client_cert(&franken, "x", 1),
            Err(TlsError::Config(_))
        ));
        assert!(CertifiedKey::from_pem(ca.cert_pem.as_bytes(), &other.key_pem).is_err());
        let back = CertifiedKey::from_pem(ca.cert_pem.as_bytes(), &ca.key_pem).unwrap();
        assert_eq!(back.cert_der, ca.cert_der);
    }

    #[test]
    fn encrypted_key_is_refused_without_prompting() {
        let ca = generate_ca("CA", 1).unwrap();
        let key = ca.private_key().unwrap();
        let enc = key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
            .unwrap();
        let err = parse_private_key(&enc, "key_file").unwrap_err();
        assert!(
            err.to_string().contains("encrypted keys are not supported"),
            "{err}"
        );
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let ca = generate_ca("CA", 1).unwrap();
        let dbg = format!("{ca:?}");
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
        let body = String::from_utf8_lossy(ca.key_pem.expose())
            .lines()
            .nth(1)
            .unwrap()
            .to_owned();
        assert!(!dbg.contains(&body));
    }

    #[cfg(unix)]
    #[test]
    fn write_pem_pair_modes_dirs_and_roundtrip() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let ca = generate_ca("CA", 1).unwrap();
        let cert = dir.path().join("a/b/ca.pem");
        let key = dir.path().join("c/ca.key");
        // A pre-existing world-readable key file must not keep its mode.
        fs::create_dir_all(key.parent().unwrap()).unwrap();
        fs::write(&key, b"old").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o666)).unwrap();
        write_pem_pair(&ca, &cert, &key).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read(&key).unwrap(), ca.key_pem.expose());
        let back = load_pem_pair(&cert, &key).unwrap();
        assert_eq!(back.cert_der, ca.cert_der);
        assert_eq!(
            fingerprint_pem_file(&cert).unwrap(),
            ca.sha256_fingerprint()
        );
        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(key.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn write_into_unwritable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca = generate_ca("CA", 1).unwrap();
        // A regular file where a directory is needed.
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_pem_pair(&ca, &blocker.join("ca.pem"), &dir.path().join("k")).unwrap_err();
        assert!(matches!(err, TlsError::Write { .. }), "{err}");
    }
}
