//! Plain RFC 7616 Digest users (non-GBA clients) from a file, and digest checks from a
//! stored HA1.
//!
//! File format (seccf's own, close to Apache's `htdigest` but with SHA-256):
//!
//! ```text
//! # comment lines and blank lines are ignored
//! alice:seccf@naf.example.org:<64 hex digits of SHA-256("alice:seccf@naf.example.org:password")>
//! ```
//!
//! One user per line, `user:realm:HA1`; user and realm contain no ':'; every line
//! must name the listener's users realm (a line for another realm is an error, so a
//! copy-pasted file for another gateway is noticed at start, not at the first login).
//! The file holds HA1 values, which are password-equivalent for this realm: keep it
//! readable by the gateway only.
//!
//! Only `algorithm=SHA-256` (not `-sess`) is challenged for these users; the checks
//! below recompute RFC 7616 §3.4.1 from HA1 because the digest crate starts from the
//! password, which the gateway never has.

use std::collections::HashMap;

use seccf_digest::{Credentials, DigestError, Qop};
use seccf_secret::{ct_eq, Secret};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Largest users file read.
pub const MAX_FILE_LEN: usize = 4 * 1024 * 1024;
/// Most users in one file.
pub const MAX_USERS: usize = 100_000;
/// Longest user name or realm.
pub const MAX_FIELD_LEN: usize = 256;

/// Why a users file was refused (line numbers are 1-based; no line content is echoed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsersFileError {
    /// The file is larger than [`MAX_FILE_LEN`].
    #[error("users file larger than {MAX_FILE_LEN} bytes")]
    TooLarge,
    /// More than [`MAX_USERS`] users.
    #[error("users file has more than {MAX_USERS} users")]
    TooManyUsers,
    /// A line is not `user:realm:HA1`.
    #[error("users file line {0}: expected user:realm:HA1 (64 hex digits)")]
    BadLine(usize),
    /// A line names another realm.
    #[error("users file line {0}: realm differs from the listener's users realm")]
    WrongRealm(usize),
    /// A user appears twice.
    #[error("users file line {0}: duplicate user")]
    Duplicate(usize),
}

/// The users of one realm.
pub struct UsersDb {
    realm: String,
    users: HashMap<String, Secret<32>>,
}

impl std::fmt::Debug for UsersDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsersDb")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish()
    }
}

impl UsersDb {
    /// Parses the file content for `realm`.
    pub fn parse(text: &str, realm: &str) -> Result<Self, UsersFileError> {
        if text.len() > MAX_FILE_LEN {
            return Err(UsersFileError::TooLarge);
        }
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split(':');
            let (Some(user), Some(r), Some(ha1), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(UsersFileError::BadLine(n));
            };
            if user.is_empty()
                || user.len() > MAX_FIELD_LEN
                || r.len() > MAX_FIELD_LEN
                || user
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\')
            {
                return Err(UsersFileError::BadLine(n));
            }
            let ha1 = Secret::<32>::from_hex(ha1).ok_or(UsersFileError::BadLine(n))?;
            if r != realm {
                return Err(UsersFileError::WrongRealm(n));
            }
            if users.len() >= MAX_USERS {
                return Err(UsersFileError::TooManyUsers);
            }
            if users.insert(user.to_string(), ha1).is_some() {
                return Err(UsersFileError::Duplicate(n));
            }
        }
        Ok(UsersDb {
            realm: realm.to_string(),
            users,
        })
    }

    /// The realm these users belong to.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file had no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// HA1 of `user`.
    pub fn ha1(&self, user: &str) -> Option<&Secret<32>> {
        self.users.get(user)
    }
}

/// HA1 = SHA-256(user ":" realm ":" password), for writing users files.
pub fn sha256_ha1(user: &str, realm: &str, password: &[u8]) -> Secret<32> {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password);
    Secret::new(h.finalize().into())
}

fn sha256_hex(parts: &[&[u8]]) -> Zeroizing<String> {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    Zeroizing::new(hex::encode(h.finalize()))
}

fn digest_from_ha1(
    creds: &Credentials,
    ha1: &Secret<32>,
    method: &str,
    body: &[u8],
) -> Result<Zeroizing<String>, DigestError> {
    let ha1_hex = Zeroizing::new(hex::encode(ha1.expose()));
    let ha2 = match creds.qop {
        Some(Qop::AuthInt) => {
            let bh = sha256_hex(&[body]);
            sha256_hex(&[method.as_bytes(), creds.uri.as_bytes(), bh.as_bytes()])
        }
        _ => sha256_hex(&[method.as_bytes(), creds.uri.as_bytes()]),
    };
    match creds.qop {
        Some(q) => {
            let nc = creds.nc_text.as_deref().ok_or(DigestError::BadNonceCount)?;
            let cnonce = creds.cnonce.as_deref().unwrap_or("");
            if cnonce.is_empty() {
                return Err(DigestError::MissingCnonce);
            }
            Ok(sha256_hex(&[
                ha1_hex.as_bytes(),
                creds.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                q.token().as_bytes(),
                ha2.as_bytes(),
            ]))
        }
        None => Ok(sha256_hex(&[
            ha1_hex.as_bytes(),
            creds.nonce.as_bytes(),
            ha2.as_bytes(),
        ])),
    }
}

/// Checks SHA-256 credentials against a stored HA1 (constant-time comparison).
pub fn verify_ha1(
    creds: &Credentials,
    ha1: &Secret<32>,
    method: &str,
    body: &[u8],
) -> Result<(), DigestError> {
    let expected = digest_from_ha1(creds, ha1, method, body)?;
    let got = creds.response.to_ascii_lowercase();
    if ct_eq(expected.as_bytes(), got.as_bytes()) {
        Ok(())
    } else {
        Err(DigestError::Mismatch)
    }
}

/// `rspauth` for verified SHA-256 credentials (empty method; `response_body` for
/// auth-int).
pub fn rspauth_ha1(
    creds: &Credentials,
    ha1: &Secret<32>,
    response_body: &[u8],
) -> Result<String, DigestError> {
    Ok(digest_from_ha1(creds, ha1, "", response_body)?
        .as_str()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_digest::{answer, Algorithm, Challenge};

    const REALM: &str = "seccf@naf.example.org";

    fn file_for(users: &[(&str, &str)]) -> String {
        let mut s = String::from("# test users\n\n");
        for (u, p) in users {
            let ha1 = sha256_ha1(u, REALM, p.as_bytes());
            s.push_str(&format!("{u}:{REALM}:{}\n", hex::encode(ha1.expose())));
        }
        s
    }

    /// `key = value` lines of a testdata file.
    fn vector(text: &str) -> HashMap<&str, &str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(" = "))
            .collect()
    }

    #[test]
    fn rfc7616_sha256_example_verifies_from_ha1() {
        let v = vector(include_str!("../testdata/rfc7616_sha256.txt"));
        let ha1 = sha256_ha1(v["username"], v["realm"], v["password"].as_bytes());
        let header = format!(
            "Digest username=\"{}\", realm=\"{}\", uri=\"{}\", algorithm=SHA-256, \
             nonce=\"{}\", nc={}, cnonce=\"{}\", qop={}, response=\"{}\", opaque=\"{}\"",
            v["username"],
            v["realm"],
            v["uri"],
            v["nonce"],
            v["nc"],
            v["cnonce"],
            v["qop"],
            v["response"],
            v["opaque"]
        );
        let creds = Credentials::parse(&header).unwrap();
        verify_ha1(&creds, &ha1, v["method"], b"").unwrap();
        let wrong = sha256_ha1(v["username"], v["realm"], b"Circle of life");
        assert_eq!(
            verify_ha1(&creds, &wrong, v["method"], b""),
            Err(DigestError::Mismatch)
        );
        assert_eq!(
            verify_ha1(&creds, &ha1, "POST", b""),
            Err(DigestError::Mismatch)
        );
    }

    #[test]
    fn agrees_with_the_digest_crate_for_auth_int_and_rspauth() {
        let ha1 = sha256_ha1("bob", REALM, b"pw");
        let mut ch = Challenge::new(REALM, "n0nce", Algorithm::Sha256);
        ch.qop = vec![Qop::Auth, Qop::AuthInt];
        for qop in [Qop::Auth, Qop::AuthInt] {
            let creds =
                answer(&ch, "bob", b"pw", "POST", "/x", Some(qop), 7, "cn", b"body").unwrap();
            verify_ha1(&creds, &ha1, "POST", b"body").unwrap();
            if qop == Qop::AuthInt {
                assert!(verify_ha1(&creds, &ha1, "POST", b"other").is_err());
            }
            let ours = rspauth_ha1(&creds, &ha1, b"resp").unwrap();
            let theirs = seccf_digest::authentication_info(&creds, b"pw", b"resp", None)
                .unwrap()
                .rspauth
                .unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn file_parsing() {
        let db = UsersDb::parse(&file_for(&[("alice", "a"), ("bob", "b")]), REALM).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.ha1("alice").is_some() && db.ha1("carol").is_none());
        assert_eq!(db.realm(), REALM);
        let text = file_for(&[("alice", "a")]);
        assert_eq!(
            UsersDb::parse(&text, "other").err(),
            Some(UsersFileError::WrongRealm(3))
        );
        let dup = file_for(&[("alice", "a"), ("alice", "b")]);
        assert_eq!(
            UsersDb::parse(&dup, REALM).err(),
            Some(UsersFileError::Duplicate(4))
        );
        for bad in [
            "alice:realm",
            "alice:realm:abcd",
            ":r:00",
            "a:b:c:d",
            &format!("alice:{REALM}:{}", "g".repeat(64)),
        ] {
            assert!(
                matches!(
                    UsersDb::parse(bad, REALM),
                    Err(UsersFileError::BadLine(1) | UsersFileError::WrongRealm(1))
                ),
                "{bad}"
            );
        }
        // Errors never echo the HA1.
        let line = format!("alice:{REALM}:{}zz", "ab".repeat(32));
        let msg = UsersDb::parse(&line, REALM).err().unwrap().to_string();
        assert!(!msg.contains("abab"), "{msg}");
    }

    /// Randomized: the parser never panics on mutated files.
    #[test]
    fn parser_never_panics() {
        let mut state: u64 = 0xdead_beef_cafe_f00d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = file_for(&[("alice", "a"), ("bob", "b")]).into_bytes();
        for _ in 0..3000 {
            let mut buf = valid.clone();
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % buf.len();
                buf[at] = b":\n#a0fZ\xc3 "[(next() % 9) as usize];
            }
            let text = String::from_utf8_lossy(&buf);
            let _ = UsersDb::parse(&text, REALM);
        }
    }
}
