//! Routes of an HTTPS listener (`[[osg.listener.route]]`): which upstream a request
//! goes to and which rules apply to it — accepted authentication methods, allowed
//! identities, required USS flags, identity forwarding, upstream timeout and body
//! limit. Sans-IO: [`RouteTable::select`] takes the request's authority and path.
//!
//! # Selection
//!
//! A listener without routes has one implicit route, named
//! [`IMPLICIT_ROUTE_NAME`], built from the listener's own `upstream`, `auth`, `allow`,
//! `required_flags` and limits; it takes every request exactly as the gateway did
//! before routes existed (no path checks at all).
//!
//! With routes, the routes whose `host` matches the request authority are tried first,
//! then the routes without `host`; within each group the longest matching
//! `path_prefix` wins. No match: 404. A prefix matches segment-wise: `/api` matches
//! `/api`, `/api/x` and `/api;p`, not `/apix`; a prefix ending in `/` matches every
//! path that starts with it. A `host` without a port matches the name on any port; with
//! a port, only that port. Names compare without case and without a trailing dot.
//!
//! # Paths are matched in canonical form
//!
//! Authorisation differs per route, so a request must not reach a route's upstream by
//! spelling its path so that the gateway and the upstream read it differently. Before
//! matching, [`canonical_path`] decodes percent-encoded unreserved characters
//! (`%61` = `a`, `%2E` = `.`) and merges repeated slashes; it refuses (400) `.` and `..`
//! segments (also `..;x`), encoded `/`, `\` and NUL (`%2F`, `%5C`, `%00`), raw `\`, and
//! broken escapes. The request is forwarded with its original path. Matching is
//! case-sensitive: put routes in front of upstreams that read paths the same way.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::time::Duration;

use crate::config::{is_valid_name, parse_http_upstream, AuthMethod, ListenerConfig};
use crate::principal::{authorize_rules, Denied, Principal};

/// Most routes on one listener.
pub const MAX_ROUTES: usize = 256;
/// Longest `path_prefix`.
pub const MAX_PREFIX_LEN: usize = 1024;
/// Longest `host` of a route, and longest request authority looked at.
pub const MAX_HOST_LEN: usize = 262;
/// Longest request path that is canonicalised (longer ones are refused on listeners
/// with routes).
pub const MAX_PATH_LEN: usize = 8192;
/// Name of the implicit route of a listener without routes (metrics and audit).
pub const IMPLICIT_ROUTE_NAME: &str = "default";

/// What is wrong with one route of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteProblem {
    /// The name is not 1..=64 of `[A-Za-z0-9_-]`.
    #[error("name must be 1..=64 of [A-Za-z0-9_-]")]
    Name,
    /// Another route of the listener has this name.
    #[error("duplicate route name")]
    DuplicateName,
    /// The path prefix is not usable.
    #[error("path_prefix {0}")]
    Prefix(&'static str),
    /// The host is not a host name or IP literal with an optional port.
    #[error("host must be a DNS name or IP literal, optionally with :port")]
    Host,
    /// `auth = []`.
    #[error("auth must name at least one method")]
    AuthEmpty,
    /// A method is listed twice.
    #[error("auth lists a method twice")]
    AuthDuplicate,
    /// A method the listener does not accept.
    #[error("auth must be a subset of the listener's auth")]
    AuthNotSubset,
    /// Neither the route nor the listener names an upstream.
    #[error("upstream is required (on the route or the listener)")]
    NoUpstream,
    /// The upstream is not `http://host:port`.
    #[error("upstream {0}")]
    Upstream(String),
    /// `allow = []`.
    #[error("allow is empty (nobody could pass); use [\"*\"] for any identity")]
    AllowEmpty,
    /// `upstream_timeout_secs = 0` or `max_body_bytes = 0`.
    #[error("upstream_timeout_secs and max_body_bytes must be positive")]
    ZeroLimit,
}

/// Why the routes of a listener are refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// More than [`MAX_ROUTES`].
    #[error("more than {MAX_ROUTES} routes")]
    TooMany,
    /// One route is invalid.
    #[error("route {route:?}: {problem}")]
    Invalid {
        /// The route's name.
        route: String,
        /// What is wrong.
        problem: RouteProblem,
    },
    /// Two routes share `host` and `path_prefix`.
    #[error("routes {first:?} and {second:?} have the same host and path_prefix")]
    Duplicate {
        /// The first route.
        first: String,
        /// The second route.
        second: String,
    },
}

/// Why a request path cannot be matched against routes (answered with 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Longer than [`MAX_PATH_LEN`].
    #[error("path too long")]
    TooLong,
    /// Does not start with `/` (`*`, authority-form).
    #[error("path is not absolute")]
    NotAbsolute,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadEscape,
    /// A `.` or `..` segment.
    #[error("dot segment in path")]
    DotSegment,
    /// `%2F`, `%5C`, `%00` or a raw `\`.
    #[error("encoded separator or backslash in path")]
    Separator,
}

/// A request authority split for matching: lower-case host without a trailing dot,
/// and the port if one was given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostKey {
    /// Host name or IP literal (IPv6 in brackets).
    pub host: String,
    /// The port, when the authority names one.
    pub port: Option<u16>,
}

impl HostKey {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (no user info). `None` when
    /// malformed or longer than [`MAX_HOST_LEN`].
    pub fn parse(authority: &str) -> Option<HostKey> {
        if authority.is_empty() || authority.len() > MAX_HOST_LEN {
            return None;
        }
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            if inside.is_empty()
                || !inside
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return None;
            }
            let port = match after {
                "" => None,
                p => Some(parse_port(p.strip_prefix(':')?)?),
            };
            (format!("[{}]", inside.to_ascii_lowercase()), port)
        } else {
            let (name, port) = match authority.split_once(':') {
                Some((n, p)) => (n, Some(parse_port(p)?)),
                None => (authority, None),
            };
            let name = name.strip_suffix('.').unwrap_or(name);
            if name.is_empty()
                || name.starts_with('.')
                || name.contains("..")
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                return None;
            }
            (name.to_ascii_lowercase(), port)
        };
        Some(HostKey { host, port })
    }

    /// True when a route for `self` takes a request for `request`.
    fn admits(&self, request: &HostKey) -> bool {
        self.host == request.host && (self.port.is_none() || self.port == request.port)
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

/// One route, with the listener's values filled in.
#[derive(Clone, Debug)]
pub struct Route {
    /// Metrics and audit label.
    pub name: String,
    /// The host it is limited to.
    pub host: Option<HostKey>,
    /// Canonical path prefix.
    pub path_prefix: String,
    /// Upstream authority (`host:port`).
    pub upstream: String,
    /// Accepted methods.
    pub auth: Vec<AuthMethod>,
    /// Identities allowed (`"*"` = any).
    pub allow: Vec<String>,
    /// USS flags that must all be present.
    pub required_flags: Vec<u32>,
    /// Add the identity headers for the upstream.
    pub forward_identity: bool,
    /// Upstream connect + response head time.
    pub upstream_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Route {
    /// True when `m` is accepted on this route.
    pub fn accepts(&self, m: AuthMethod) -> bool {
        self.auth.contains(&m)
    }

    /// `allow`, `required_flags` and the key expiry at `now`.
    pub fn authorize(&self, p: &Principal, now: i64) -> Result<(), Denied> {
        authorize_rules(&self.allow, &self.required_flags, p, now)
    }

    fn matches_path(&self, canonical: &str) -> bool {
        prefix_matches(&self.path_prefix, canonical)
    }
}

/// True when `canonical` (a [`canonical_path`]) is at or below `prefix`.
pub fn prefix_matches(prefix: &str, canonical: &str) -> bool {
    if prefix.ends_with('/') {
        return canonical.starts_with(prefix);
    }
    // `;` counts as a boundary because some servers drop path parameters
    // (`/admin;x` is `/admin` to them).
    canonical
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with(';'))
}

/// The canonical form of a request path used for route matching (see the module
/// documentation). `path` is the path only, without the query.
pub fn canonical_path(path: &str) -> Result<String, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape);
                };
                let v = (hi << 4) | lo;
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    // RFC 3986 §6.2.2.2: equivalent to the character itself.
                    decoded.push(v);
                } else if matches!(v, b'/' | b'\\' | 0) {
                    return Err(PathError::Separator);
                } else {
                    decoded.push(b'%');
                    decoded.push(HEX_UPPER.get(usize::from(hi)).copied().unwrap_or(b'0'));
                    decoded.push(HEX_UPPER.get(usize::from(lo)).copied().unwrap_or(b'0'));
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Separator),
            _ => {
                decoded.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII sequences were replaced by ASCII bytes, so this stays UTF-8.
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::BadEscape)?;
    let trailing = decoded.ends_with('/');
    let mut out = String::with_capacity(decoded.len());
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        let name = seg.split(';').next().unwrap_or(seg);
        if name == "." || name == ".." {
            return Err(PathError::DotSegment);
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn check_prefix(p: &str) -> Result<(), RouteProblem> {
    if !p.starts_with('/') {
        return Err(RouteProblem::Prefix("must start with \"/\""));
    }
    if p.len() > MAX_PREFIX_LEN {
        return Err(RouteProblem::Prefix("is too long"));
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#' | b';' | b'\\'))
    {
        return Err(RouteProblem::Prefix(
            "must be printable ASCII without %, ?, #, ; or \\",
        ));
    }
    if canonical_path(p).as_deref() != Ok(p) {
        return Err(RouteProblem::Prefix(
            "must be canonical (no \".\" or \"..\" segments, no \"//\")",
        ));
    }
    Ok(())
}

/// The routes of one HTTPS listener, in match order.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    explicit: bool,
}

impl RouteTable {
    /// The listener's routes, or its implicit route when it has none. Checks every
    /// rule of the route configuration.
    pub fn from_listener(l: &ListenerConfig) -> Result<Self, RouteError> {
        if !l.has_routes() {
            let route = Route {
                name: IMPLICIT_ROUTE_NAME.to_string(),
                host: None,
                path_prefix: "/".to_string(),
                upstream: match l.upstream() {
                    Some(u) => parse_http_upstream(u).map_err(|e| RouteError::Invalid {
                        route: IMPLICIT_ROUTE_NAME.into(),
                        problem: RouteProblem::Upstream(e),
                    })?,
                    None => {
                        return Err(RouteError::Invalid {
                            route: IMPLICIT_ROUTE_NAME.into(),
                            problem: RouteProblem::NoUpstream,
                        })
                    }
                },
                auth: l.auth.clone(),
                allow: l.allow.clone(),
                required_flags: l.required_flags.clone(),
                forward_identity: true,
                upstream_timeout: Duration::from_secs(l.limits.upstream_timeout_secs),
                max_body_bytes: l.limits.max_body_bytes,
            };
            return Ok(RouteTable {
                routes: vec![route],
                explicit: false,
            });
        }
        if l.routes.len() > MAX_ROUTES {
            return Err(RouteError::TooMany);
        }
        let mut names = HashSet::new();
        let mut keys: Vec<((Option<HostKey>, String), String)> = Vec::new();
        let mut routes = Vec::with_capacity(l.routes.len());
        for r in &l.routes {
            let bad = |problem| RouteError::Invalid {
                route: r.name.clone(),
                problem,
            };
            if !is_valid_name(&r.name) {
                return Err(bad(RouteProblem::Name));
            }
            if !names.insert(r.name.as_str()) {
                return Err(bad(RouteProblem::DuplicateName));
            }
            check_prefix(&r.path_prefix).map_err(bad)?;
            let host = match &r.host {
                None => None,
                Some(h) => Some(HostKey::parse(h).ok_or_else(|| bad(RouteProblem::Host))?),
            };
            let key = (host.clone(), r.path_prefix.clone());
            if let Some((_, first)) = keys.iter().find(|(k, _)| *k == key) {
                return Err(RouteError::Duplicate {
                    first: first.clone(),
                    second: r.name.clone(),
                });
            }
            keys.push((key, r.name.clone()));
            let auth = match &r.auth {
                None => l.auth.clone(),
                Some(a) => {
                    if a.is_empty() {
                        return Err(bad(RouteProblem::AuthEmpty));
                    }
                    let set: HashSet<AuthMethod> = a.iter().copied().collect();
                    if set.len() != a.len() {
                        return Err(bad(RouteProblem::AuthDuplicate));
                    }
                    if !a.iter().all(|m| l.accepts(*m)) {
                        return Err(bad(RouteProblem::AuthNotSubset));
                    }
                    a.clone()
                }
            };
            let upstream = r
                .upstream
                .as_deref()
                .or(l.upstream())
                .ok_or_else(|| bad(RouteProblem::NoUpstream))?;
            let upstream =
                parse_http_upstream(upstream).map_err(|e| bad(RouteProblem::Upstream(e)))?;
            let allow = r.allow.clone().unwrap_or_else(|| l.allow.clone());
            if allow.is_empty() {
                return Err(bad(RouteProblem::AllowEmpty));
            }
            let timeout = r
                .upstream_timeout_secs
                .unwrap_or(l.limits.upstream_timeout_secs);
            let max_body = r.max_body_bytes.unwrap_or(l.limits.max_body_bytes);
            if timeout == 0 || max_body == 0 {
                return Err(bad(RouteProblem::ZeroLimit));
            }
            routes.push(Route {
                name: r.name.clone(),
                host,
                path_prefix: r.path_prefix.clone(),
                upstream,
                auth,
                allow,
                required_flags: r
                    .required_flags
                    .clone()
                    .unwrap_or_else(|| l.required_flags.clone()),
                forward_identity: r.forward_identity,
                upstream_timeout: Duration::from_secs(timeout),
                max_body_bytes: max_body,
            });
        }
        // Host-specific routes first, then the longest prefix, then a host with a
        // port before the same host without one: the first match is the answer.
        routes.sort_by_key(|r| {
            (
                r.host.is_none(),
                Reverse(r.path_prefix.len()),
                r.host.as_ref().is_some_and(|h| h.port.is_none()),
            )
        });
        Ok(RouteTable {
            routes,
            explicit: true,
        })
    }

    /// True when the listener configured routes (false: the implicit route only).
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// Every route, in match order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request with `authority` (`:authority` or `Host`, if any) and
    /// `path` (without the query). `Ok(None)`: no route (404). `Err`: the path cannot
    /// be matched safely (400). The implicit route takes every request unexamined.
    pub fn select(&self, authority: Option<&str>, path: &str) -> Result<Option<&Route>, PathError> {
        if !self.explicit {
            return Ok(self.routes.first());
        }
        let canonical = canonical_path(path)?;
        let host = authority.and_then(HostKey::parse);
        Ok(self.routes.iter().find(|r| {
            let host_ok = match (&r.host, &host) {
                (None, _) => true,
                (Some(want), Some(got)) => want.admits(got),
                (Some(_), None) => false,
            };
            host_ok && r.matches_path(&canonical)
        }))
    }

    /// Longest upstream timeout of the table (the connector's connect timeout).
    pub fn max_upstream_timeout(&self) -> Duration {
        self.routes
            .iter()
            .map(|r| r.upstream_timeout)
            .max()
            .unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(extra: &str) -> ListenerConfig {
        let text = format!(
            r#"
name = "l"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = {{ cert_file = "/c", key_file = "/k" }}
allow = ["sip:default@x"]
required_flags = [9]
limits = {{ upstream_timeout_secs = 7, max_body_bytes = 1000 }}
{extra}
"#
        );
        toml::from_str(&text).unwrap()
    }

    const ROUTES: &str = r#"
[[route]]
name = "root"
path_prefix = "/"
upstream = "http://127.0.0.1:1"
[[route]]
name = "api"
path_prefix = "/api"
upstream = "http://127.0.0.1:2"
auth = ["psk"]
allow = ["*"]
required_flags = []
forward_identity = false
upstream_timeout_secs = 2
max_body_bytes = 10
[[route]]
name = "api-v2"
path_prefix = "/api/v2/"
upstream = "http://127.0.0.1:3"
[[route]]
name = "named"
host = "Enabler.Example.ORG"
path_prefix = "/"
upstream = "http://127.0.0.1:4"
[[route]]
name = "named-port"
host = "enabler.example.org:8443"
path_prefix = "/"
upstream = "http://127.0.0.1:6"
[[route]]
name = "named-api"
host = "enabler.example.org"
path_prefix = "/api"
upstream = "http://127.0.0.1:5"
"#;

    fn pick<'a>(t: &'a RouteTable, host: Option<&str>, path: &str) -> Option<&'a str> {
        t.select(host, path).unwrap().map(|r| r.name.as_str())
    }

    #[test]
    fn longest_prefix_and_host_first() {
        let t = RouteTable::from_listener(&listener(ROUTES)).unwrap();
        assert!(t.is_explicit());
        assert_eq!(pick(&t, None, "/"), Some("root"));
        assert_eq!(pick(&t, None, "/x/y"), Some("root"));
        assert_eq!(pick(&t, None, "/api"), Some("api"));
        assert_eq!(pick(&t, None, "/api/"), Some("api"));
        assert_eq!(pick(&t, None, "/api/x"), Some("api"));
        assert_eq!(pick(&t, None, "/api;jsessionid=1"), Some("api"));
        // Segment boundary: /apix is not under /api.
        assert_eq!(pick(&t, None, "/apix"), Some("root"));
        // A prefix ending in "/" does not take the bare directory.
        assert_eq!(pick(&t, None, "/api/v2"), Some("api"));
        assert_eq!(pick(&t, None, "/api/v2/x"), Some("api-v2"));
        // Host routes come first, whatever the prefix length of host-less ones.
        let h = Some("enabler.example.org");
        assert_eq!(pick(&t, h, "/api/v2/x"), Some("named-api"));
        assert_eq!(pick(&t, h, "/other"), Some("named"));
        assert_eq!(
            pick(&t, Some("ENABLER.example.org.:443"), "/"),
            Some("named")
        );
        assert_eq!(
            pick(&t, Some("enabler.example.org:8443"), "/"),
            Some("named-port")
        );
        assert_eq!(pick(&t, Some("other.example.org"), "/api"), Some("api"));
        assert_eq!(pick(&t, Some("bad host"), "/api"), Some("api"));
    }

    #[test]
    fn inheritance_and_overrides() {
        let t = RouteTable::from_listener(&listener(ROUTES)).unwrap();
        let root = t.routes().iter().find(|r| r.name == "root").unwrap();
        assert_eq!(root.allow, vec!["sip:default@x"]);
        assert_eq!(root.required_flags, vec![9]);
        assert_eq!(root.auth, vec![AuthMethod::Psk, AuthMethod::Digest]);
        assert_eq!(root.upstream_timeout, Duration::from_secs(7));
        assert_eq!(root.max_body_bytes, 1000);
        assert!(root.forward_identity);
        let api = t.routes().iter().find(|r| r.name == "api").unwrap();
        assert_eq!(api.allow, vec!["*"]);
        assert!(api.required_flags.is_empty());
        assert_eq!(api.auth, vec![AuthMethod::Psk]);
        assert!(api.accepts(AuthMethod::Psk) && !api.accepts(AuthMethod::Digest));
        assert_eq!(api.upstream, "127.0.0.1:2");
        assert_eq!(api.upstream_timeout, Duration::from_secs(2));
        assert_eq!(api.max_body_bytes, 10);
        assert!(!api.forward_identity);
        // The listener's upstream is the default of routes without one.
        let mut l = listener("[[route]]\nname = \"r\"\npath_prefix = \"/r\"\n");
        assert!(matches!(
            RouteTable::from_listener(&l),
            Err(RouteError::Invalid {
                problem: RouteProblem::NoUpstream,
                ..
            })
        ));
        l.upstream = "http://127.0.0.1:9".into();
        let t = RouteTable::from_listener(&l).unwrap();
        assert_eq!(t.routes()[0].upstream, "127.0.0.1:9");
        // Routes only: no match is no route.
        assert_eq!(pick(&t, None, "/"), None);
        assert_eq!(pick(&t, None, "/rr"), None);
        assert_eq!(pick(&t, None, "/r/x"), Some("r"));
    }

    #[test]
    fn implicit_route_takes_everything_unexamined() {
        let mut l = listener("");
        l.upstream = "http://127.0.0.1:9/".into();
        let t = RouteTable::from_listener(&l).unwrap();
        assert!(!t.is_explicit());
        let r = t.select(None, "/../%zz").unwrap().unwrap();
        assert_eq!(r.name, IMPLICIT_ROUTE_NAME);
        assert_eq!(r.upstream, "127.0.0.1:9");
        assert_eq!(r.allow, vec!["sip:default@x"]);
        assert_eq!(t.select(Some("x"), "*").unwrap().unwrap().name, "default");
        l.upstream = String::new();
        assert!(RouteTable::from_listener(&l).is_err());
    }

    #[test]
    fn route_validation() {
        let one = |body: &str| {
            let l = listener(&format!(
                "[[route]]\nname = \"r\"\npath_prefix = \"/r\"\nupstream = \"http://127.0.0.1:1\"\n{body}"
            ));
            RouteTable::from_listener(&l)
        };
        assert!(one("").is_ok());
        for (body, want) in [
            ("auth = []", RouteProblem::AuthEmpty),
            ("auth = [\"psk\", \"psk\"]", RouteProblem::AuthDuplicate),
            ("auth = [\"mtls\"]", RouteProblem::AuthNotSubset),
            ("allow = []", RouteProblem::AllowEmpty),
            ("upstream_timeout_secs = 0", RouteProblem::ZeroLimit),
            ("max_body_bytes = 0", RouteProblem::ZeroLimit),
            ("host = \"a b\"", RouteProblem::Host),
            ("host = \"user@a\"", RouteProblem::Host),
            ("host = \"a:0\"", RouteProblem::Host),
            ("host = \"a:99999\"", RouteProblem::Host),
            ("host = \"\"", RouteProblem::Host),
        ] {
            match one(body) {
                Err(RouteError::Invalid { problem, .. }) => assert_eq!(problem, want, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let prefix = |p: &str| {
            let l = listener(&format!(
                "[[route]]\nname = \"r\"\npath_prefix = {p:?}\nupstream = \"http://127.0.0.1:1\"\n"
            ));
            RouteTable::from_listener(&l)
        };
        for good in ["/", "/a", "/a/", "/a/b-c_d.e~f", "/a:b@c"] {
            assert!(prefix(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a", "/a//b", "/a/../b", "/.", "/a/./", "/%61", "/a?b", "/a#b", "/a;b", "/a b",
            "/a\\b", "/é",
        ] {
            assert!(
                matches!(
                    prefix(bad),
                    Err(RouteError::Invalid {
                        problem: RouteProblem::Prefix(_),
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_PREFIX_LEN));
        assert!(prefix(&long).is_err());
        // Bad names and duplicates.
        let l = listener(
            "[[route]]\nname = \"a b\"\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:1\"\n",
        );
        assert!(matches!(
            RouteTable::from_listener(&l),
            Err(RouteError::Invalid {
                problem: RouteProblem::Name,
                ..
            })
        ));
        let dup = "[[route]]\nname = \"a\"\npath_prefix = \"/x\"\nhost = \"H.example\"\nupstream = \"http://127.0.0.1:1\"\n\
                   [[route]]\nname = \"b\"\npath_prefix = \"/x\"\nhost = \"h.example.\"\nupstream = \"http://127.0.0.1:2\"\n";
        assert_eq!(
            RouteTable::from_listener(&listener(dup)).unwrap_err(),
            RouteError::Duplicate {
                first: "a".into(),
                second: "b".into()
            }
        );
        // Same prefix on different hosts (or with and without host) is fine.
        let ok = "[[route]]\nname = \"a\"\npath_prefix = \"/x\"\nhost = \"h1\"\nupstream = \"http://127.0.0.1:1\"\n\
                  [[route]]\nname = \"b\"\npath_prefix = \"/x\"\nupstream = \"http://127.0.0.1:2\"\n";
        assert!(RouteTable::from_listener(&listener(ok)).is_ok());
        let same_name = ok.replace("name = \"b\"", "name = \"a\"");
        assert!(matches!(
            RouteTable::from_listener(&listener(&same_name)),
            Err(RouteError::Invalid {
                problem: RouteProblem::DuplicateName,
                ..
            })
        ));
        let bad_up =
            "[[route]]\nname = \"a\"\npath_prefix = \"/x\"\nupstream = \"https://127.0.0.1:1\"\n";
        assert!(matches!(
            RouteTable::from_listener(&listener(bad_up)),
            Err(RouteError::Invalid {
                problem: RouteProblem::Upstream(_),
                ..
            })
        ));
        let many: String = (0..=MAX_ROUTES)
            .map(|i| {
                format!("[[route]]\nname = \"r{i}\"\npath_prefix = \"/{i}\"\nupstream = \"http://127.0.0.1:1\"\n")
            })
            .collect();
        assert_eq!(
            RouteTable::from_listener(&listener(&many)).unwrap_err(),
            RouteError::TooMany
        );
    }

    #[test]
    fn canonical_paths() {
        for (input, want) in [
            ("/", "/"),
            ("//", "/"),
            ("/a", "/a"),
            ("/a/", "/a/"),
            ("//a///b//", "/a/b/"),
            ("/%61%41%7e%2d", "/aA~-"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/a;p=1/b", "/a;p=1/b"),
            ("/...", "/..."),
            ("/.a/..b", "/.a/..b"),
        ] {
            assert_eq!(canonical_path(input).as_deref(), Ok(want), "{input}");
        }
        for (input, want) in [
            ("", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("a/b", PathError::NotAbsolute),
            ("/a/../b", PathError::DotSegment),
            ("/a/..", PathError::DotSegment),
            ("/./a", PathError::DotSegment),
            ("/a/%2e%2E/b", PathError::DotSegment),
            ("/a/.%2e", PathError::DotSegment),
            ("/a/..;x/b", PathError::DotSegment),
            ("/a%2fb", PathError::Separator),
            ("/a%5Cb", PathError::Separator),
            ("/a%00", PathError::Separator),
            ("/a\\b", PathError::Separator),
            ("/a%", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("/a%zz", PathError::BadEscape),
        ] {
            assert_eq!(canonical_path(input), Err(want), "{input}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(canonical_path(&long), Err(PathError::TooLong));
    }

    #[test]
    fn tricks_do_not_escape_a_stricter_route() {
        // "/admin" is stricter than "/": spellings an upstream reads as /admin must
        // either reach the /admin route or be refused.
        let l = listener(
            "[[route]]\nname = \"open\"\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:1\"\n\
             [[route]]\nname = \"admin\"\npath_prefix = \"/admin\"\nupstream = \"http://127.0.0.1:2\"\n",
        );
        let t = RouteTable::from_listener(&l).unwrap();
        for p in [
            "/admin",
            "//admin",
            "/%61dmin/x",
            "/admin;x",
            "/admin/",
            "///admin//x",
        ] {
            assert_eq!(pick(&t, None, p), Some("admin"), "{p}");
        }
        for p in [
            "/x/../admin",
            "/x/%2e%2e/admin",
            "/x%2f..%2fadmin",
            "/x/..;/admin",
        ] {
            assert!(t.select(None, p).is_err(), "{p}");
        }
    }

    #[test]
    fn host_keys() {
        let k = |s: &str| HostKey::parse(s);
        assert_eq!(
            k("Naf.Example.org."),
            Some(HostKey {
                host: "naf.example.org".into(),
                port: None
            })
        );
        assert_eq!(k("a:443").unwrap().port, Some(443));
        assert_eq!(k("[::1]:8443").unwrap().host, "[::1]");
        assert_eq!(k("[::1]").unwrap().port, None);
        assert_eq!(k("127.0.0.1:80").unwrap().host, "127.0.0.1");
        for bad in [
            "", ":80", "a:", "a:x", "a:0", "a:65536", "[::1", "[]", "[::1]x", "[g::]", "a..b",
            ".a", "a/b", "a@b", "a b", "a:1:2",
        ] {
            assert_eq!(k(bad), None, "{bad:?}");
        }
        assert_eq!(k(&"a".repeat(MAX_HOST_LEN + 1)), None);
    }

    /// xorshift64*: a deterministic stream for the never-panics test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    #[test]
    fn matching_never_panics_and_stays_canonical() {
        let t = RouteTable::from_listener(&listener(ROUTES)).unwrap();
        let seeds = [
            "/api/v2/x",
            "/a/%2e%2e/b",
            "//x;y/..;/z",
            "/%61%zz",
            "[::1]:8443",
            "Enabler.example.org.:8443",
        ];
        let alphabet = b"/.;%2eEfF5cC0aA:[]@ \\x~";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let mut s: Vec<u8> = seeds[rng.below(seeds.len())].as_bytes().to_vec();
            for _ in 0..rng.below(6) {
                let pos = rng.below(s.len() + 1);
                match rng.below(3) {
                    0 => s.insert(pos, alphabet[rng.below(alphabet.len())]),
                    1 if pos < s.len() => {
                        s.remove(pos);
                    }
                    _ => s.insert(pos, u8::try_from(rng.below(256)).unwrap_or(0)),
                }
            }
            let text = String::from_utf8_lossy(&s);
            let _ = HostKey::parse(&text);
            let _ = t.select(Some(&text), &text);
            if let Ok(c) = canonical_path(&text) {
                // Canonical output is a fixed point and has no dot segments or "//".
                assert_eq!(canonical_path(&c).as_deref(), Ok(c.as_str()), "{text:?}");
                assert!(!c.contains("//"), "{c:?}");
            }
        }
    }
}
