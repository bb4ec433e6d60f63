//! `http://` URLs of OCSP responders (and CRL distribution points): the only URL form
//! this crate fetches from. Bounded, strict, allocation only for the result.

use std::fmt;

use crate::TlsError;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A parsed `http://host[:port][/path]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspUrl {
    /// Host name or IP address; IPv6 without brackets.
    pub host: String,
    /// TCP port (80 unless given).
    pub port: u16,
    /// Path and query, starting with `/` (a bare host gives `/`). Fragments are dropped.
    pub path: String,
}

impl OcspUrl {
    /// Parses `url`. Refuses other schemes (`https` included: fetching revocation status
    /// over TLS would need revocation checking of its own, and RFC 6960/5280 responders
    /// serve plain HTTP), user info, empty hosts, bad ports, spaces and control bytes.
    pub fn parse(url: &str) -> Result<OcspUrl, TlsError> {
        let bad = |why: &str| TlsError::Ocsp(format!("URL refused: {why}"));
        if url.len() > MAX_URL_LEN {
            return Err(bad("too long"));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("only printable ASCII without spaces is allowed"));
        }
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(bad("only http:// URLs are supported")),
            None => return Err(bad("no scheme")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let split_at = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at_checked(split_at).unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(bad("user info is not allowed"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(OcspUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The Host header value: the host (bracketed if IPv6) and the port unless it is 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for OcspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when either part is malformed.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let (v6, rest) = after.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match rest {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok {
            return None;
        }
        (h, p)
    };
    let port = match port {
        None => 80,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|&n| n != 0)?
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_forms() {
        let u = OcspUrl::parse("http://ocsp.example.org").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("ocsp.example.org", 80, "/")
        );
        let u = OcspUrl::parse("HTTP://127.0.0.1:8888/ocsp/a?b=c#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8888, "/ocsp/a?b=c")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8888");
        assert_eq!(u.to_string(), "http://127.0.0.1:8888/ocsp/a?b=c");
        let u = OcspUrl::parse("http://[::1]:2560").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 2560));
        assert_eq!(u.host_header(), "[::1]:2560");
        let u = OcspUrl::parse("http://h?q").unwrap();
        assert_eq!(u.path, "/?q");
    }

    #[test]
    fn refuses_what_it_should() {
        for bad in [
            "",
            "ocsp.example.org",
            "https://ocsp.example.org/",
            "ldap://x/",
            "http://",
            "http://:80/",
            "http://user@host/",
            "http://host:0/",
            "http://host:65536/",
            "http://host:/",
            "http://host:12a/",
            "http://[::1/",
            "http://[nope]/",
            "http://[::1]x/",
            "http://ho st/",
            "http://h\u{e9}st/",
            "http://host/\n",
            "http://a:b:c/",
        ] {
            assert!(OcspUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(OcspUrl::parse(&long).is_err());
    }

    /// Randomized: never panics; whatever is accepted re-parses to itself.
    #[test]
    fn parse_never_panics() {
        let mut state: u64 = 0xdead_beef_cafe_f00d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            "http://127.0.0.1:8080/ocsp",
            "http://[::1]:80/",
            "http://ocsp.example.org/a?b#c",
        ];
        let alphabet = b"hpt:/[]@?#.0a9 \x00\xc3\xa9%";
        for i in 0..5000 {
            let mut v = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 5) {
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                let at = (next() % (v.len() as u64 + 1)) as usize;
                match next() % 3 {
                    0 if at < v.len() => v[at] = c,
                    1 => v.insert(at, c),
                    _ => v.truncate(at),
                }
            }
            let text = String::from_utf8_lossy(&v);
            if let Ok(u) = OcspUrl::parse(&text) {
                assert!(u.path.starts_with('/'));
                assert_eq!(OcspUrl::parse(&u.to_string()).unwrap(), u, "{text:?}");
            }
        }
    }
}
