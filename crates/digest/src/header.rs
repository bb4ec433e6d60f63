//! The three Digest header values as typed structs, with strict parsing and
//! formatting such that `parse(format(x)) == x`.
//!
//! Leniency, on purpose: `algorithm`, `qop`, `nc`, `stale` and `userhash` are tokens in
//! the RFCs, but deployed clients (and several 3GPP examples) quote them, so both forms
//! are accepted. We always *send* them unquoted, and we always send the RFC-quoted
//! parameters quoted.

use crate::error::{DigestError, ParseError};
use crate::params::{parse_bare, parse_digest, push_quoted_param, push_token_param, Param, Params};
use crate::{Algorithm, Qop};

/// `WWW-Authenticate: Digest …` (the server builds it; the client parses it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space, e.g. `3GPP-bootstrapping@naf.example.com`.
    pub realm: String,
    /// Server nonce. For Ub it is base64(RAND ‖ AUTN), kept as text.
    pub nonce: String,
    /// Opaque value the client must echo.
    pub opaque: Option<String>,
    /// Hash algorithm; an absent `algorithm` parameter parses as [`Algorithm::Md5`].
    pub algorithm: Algorithm,
    /// Offered qop values, in the server's order. Empty means the RFC 2069/2617 form
    /// without qop. Unknown qop tokens in a received challenge are skipped.
    pub qop: Vec<Qop>,
    /// `stale=true`: the previous nonce was only too old; retry without asking the user.
    pub stale: bool,
    /// The `domain` list, kept as the raw space-separated text.
    pub domain: Option<String>,
    /// `userhash=true` (RFC 7616 §3.4.4): the server accepts a hashed user name.
    pub userhash: bool,
}

impl Challenge {
    /// A challenge with only the required fields, `qop="auth"` and no opaque.
    pub fn new(realm: &str, nonce: &str, algorithm: Algorithm) -> Self {
        Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            algorithm,
            qop: vec![Qop::Auth],
            stale: false,
            domain: None,
            userhash: false,
        }
    }

    /// The header value: `Digest realm="…", nonce="…", …` with `qop` as a quoted list
    /// and `algorithm` always present as a token.
    pub fn to_header_value(&self) -> String {
        let mut out = String::from("Digest ");
        push_quoted_param(&mut out, "realm", &self.realm);
        if let Some(d) = &self.domain {
            push_quoted_param(&mut out, "domain", d);
        }
        push_quoted_param(&mut out, "nonce", &self.nonce);
        if let Some(o) = &self.opaque {
            push_quoted_param(&mut out, "opaque", o);
        }
        if self.stale {
            push_token_param(&mut out, "stale", "true");
        }
        push_token_param(&mut out, "algorithm", self.algorithm.token());
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.token()).collect();
            push_quoted_param(&mut out, "qop", &list.join(", "));
        }
        if self.userhash {
            push_token_param(&mut out, "userhash", "true");
        }
        out
    }

    /// Parses a header value. `realm` and `nonce` are required; an empty `nonce` is
    /// accepted as text. A `qop` parameter whose values are all unknown is an error
    /// (treating it as "no qop" would silently downgrade to the RFC 2069 form).
    pub fn parse(header_value: &str) -> Result<Self, ParseError> {
        let mut p = Params::new(parse_digest(header_value)?);
        let realm = p.required("realm")?;
        let nonce = p.required("nonce")?;
        let opaque = p.optional("opaque");
        let algorithm = match p.optional("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop = match p.optional("qop") {
            None => Vec::new(),
            Some(list) => {
                let known: Vec<Qop> = list
                    .split(',')
                    .filter_map(|t| Qop::parse(t.trim_matches([' ', '\t'])))
                    .collect();
                if known.is_empty() {
                    return Err(ParseError::BadValue("qop"));
                }
                known
            }
        };
        let stale = parse_bool(p.take("stale"), "stale")?;
        let domain = p.optional("domain");
        let userhash = parse_bool(p.take("userhash"), "userhash")?;
        Ok(Challenge {
            realm,
            nonce,
            opaque,
            algorithm,
            qop,
            stale,
            domain,
            userhash,
        })
    }
}

/// `Authorization: Digest …` (the client builds it; the server parses it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User name: IMPI/TMPI on Ub, B-TID on Ua; H(user:realm) when `userhash` is set.
    pub username: String,
    /// Realm echoed from the challenge.
    pub realm: String,
    /// Nonce echoed from the challenge (empty in a Ub initial request).
    pub nonce: String,
    /// The request target as the client wrote it (`digest-uri`).
    pub uri: String,
    /// Request digest, hex as received (empty in a Ub initial request).
    pub response: String,
    /// `algorithm` as sent; `None` means MD5.
    pub algorithm: Option<Algorithm>,
    /// Chosen qop; `None` is the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Nonce count as a number.
    pub nc: Option<u32>,
    /// Nonce count exactly as sent (8 hex digits); this text is what gets hashed.
    /// Parsing fills both `nc` and `nc_text`; formatting prefers `nc_text`.
    pub nc_text: Option<String>,
    /// Client nonce.
    pub cnonce: Option<String>,
    /// Opaque echoed from the challenge.
    pub opaque: Option<String>,
    /// RFC 3310 resynchronisation token, base64(AUTS) as sent.
    pub auts: Option<String>,
    /// `userhash=true`: `username` is H(username ":" realm), RFC 7616 §3.4.4.
    pub userhash: bool,
}

impl Credentials {
    /// The Ub initial request (TS 24.109 §4.5.2 / A.3): empty nonce and response
    /// tell the BSF to start a new bootstrap.
    pub fn initial(username: &str, realm: &str, uri: &str) -> Self {
        Credentials {
            username: username.to_owned(),
            realm: realm.to_owned(),
            nonce: String::new(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: None,
            qop: None,
            nc: None,
            nc_text: None,
            cnonce: None,
            opaque: None,
            auts: None,
            userhash: false,
        }
    }

    /// The header value, `Digest username="…", realm="…", …`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::from("Digest ");
        push_quoted_param(&mut out, "username", &self.username);
        push_quoted_param(&mut out, "realm", &self.realm);
        push_quoted_param(&mut out, "nonce", &self.nonce);
        push_quoted_param(&mut out, "uri", &self.uri);
        if let Some(a) = self.algorithm {
            push_token_param(&mut out, "algorithm", a.token());
        }
        if let Some(q) = self.qop {
            push_token_param(&mut out, "qop", q.token());
        }
        match (&self.nc_text, self.nc) {
            (Some(t), _) => push_token_param(&mut out, "nc", t),
            (None, Some(n)) => push_token_param(&mut out, "nc", &format!("{n:08x}")),
            (None, None) => {}
        }
        if let Some(c) = &self.cnonce {
            push_quoted_param(&mut out, "cnonce", c);
        }
        push_quoted_param(&mut out, "response", &self.response);
        if let Some(o) = &self.opaque {
            push_quoted_param(&mut out, "opaque", o);
        }
        if let Some(a) = &self.auts {
            push_quoted_param(&mut out, "auts", a);
        }
        if self.userhash {
            push_token_param(&mut out, "userhash", "true");
        }
        out
    }

    /// Parses a header value. Required: `username`, `realm`, `nonce`, `uri`,
    /// `response` (each may be empty). With `qop`, `nc` (exactly 8 hex digits) and
    /// `cnonce` are required too. `nc`/`cnonce` without `qop` are kept but unused.
    pub fn parse(header_value: &str) -> Result<Self, ParseError> {
        let mut p = Params::new(parse_digest(header_value)?);
        if p.has("username*") {
            return Err(ParseError::ExtendedUsername);
        }
        let username = p.required("username")?;
        let realm = p.required("realm")?;
        let nonce = p.required("nonce")?;
        let uri = p.required("uri")?;
        let response = p.required("response")?;
        let algorithm = p
            .optional("algorithm")
            .map(|a| Algorithm::parse(&a))
            .transpose()?;
        let qop = p
            .optional("qop")
            .map(|q| Qop::parse(&q).ok_or(ParseError::BadValue("qop")))
            .transpose()?;
        let (nc, nc_text) = match p.take("nc") {
            Some(param) => {
                let n = parse_nc(&param)?;
                (Some(n), Some(param.value))
            }
            None => (None, None),
        };
        let cnonce = p.optional("cnonce");
        if qop.is_some() {
            if nc.is_none() {
                return Err(ParseError::Missing("nc"));
            }
            if cnonce.is_none() {
                return Err(ParseError::Missing("cnonce"));
            }
        }
        let opaque = p.optional("opaque");
        let auts = p.optional("auts");
        let userhash = parse_bool(p.take("userhash"), "userhash")?;
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            nc,
            nc_text,
            cnonce,
            opaque,
            auts,
            userhash,
        })
    }

    /// The algorithm in effect (`None` on the wire means MD5).
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    /// True for the Ub initial request (empty nonce and response).
    pub fn is_initial(&self) -> bool {
        self.nonce.is_empty() && self.response.is_empty()
    }

    /// Checks that these credentials answer `challenge`: same realm, nonce, opaque and
    /// algorithm, and a qop the challenge offered (or none when it offered none).
    /// Servers call this before [`crate::verify`], which checks only the digest.
    pub fn check_against(&self, challenge: &Challenge) -> Result<(), DigestError> {
        if self.realm != challenge.realm {
            return Err(DigestError::ChallengeMismatch("realm"));
        }
        if self.nonce != challenge.nonce {
            return Err(DigestError::ChallengeMismatch("nonce"));
        }
        if self.opaque != challenge.opaque {
            return Err(DigestError::ChallengeMismatch("opaque"));
        }
        if self.effective_algorithm() != challenge.algorithm {
            return Err(DigestError::ChallengeMismatch("algorithm"));
        }
        match self.qop {
            None if challenge.qop.is_empty() => Ok(()),
            None => Err(DigestError::QopRequired),
            Some(q) if challenge.qop.contains(&q) => Ok(()),
            Some(_) => Err(DigestError::QopNotOffered),
        }
    }
}

/// `Authentication-Info` (and `Proxy-Authentication-Info`): the server's `rspauth`
/// proving it knew the password, plus echoes and an optional next nonce.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthenticationInfo {
    /// qop of the request being answered.
    pub qop: Option<Qop>,
    /// Response digest computed with an empty method (hex).
    pub rspauth: Option<String>,
    /// cnonce echo.
    pub cnonce: Option<String>,
    /// nc echo, exactly as sent (8 hex digits).
    pub nc_text: Option<String>,
    /// Nonce to use for the next request.
    pub nextnonce: Option<String>,
}

impl AuthenticationInfo {
    /// The header value, e.g. `qop=auth-int, rspauth="…", cnonce="…", nc=00000001`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::new();
        if let Some(q) = self.qop {
            push_token_param(&mut out, "qop", q.token());
        }
        if let Some(r) = &self.rspauth {
            push_quoted_param(&mut out, "rspauth", r);
        }
        if let Some(c) = &self.cnonce {
            push_quoted_param(&mut out, "cnonce", c);
        }
        if let Some(n) = &self.nc_text {
            push_token_param(&mut out, "nc", n);
        }
        if let Some(n) = &self.nextnonce {
            push_quoted_param(&mut out, "nextnonce", n);
        }
        out
    }

    /// Parses a header value (a bare parameter list; every field is optional).
    pub fn parse(v: &str) -> Result<Self, ParseError> {
        let mut p = Params::new(parse_bare(v)?);
        let qop = p
            .optional("qop")
            .map(|q| Qop::parse(&q).ok_or(ParseError::BadValue("qop")))
            .transpose()?;
        let nc_text = match p.take("nc") {
            Some(param) => {
                parse_nc(&param)?;
                Some(param.value)
            }
            None => None,
        };
        Ok(AuthenticationInfo {
            qop,
            rspauth: p.optional("rspauth"),
            cnonce: p.optional("cnonce"),
            nc_text,
            nextnonce: p.optional("nextnonce"),
        })
    }
}

/// `nc` is exactly 8 hex digits (RFC 7616 §3.4: 8LHEX; upper case tolerated since the
/// text is hashed as sent anyway).
pub(crate) fn parse_nc_text(text: &str) -> Option<u32> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn parse_nc(param: &Param) -> Result<u32, ParseError> {
    parse_nc_text(&param.value).ok_or(ParseError::BadValue("nc"))
}

fn parse_bool(param: Option<Param>, name: &'static str) -> Result<bool, ParseError> {
    match param {
        None => Ok(false),
        Some(p) if p.value.eq_ignore_ascii_case("true") => Ok(true),
        Some(p) if p.value.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ParseError::BadValue(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nc_text_rules() {
        assert_eq!(parse_nc_text("00000001"), Some(1));
        assert_eq!(parse_nc_text("0000000A"), Some(10));
        assert_eq!(parse_nc_text("ffffffff"), Some(u32::MAX));
        assert_eq!(parse_nc_text("1"), None);
        assert_eq!(parse_nc_text("000000001"), None);
        assert_eq!(parse_nc_text("+0000001"), None);
        assert_eq!(parse_nc_text("0000000g"), None);
    }

    #[test]
    fn challenge_defaults_to_md5_without_qop() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop.is_empty());
        assert!(!c.stale && !c.userhash);
    }

    #[test]
    fn challenge_skips_unknown_qop_but_not_all() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf, auth""#).unwrap();
        assert_eq!(c.qop, vec![Qop::Auth]);
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf""#),
            Err(ParseError::BadValue("qop"))
        );
    }

    #[test]
    fn bools() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", stale=TRUE, userhash="true""#)
            .unwrap();
        assert!(c.stale && c.userhash);
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", stale=yes"#),
            Err(ParseError::BadValue("stale"))
        );
    }

    #[test]
    fn check_against_challenge() {
        let ch = Challenge {
            opaque: Some("o".into()),
            ..Challenge::new("r", "n", Algorithm::Sha256)
        };
        let good = Credentials {
            algorithm: Some(Algorithm::Sha256),
            qop: Some(Qop::Auth),
            nc: Some(1),
            nc_text: Some("00000001".into()),
            cnonce: Some("c".into()),
            opaque: Some("o".into()),
            nonce: "n".into(),
            ..Credentials::initial("u", "r", "/")
        };
        assert_eq!(good.check_against(&ch), Ok(()));
        let bad = |f: &dyn Fn(&mut Credentials)| {
            let mut c = good.clone();
            f(&mut c);
            c.check_against(&ch)
        };
        assert_eq!(
            bad(&|c| c.realm = "x".into()),
            Err(DigestError::ChallengeMismatch("realm"))
        );
        assert_eq!(
            bad(&|c| c.nonce = "x".into()),
            Err(DigestError::ChallengeMismatch("nonce"))
        );
        assert_eq!(
            bad(&|c| c.opaque = None),
            Err(DigestError::ChallengeMismatch("opaque"))
        );
        assert_eq!(
            bad(&|c| c.algorithm = None),
            Err(DigestError::ChallengeMismatch("algorithm"))
        );
        assert_eq!(bad(&|c| c.qop = None), Err(DigestError::QopRequired));
        assert_eq!(
            bad(&|c| c.qop = Some(Qop::AuthInt)),
            Err(DigestError::QopNotOffered)
        );
    }
}
