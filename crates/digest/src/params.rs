//! The auth-param list grammar shared by the three Digest headers (RFC 7235 §2.1,
//! RFC 7230 §3.2.6), parsed strictly and with hard bounds because it runs on
//! unauthenticated input at the network edge.
//!
//! ```text
//! credentials = auth-scheme [ 1*SP #auth-param ]
//! auth-param  = token BWS "=" BWS ( token / quoted-string )
//! #rule       = empty elements allowed: "a=1, ,b=2" is fine
//! ```

use crate::error::ParseError;

/// Maximum length of a header value, in bytes. Real Digest headers are a few hundred
/// bytes; the bound stops memory and CPU abuse before any work is done.
pub const MAX_HEADER_LEN: usize = 8192;
/// Maximum number of parameters in one header value, unknown ones included.
pub const MAX_PARAMS: usize = 32;
/// Maximum length of one parameter value after unescaping, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;

/// Longest parameter name echoed back in [`ParseError::Duplicate`].
const MAX_NAME_IN_ERROR: usize = 64;

/// One parsed `name=value`.
#[derive(Debug)]
pub(crate) struct Param {
    /// Lowercased name (names are case-insensitive).
    pub name: String,
    /// The value, unescaped if it was a quoted-string.
    pub value: String,
}

/// RFC 7230 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Control characters other than HTAB (CR and LF included).
fn is_ctl(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn syntax(&self) -> ParseError {
        ParseError::BadSyntax { at: self.pos }
    }

    /// 1*tchar, returned as a slice of the input.
    fn token(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.syntax());
        }
        // tchar is ASCII, so both ends are char boundaries; `get` keeps this panic-free.
        self.text
            .get(start..self.pos)
            .ok_or(ParseError::BadSyntax { at: start })
    }

    /// A quoted-string starting at the opening DQUOTE; returns the unescaped content.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let value_at = self.pos;
        self.pos += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.peek().ok_or(self.syntax())?;
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    let escaped = self.peek().ok_or(self.syntax())?;
                    if is_ctl(escaped) {
                        return Err(self.syntax());
                    }
                    out.push(escaped);
                    self.pos += 1;
                }
                _ if is_ctl(b) => return Err(self.syntax()),
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
            if out.len() > MAX_VALUE_LEN {
                return Err(ParseError::ValueTooLong { at: value_at });
            }
        }
        // Only ASCII backslashes were removed, so the bytes are still UTF-8; check anyway.
        String::from_utf8(out).map_err(|_| ParseError::BadSyntax { at: value_at })
    }
}

/// Splits `Digest <params>` into its parameters.
pub(crate) fn parse_digest(header_value: &str) -> Result<Vec<Param>, ParseError> {
    check_len(header_value)?;
    let mut c = Cursor {
        bytes: header_value.as_bytes(),
        text: header_value,
        pos: 0,
    };
    c.skip_ows();
    let scheme = c.token().map_err(|_| ParseError::NotDigest)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(ParseError::NotDigest);
    }
    match c.peek() {
        None => return Ok(Vec::new()),
        Some(b' ' | b'\t') => {}
        Some(_) => return Err(c.syntax()),
    }
    parse_list(&mut c)
}

/// Parses a bare parameter list (the `Authentication-Info` form, no scheme).
pub(crate) fn parse_bare(header_value: &str) -> Result<Vec<Param>, ParseError> {
    check_len(header_value)?;
    let mut c = Cursor {
        bytes: header_value.as_bytes(),
        text: header_value,
        pos: 0,
    };
    parse_list(&mut c)
}

fn check_len(v: &str) -> Result<(), ParseError> {
    if v.len() > MAX_HEADER_LEN {
        Err(ParseError::TooLong)
    } else {
        Ok(())
    }
}

fn parse_list(c: &mut Cursor<'_>) -> Result<Vec<Param>, ParseError> {
    let mut params: Vec<Param> = Vec::new();
    loop {
        // Empty list elements ("a=1,,b=2", leading or trailing commas) are allowed.
        c.skip_ows();
        match c.peek() {
            None => break,
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token()?.to_ascii_lowercase();
        c.skip_ows();
        if c.peek() != Some(b'=') {
            return Err(c.syntax());
        }
        c.pos += 1;
        c.skip_ows();
        let at = c.pos;
        let value = match c.peek() {
            Some(b'"') => c.quoted()?,
            Some(_) => c.token()?.to_owned(),
            None => return Err(c.syntax()),
        };
        if value.len() > MAX_VALUE_LEN {
            return Err(ParseError::ValueTooLong { at });
        }
        c.skip_ows();
        match c.peek() {
            None | Some(b',') => {}
            Some(_) => return Err(c.syntax()),
        }
        if params.iter().any(|p| p.name == name) {
            let mut shown = name;
            shown.truncate(MAX_NAME_IN_ERROR); // names are ASCII, any cut is a boundary
            return Err(ParseError::Duplicate(shown));
        }
        if params.len() >= MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        params.push(Param { name, value });
    }
    Ok(params)
}

/// Writes `s` as a quoted-string. Only `"` and `\` need escaping; control characters
/// cannot be carried at all, so values holding them produce a header value that
/// HTTP libraries (and our own parser) reject rather than a silently altered one.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// Appends `name="value"` with a separator.
pub(crate) fn push_quoted_param(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push('=');
    push_quoted(out, value);
}

/// Appends `name=token` with a separator.
pub(crate) fn push_token_param(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

fn push_sep(out: &mut String) {
    if !out.is_empty() && !out.ends_with(' ') {
        out.push_str(", ");
    }
}

/// Typed access to a parsed list: each known parameter is taken once, and whatever is
/// left is an unknown parameter, which RFC 7616 §3.3 says to ignore.
pub(crate) struct Params(Vec<Param>);

impl Params {
    pub(crate) fn new(v: Vec<Param>) -> Self {
        Params(v)
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<Param> {
        let i = self.0.iter().position(|p| p.name == name)?;
        Some(self.0.swap_remove(i))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.name == name)
    }

    pub(crate) fn required(&mut self, name: &'static str) -> Result<String, ParseError> {
        self.take(name)
            .map(|p| p.value)
            .ok_or(ParseError::Missing(name))
    }

    pub(crate) fn optional(&mut self, name: &str) -> Option<String> {
        self.take(name).map(|p| p.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Result<Vec<(String, String)>, ParseError> {
        parse_digest(v).map(|ps| ps.into_iter().map(|p| (p.name, p.value)).collect())
    }

    #[test]
    fn tokens_quoted_and_escapes() {
        let got = pairs(r#"Digest a=tok, B="x\"y\\z", c="", d = "s p""#).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), "tok".into()),
                ("b".into(), r#"x"y\z"#.into()),
                ("c".into(), "".into()),
                ("d".into(), "s p".into()),
            ]
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_needs_space() {
        assert!(pairs("dIgEsT a=1").is_ok());
        assert_eq!(pairs("Basic a=1"), Err(ParseError::NotDigest));
        assert_eq!(pairs(""), Err(ParseError::NotDigest));
        assert_eq!(pairs("Digest").unwrap(), vec![]);
        assert_eq!(pairs("Digest,a=1"), Err(ParseError::BadSyntax { at: 6 }));
    }

    #[test]
    fn empty_elements_and_ows() {
        let got = pairs("Digest ,, a=1 ,\t, b\t=\t2 ,").unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn syntax_errors_report_offsets() {
        assert_eq!(pairs("Digest a"), Err(ParseError::BadSyntax { at: 8 }));
        assert_eq!(pairs("Digest a="), Err(ParseError::BadSyntax { at: 9 }));
        assert_eq!(
            pairs("Digest a=1 b=2"),
            Err(ParseError::BadSyntax { at: 11 })
        );
        assert_eq!(
            pairs(r#"Digest a="x"#),
            Err(ParseError::BadSyntax { at: 11 })
        );
        assert_eq!(
            pairs("Digest a=\"x\ny\""),
            Err(ParseError::BadSyntax { at: 11 })
        );
        assert_eq!(
            pairs("Digest a=\"x\\\r\""),
            Err(ParseError::BadSyntax { at: 12 })
        );
        assert_eq!(
            pairs("Digest a=\"\x7f\""),
            Err(ParseError::BadSyntax { at: 10 })
        );
        assert_eq!(pairs("Digest a=/"), Err(ParseError::BadSyntax { at: 9 }));
        assert_eq!(pairs("Digest =1"), Err(ParseError::BadSyntax { at: 7 }));
    }

    #[test]
    fn duplicates_are_case_insensitive() {
        assert_eq!(
            pairs("Digest nc=1, NC=2"),
            Err(ParseError::Duplicate("nc".into()))
        );
        let long = "x".repeat(200);
        let e = pairs(&format!("Digest {long}=1, {long}=2")).unwrap_err();
        assert_eq!(e, ParseError::Duplicate("x".repeat(64)));
    }

    #[test]
    fn bounds() {
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            pairs(&format!("Digest {}", many.join(","))),
            Err(ParseError::TooManyParams)
        );
        let exactly: Vec<String> = (0..MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(pairs(&format!("Digest {}", exactly.join(","))).is_ok());
        let big = "a".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            pairs(&format!("Digest v=\"{big}\"")),
            Err(ParseError::ValueTooLong { at: 9 })
        );
        assert_eq!(
            pairs(&format!("Digest v={big}")),
            Err(ParseError::ValueTooLong { at: 9 })
        );
        assert!(pairs(&format!("Digest v=\"{}\"", "a".repeat(MAX_VALUE_LEN))).is_ok());
        let huge = format!("Digest v=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(pairs(&huge), Err(ParseError::TooLong));
    }

    #[test]
    fn non_ascii_in_quoted_string_is_kept() {
        let got = pairs("Digest u=\"J\u{e4}s\u{f8}n \\\u{e9}\"").unwrap();
        assert_eq!(got[0].1, "J\u{e4}s\u{f8}n \u{e9}");
    }

    #[test]
    fn quoting_round_trips() {
        let mut s = String::new();
        push_quoted_param(&mut s, "a", r#"q"b\e"#);
        push_token_param(&mut s, "t", "tok");
        assert_eq!(s, r#"a="q\"b\\e", t=tok"#);
        let got = parse_bare(&s).unwrap();
        assert_eq!(got[0].value, r#"q"b\e"#);
    }
}
