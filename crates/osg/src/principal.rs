//! Who a request or connection is (after authentication), authorisation against a
//! listener's rules, and the SEC-3 header rules for requests sent upstream.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{AuthMethod, ListenerConfig};

/// Header carrying the authenticated identity to the resource (TS 24.109 clause 7).
pub const ASSERTED_IDENTITY: &str = "x-3gpp-asserted-identity";
/// Header a terminal may send to ask for one of its identities (TS 24.109 clause 7).
pub const INTENDED_IDENTITY: &str = "x-3gpp-intended-identity";
/// seccf: the authentication method (`psk-tls`, `digest`, `mtls`).
pub const AUTH_METHOD: &str = "x-seccf-auth-method";
/// seccf: the signed assertion (compact JWS, see [`crate::assertion`]).
pub const ASSERTION: &str = "x-seccf-assertion";

/// An authenticated party.
#[derive(Clone, Debug)]
pub struct Principal {
    /// How it authenticated.
    pub method: AuthMethod,
    /// The identity asserted to resources: for GBA the first public identity of the
    /// USS (the KMC lists the IMPI there when there is none), else the IMPI; for
    /// certificates the subject CN, else the first SAN; for plain Digest the user name.
    pub identity: String,
    /// Every identity the party may assert (USS ids and IMPI for GBA).
    pub identities: Vec<String>,
    /// B-TID (GBA methods).
    pub btid: Option<String>,
    /// USS flags (GBA methods); `None` when the method has no USS.
    pub flags: Option<Vec<u32>>,
    /// When the authentication stops being valid (GBA key expiry).
    pub expires_at: Option<i64>,
}

impl Principal {
    /// A GBA-authenticated party from the KMC's answer.
    pub fn gba(method: AuthMethod, btid: &str, keys: &crate::keys::NafKeys) -> Self {
        let identity = keys
            .ue_ids
            .first()
            .cloned()
            .unwrap_or_else(|| keys.impi.clone());
        let mut identities = keys.ue_ids.clone();
        if !keys.impi.is_empty() && !identities.contains(&keys.impi) {
            identities.push(keys.impi.clone());
        }
        Principal {
            method,
            identity,
            identities,
            btid: Some(btid.to_string()),
            flags: Some(keys.flags.clone()),
            expires_at: Some(keys.expires_at),
        }
    }

    /// A party known by one name and nothing else (certificate, plain Digest user).
    pub fn named(method: AuthMethod, name: &str) -> Self {
        Principal {
            method,
            identity: name.to_string(),
            identities: vec![name.to_string()],
            btid: None,
            flags: None,
            expires_at: None,
        }
    }

    /// Applies a terminal's `X-3GPP-Intended-Identity`: the asserted identity becomes
    /// that one if the party owns it. `Err` when it does not.
    pub fn with_intended(mut self, intended: &str) -> Result<Self, Denied> {
        if self.identities.iter().any(|i| i == intended) {
            self.identity = intended.to_string();
            Ok(self)
        } else {
            Err(Denied::IntendedIdentity)
        }
    }
}

/// Why an authenticated party was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// None of its identities is in `allow`.
    #[error("identity not allowed on this listener or route")]
    NotAllowed,
    /// A required USS flag is missing (or the method has no USS).
    #[error("required user security settings flag missing")]
    MissingFlag,
    /// The intended identity is not one of the party's.
    #[error("intended identity does not belong to the authenticated party")]
    IntendedIdentity,
    /// The GBA key behind the authentication has expired.
    #[error("authentication expired")]
    Expired,
}

impl Denied {
    /// Short label for metrics and audit.
    pub fn label(self) -> &'static str {
        match self {
            Denied::NotAllowed => "not_allowed",
            Denied::MissingFlag => "missing_flag",
            Denied::IntendedIdentity => "intended_identity",
            Denied::Expired => "expired",
        }
    }
}

/// Authorisation (issue item 6): `allow` and `required_flags` of the listener, and
/// the expiry of the GBA key at `now`.
pub fn authorize(l: &ListenerConfig, p: &Principal, now: i64) -> Result<(), Denied> {
    authorize_rules(&l.allow, &l.required_flags, p, now)
}

/// [`authorize`] with explicit rules (a route's or a listener's).
pub fn authorize_rules(
    allow: &[String],
    required_flags: &[u32],
    p: &Principal,
    now: i64,
) -> Result<(), Denied> {
    if p.expires_at.is_some_and(|e| e <= now) {
        return Err(Denied::Expired);
    }
    let any = allow.iter().any(|a| a == "*");
    if !any && !p.identities.iter().any(|i| allow.iter().any(|a| a == i)) {
        return Err(Denied::NotAllowed);
    }
    if !required_flags.is_empty() {
        let Some(flags) = &p.flags else {
            return Err(Denied::MissingFlag);
        };
        if !required_flags.iter().all(|f| flags.contains(f)) {
            return Err(Denied::MissingFlag);
        }
    }
    Ok(())
}

/// Longest intended identity looked at.
pub const MAX_INTENDED_LEN: usize = 512;

/// The value of `X-3GPP-Intended-Identity` (quotes removed), when present and sane.
/// `Err(())` when present but malformed.
#[allow(clippy::result_unit_err)]
pub fn intended_identity(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = headers.get(INTENDED_IDENTITY) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ())?.trim();
    if s.len() > MAX_INTENDED_LEN {
        return Err(());
    }
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    if inner.is_empty() || inner.contains('"') {
        return Err(());
    }
    Ok(Some(inner.to_string()))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

/// SEC-3: removes everything a client could use to claim an identity or method
/// (`X-3GPP-*` identity headers, every `X-Seccf-*`, `Forwarded`, `X-Forwarded-*`,
/// `X-Real-IP`), its credentials (`Authorization`, `Proxy-Authorization`: the
/// authentication proxy consumes them, TS 24.109 clause 7) and hop-by-hop headers.
pub fn strip_client_identity_headers(h: &mut HeaderMap) {
    strip_hop_by_hop(h);
    let doomed: Vec<HeaderName> = h
        .keys()
        .filter(|n| {
            let s = n.as_str();
            s == ASSERTED_IDENTITY
                || s == INTENDED_IDENTITY
                || s.starts_with("x-seccf-")
                || s == "forwarded"
                || s.starts_with("x-forwarded-")
                || s == "x-real-ip"
                || s == "authorization"
                || s == "proxy-authorization"
        })
        .cloned()
        .collect();
    for n in doomed {
        h.remove(n);
    }
}

/// Sets the identity headers for the resource.
pub fn set_identity_headers(
    h: &mut HeaderMap,
    p: &Principal,
    assertion: Option<&str>,
    peer: std::net::SocketAddr,
    host: Option<&str>,
) {
    let put = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    put(h, ASSERTED_IDENTITY, &p.identity);
    put(h, AUTH_METHOD, p.method.label());
    if let Some(a) = assertion {
        put(h, ASSERTION, a);
    }
    set_forwarded_headers(h, peer, host);
}

/// Sets the client address headers (`X-Forwarded-For`, `X-Forwarded-Proto`,
/// `Forwarded`) without any identity (routes with `forward_identity = false`).
pub fn set_forwarded_headers(h: &mut HeaderMap, peer: std::net::SocketAddr, host: Option<&str>) {
    let put = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    put(h, "x-forwarded-for", &peer.ip().to_string());
    put(h, "x-forwarded-proto", "https");
    let mut fwd = format!("for=\"{}\";proto=https", peer);
    if let Some(host) = host.filter(|h| !h.contains(['"', ';', ','])) {
        fwd.push_str(&format!(";host=\"{host}\""));
    }
    put(h, "forwarded", &fwd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NafKeys;
    use seccf_secret::Secret;

    fn listener(allow: &[&str], flags: &[u32]) -> ListenerConfig {
        let text = format!(
            r#"
name = "l"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://127.0.0.1:1"
allow = {allow:?}
required_flags = {flags:?}
"#
        );
        toml::from_str(&text).unwrap()
    }

    fn keys(ue_ids: &[&str], flags: &[u32]) -> NafKeys {
        NafKeys {
            me_key: Secret::new([0; 32]),
            expires_at: 1000,
            impi: "impi@x".into(),
            ue_ids: ue_ids.iter().map(|s| s.to_string()).collect(),
            flags: flags.to_vec(),
        }
    }

    #[test]
    fn gba_identity_choice() {
        let p = Principal::gba(AuthMethod::Psk, "b", &keys(&["sip:a@x", "tel:+1"], &[]));
        assert_eq!(p.identity, "sip:a@x");
        assert!(p.identities.contains(&"impi@x".to_string()));
        let p = Principal::gba(AuthMethod::Psk, "b", &keys(&[], &[]));
        assert_eq!(p.identity, "impi@x");
        let p = Principal::gba(AuthMethod::Psk, "b", &keys(&["sip:a@x", "tel:+1"], &[]));
        assert_eq!(
            p.clone().with_intended("tel:+1").unwrap().identity,
            "tel:+1"
        );
        assert_eq!(
            p.with_intended("sip:eve@x").unwrap_err(),
            Denied::IntendedIdentity
        );
    }

    #[test]
    fn authorisation_rules() {
        let p = Principal::gba(AuthMethod::Digest, "b", &keys(&["sip:a@x"], &[1, 2]));
        assert_eq!(authorize(&listener(&["*"], &[]), &p, 10), Ok(()));
        assert_eq!(authorize(&listener(&["impi@x"], &[]), &p, 10), Ok(()));
        assert_eq!(
            authorize(&listener(&["sip:b@x"], &[]), &p, 10),
            Err(Denied::NotAllowed)
        );
        assert_eq!(authorize(&listener(&["*"], &[2]), &p, 10), Ok(()));
        assert_eq!(
            authorize(&listener(&["*"], &[3]), &p, 10),
            Err(Denied::MissingFlag)
        );
        assert_eq!(
            authorize(&listener(&["*"], &[]), &p, 1000),
            Err(Denied::Expired)
        );
        let cert = Principal::named(AuthMethod::Mtls, "client-1");
        assert_eq!(authorize(&listener(&["client-1"], &[]), &cert, 10), Ok(()));
        assert_eq!(
            authorize(&listener(&["*"], &[1]), &cert, 10),
            Err(Denied::MissingFlag)
        );
    }

    #[test]
    fn stripping() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("X-3GPP-Asserted-Identity", "sip:admin@x"),
            ("x-3gpp-intended-identity", "\"sip:a@x\""),
            ("X-Seccf-Auth-Method", "mtls"),
            ("x-seccf-assertion", "forged"),
            ("Forwarded", "for=1.2.3.4"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Authorization", "Digest x"),
            ("Connection", "close, x-custom"),
            ("x-custom", "1"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        assert_eq!(intended_identity(&h), Ok(Some("sip:a@x".into())));
        strip_client_identity_headers(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept"]);
        let p = Principal::named(AuthMethod::Mtls, "client-1");
        set_identity_headers(
            &mut h,
            &p,
            Some("jwt"),
            "10.0.0.1:5".parse().unwrap(),
            Some("naf"),
        );
        assert_eq!(h[ASSERTED_IDENTITY], "client-1");
        assert_eq!(h[AUTH_METHOD], "mtls");
        assert_eq!(h[ASSERTION], "jwt");
        assert_eq!(
            h["forwarded"],
            "for=\"10.0.0.1:5\";proto=https;host=\"naf\""
        );
    }

    #[test]
    fn intended_identity_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(intended_identity(&h), Ok(None));
        h.insert(INTENDED_IDENTITY, HeaderValue::from_static("tel:+1"));
        assert_eq!(intended_identity(&h), Ok(Some("tel:+1".into())));
        h.insert(INTENDED_IDENTITY, HeaderValue::from_static("\"a\"b\""));
        assert_eq!(intended_identity(&h), Err(()));
        h.insert(INTENDED_IDENTITY, HeaderValue::from_static("\"\""));
        assert_eq!(intended_identity(&h), Err(()));
    }
}
