//! The BootstrappingInfo document of the Ub 200 OK (TS 24.109 Annex C).
//!
//! ```xml
//! <BootstrappingInfo xmlns="uri:3gpp-gba">
//!   <btid>…</btid>
//!   <lifetime>2025-01-01T12:00:00Z</lifetime>
//!   <Extension><currenttime>…</currenttime></Extension>   <!-- optional -->
//! </BootstrappingInfo>
//! ```
//!
//! The parser is lenient where real BSFs differ and strict where leniency would be a
//! risk:
//! - elements are matched by local name in any namespace (default namespace, a prefix,
//!   or none), ASCII case-insensitively; unknown elements and attributes are skipped,
//!   as Annex C asks of receivers;
//! - the document must be well-formed UTF-8 XML no larger than
//!   [`MAX_BOOTSTRAPPING_INFO_LEN`], nested at most [`MAX_DEPTH`] deep, with a single
//!   `BootstrappingInfo` root; a DOCTYPE is refused (no entity tricks), `btid` and
//!   `lifetime` must each appear exactly once, and the values are bounded;
//! - times are RFC 3339 date-times with an explicit offset (`Z` in practice); an
//!   xs:dateTime without a zone is refused because its instant is unknown.

use quick_xml::events::Event;
use quick_xml::Reader;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::SecaError;

/// Largest BootstrappingInfo body accepted, in bytes.
pub const MAX_BOOTSTRAPPING_INFO_LEN: usize = 64 * 1024;
/// Deepest element nesting accepted (the schema needs 3).
pub const MAX_DEPTH: usize = 16;
/// Longest text value of `btid`, `lifetime` or `currenttime`, in bytes.
pub const MAX_FIELD_LEN: usize = 512;

/// What the BSF returned in the 200 OK body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrappingInfo {
    /// The B-TID, as sent (printable ASCII, not otherwise validated here).
    pub btid: String,
    /// Key lifetime: the absolute expiry of Ks, unix seconds in the BSF's clock.
    pub lifetime_unix: i64,
    /// `Extension/currenttime`: the BSF's clock when it answered, if given.
    pub current_time_unix: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Root,
    Btid,
    Lifetime,
    Extension,
    CurrentTime,
    Other,
}

impl Node {
    fn is_field(self) -> bool {
        matches!(self, Node::Btid | Node::Lifetime | Node::CurrentTime)
    }
    fn name(self) -> &'static str {
        match self {
            Node::Root => "BootstrappingInfo",
            Node::Btid => "btid",
            Node::Lifetime => "lifetime",
            Node::Extension => "Extension",
            Node::CurrentTime => "currenttime",
            Node::Other => "unknown element",
        }
    }
}

fn bad(msg: impl Into<String>) -> SecaError {
    SecaError::BadResponse(format!("BootstrappingInfo: {}", msg.into()))
}

#[derive(Default)]
struct Fields {
    btid: Option<String>,
    lifetime: Option<String>,
    current_time: Option<String>,
}

impl Fields {
    fn slot(&mut self, node: Node) -> Option<&mut Option<String>> {
        match node {
            Node::Btid => Some(&mut self.btid),
            Node::Lifetime => Some(&mut self.lifetime),
            Node::CurrentTime => Some(&mut self.current_time),
            _ => None,
        }
    }
}

/// Parses the body of the Ub 200 OK. See the module documentation for what is accepted.
pub fn parse_bootstrapping_info(body: &[u8]) -> Result<BootstrappingInfo, SecaError> {
    if body.len() > MAX_BOOTSTRAPPING_INFO_LEN {
        return Err(bad(format!(
            "body of {} bytes exceeds the {MAX_BOOTSTRAPPING_INFO_LEN}-byte limit",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        bad(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut reader = Reader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.trim_text(true);
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
        cfg.check_comments = true;
    }

    let mut stack: Vec<Node> = Vec::with_capacity(MAX_DEPTH);
    let mut root_done = false;
    let mut fields = Fields::default();
    // Text of the field element currently open, if any.
    let mut current = String::new();

    loop {
        let event = reader.read_event().map_err(|e| {
            bad(format!(
                "malformed XML at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(e) => {
                for attr in e.attributes() {
                    attr.map_err(|e| bad(format!("malformed attribute: {e}")))?;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let local = e.local_name();
                let name = local.as_ref();
                let node = match stack.last().copied() {
                    None if root_done => return Err(bad("content after the root element")),
                    None if name.eq_ignore_ascii_case(b"BootstrappingInfo") => Node::Root,
                    None => return Err(bad("root element is not BootstrappingInfo")),
                    Some(parent) if parent.is_field() => {
                        return Err(bad(format!("element inside <{}>", parent.name())))
                    }
                    Some(Node::Root) if name.eq_ignore_ascii_case(b"btid") => Node::Btid,
                    Some(Node::Root) if name.eq_ignore_ascii_case(b"lifetime") => Node::Lifetime,
                    Some(Node::Root) if name.eq_ignore_ascii_case(b"Extension") => Node::Extension,
                    Some(Node::Extension) if name.eq_ignore_ascii_case(b"currenttime") => {
                        Node::CurrentTime
                    }
                    Some(_) => Node::Other,
                };
                if let Some(slot) = fields.slot(node) {
                    if slot.is_some() {
                        return Err(bad(format!("<{}> appears more than once", node.name())));
                    }
                    current.clear();
                }
                stack.push(node);
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the start tag.
                let node = stack
                    .pop()
                    .ok_or_else(|| bad("end tag without start tag"))?;
                if let Some(slot) = fields.slot(node) {
                    *slot = Some(std::mem::take(&mut current));
                }
                if node == Node::Root {
                    root_done = true;
                }
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| bad(format!("bad character data: {e}")))?;
                on_text(&stack, &mut current, &s)?;
            }
            Event::CData(c) => {
                let s = c
                    .decode()
                    .map_err(|e| bad(format!("bad CDATA section: {e}")))?;
                on_text(&stack, &mut current, &s)?;
            }
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Empty(_) => {
                // expand_empty_elements turns these into Start + End; keep the match total.
                return Err(bad("unexpected empty-element event"));
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(bad("document ends inside an element"));
    }
    if !root_done {
        return Err(bad("no BootstrappingInfo element"));
    }

    let btid = fields.btid.ok_or_else(|| bad("<btid> is missing"))?;
    let btid = btid.trim();
    if btid.is_empty() {
        return Err(bad("<btid> is empty"));
    }
    if !btid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("<btid> contains characters outside printable ASCII"));
    }
    let lifetime = fields
        .lifetime
        .ok_or_else(|| bad("<lifetime> is missing"))?;
    let lifetime_unix = parse_time(&lifetime, "lifetime")?;
    let current_time_unix = fields
        .current_time
        .map(|t| parse_time(&t, "currenttime"))
        .transpose()?;
    Ok(BootstrappingInfo {
        btid: btid.to_owned(),
        lifetime_unix,
        current_time_unix,
    })
}

fn on_text(stack: &[Node], current: &mut String, s: &str) -> Result<(), SecaError> {
    match stack.last() {
        Some(node) if node.is_field() => {
            if current.len().saturating_add(s.len()) > MAX_FIELD_LEN {
                return Err(bad(format!(
                    "<{}> longer than {MAX_FIELD_LEN} bytes",
                    node.name()
                )));
            }
            current.push_str(s);
            Ok(())
        }
        // Mixed content in the root, the Extension or unknown elements is ignored.
        Some(_) => Ok(()),
        None if s.trim().is_empty() => Ok(()),
        None => Err(bad("text outside the root element")),
    }
}

/// Parses an RFC 3339 date-time (xs:dateTime with a zone) into unix seconds.
/// Fractional seconds are truncated.
fn parse_time(text: &str, what: &str) -> Result<i64, SecaError> {
    let t = text.trim();
    OffsetDateTime::parse(t, &Rfc3339)
        .map(|dt| dt.unix_timestamp())
        .map_err(|_| {
            bad(format!(
                "<{what}> is not an RFC 3339 date-time with a time zone"
            ))
        })
}

/// RFC 3339 UTC text (`2025-01-01T12:00:00Z`) of unix seconds, or `None` when out of
/// the representable range.
pub fn format_time(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gba.md §3.6 200 OK body (the exact bytes the worked rspauth is computed over).
    const EXAMPLE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BootstrappingInfo xmlns=\"uri:3gpp-gba\">\n  <btid>I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org</btid>\n  <lifetime>2025-01-01T12:00:00Z</lifetime>\n</BootstrappingInfo>\n";
    const BTID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org";
    /// 2025-01-01T12:00:00Z (computed independently: 20089 days * 86400 + 43200).
    const LIFETIME: i64 = 1_735_732_800;

    fn ok(doc: &str) -> BootstrappingInfo {
        match parse_bootstrapping_info(doc.as_bytes()) {
            Ok(i) => i,
            Err(e) => panic!("rejected {doc:?}: {e}"),
        }
    }

    fn err(doc: &[u8]) -> String {
        match parse_bootstrapping_info(doc) {
            Ok(i) => panic!("accepted {:?} as {i:?}", String::from_utf8_lossy(doc)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_namespace_example() {
        let i = ok(EXAMPLE);
        assert_eq!(i.btid, BTID);
        assert_eq!(i.lifetime_unix, LIFETIME);
        assert_eq!(i.current_time_unix, None);
    }

    #[test]
    fn prefixed_and_unqualified_forms() {
        let prefixed = format!(
            "<g:BootstrappingInfo xmlns:g=\"uri:3gpp-gba\"><g:btid>{BTID}</g:btid><g:lifetime>2025-01-01T12:00:00Z</g:lifetime></g:BootstrappingInfo>"
        );
        assert_eq!(ok(&prefixed).btid, BTID);
        let bare = format!(
            "<BootstrappingInfo><btid>{BTID}</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>"
        );
        assert_eq!(ok(&bare).lifetime_unix, LIFETIME);
        // Another namespace entirely: still matched by local name.
        let other = format!(
            "<x:BootstrappingInfo xmlns:x=\"urn:other\"><x:btid>{BTID}</x:btid><x:lifetime>2025-01-01T12:00:00Z</x:lifetime></x:BootstrappingInfo>"
        );
        assert_eq!(ok(&other).btid, BTID);
    }

    #[test]
    fn extension_currenttime_and_unknown_elements() {
        let doc = format!(
            "<?xml version=\"1.0\"?>\n<!-- BSF -->\n<BootstrappingInfo xmlns=\"uri:3gpp-gba\" foo=\"bar\">\
             <vendor a=\"1\"><btid>not-this-one</btid><deep><x/></deep></vendor>\
             <btid> {BTID} </btid>\
             <lifetime>2025-01-01T13:00:00+01:00</lifetime>\
             <Extension><other>1</other><currenttime>2025-01-01T11:00:00Z</currenttime></Extension>\
             <?pi data?></BootstrappingInfo>\n"
        );
        let i = ok(&doc);
        assert_eq!(
            i.btid, BTID,
            "nested unknown <btid> must be ignored, value trimmed"
        );
        assert_eq!(i.lifetime_unix, LIFETIME, "offset +01:00 converted to UTC");
        assert_eq!(i.current_time_unix, Some(LIFETIME - 3600));
    }

    #[test]
    fn entities_and_cdata_in_values() {
        let doc = "<BootstrappingInfo><btid>a&amp;b@<![CDATA[bsf]]>.example</btid><lifetime>2025-01-01T12:00:00.75Z</lifetime></BootstrappingInfo>";
        let i = ok(doc);
        assert_eq!(i.btid, "a&b@bsf.example");
        assert_eq!(i.lifetime_unix, LIFETIME, "fractional seconds truncated");
    }

    #[test]
    fn byte_order_mark_is_tolerated() {
        let mut body = "\u{feff}".as_bytes().to_vec();
        body.extend_from_slice(EXAMPLE.as_bytes());
        assert_eq!(parse_bootstrapping_info(&body).unwrap().btid, BTID);
    }

    #[test]
    fn missing_or_duplicate_fields() {
        assert!(err(
            b"<BootstrappingInfo><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>"
        )
        .contains("<btid> is missing"));
        assert!(
            err(b"<BootstrappingInfo><btid>a@b</btid></BootstrappingInfo>")
                .contains("<lifetime> is missing")
        );
        assert!(err(b"<BootstrappingInfo><btid> </btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>")
            .contains("empty"));
        assert!(err(b"<BootstrappingInfo><btid/><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>")
            .contains("empty"));
        assert!(err(b"<BootstrappingInfo><btid>a@b</btid><btid>c@d</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>")
            .contains("more than once"));
        assert!(err(b"<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime><Extension><currenttime>2025-01-01T12:00:00Z</currenttime><currenttime>2025-01-01T12:00:00Z</currenttime></Extension></BootstrappingInfo>")
            .contains("more than once"));
    }

    #[test]
    fn bad_values() {
        for lifetime in [
            "2025-01-01T12:00:00",
            "2025-01-01",
            "tomorrow",
            "",
            "2025-13-01T00:00:00Z",
        ] {
            let doc = format!(
                "<BootstrappingInfo><btid>a@b</btid><lifetime>{lifetime}</lifetime></BootstrappingInfo>"
            );
            assert!(err(doc.as_bytes()).contains("RFC 3339"), "{lifetime:?}");
        }
        assert!(err(b"<BootstrappingInfo><btid>a b@c</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>")
            .contains("printable"));
        assert!(err(b"<BootstrappingInfo><btid>a<b/>c</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>")
            .contains("inside <btid>"));
        let long = format!(
            "<BootstrappingInfo><btid>{}</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>",
            "a".repeat(MAX_FIELD_LEN + 1)
        );
        assert!(err(long.as_bytes()).contains("longer than"));
    }

    #[test]
    fn malformed_documents() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"<BootstrappingInfo>",
            b"<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime>",
            b"<BootstrappingInfo><btid>a@b</lifetime></BootstrappingInfo>",
            b"<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo><BootstrappingInfo/>",
            b"<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>trailing",
            b"<Other><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime></Other>",
            b"<!DOCTYPE x [<!ENTITY e \"a@b\">]><BootstrappingInfo><btid>&e;</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>",
            b"<BootstrappingInfo><btid>&unknown;</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>",
            b"<BootstrappingInfo a=\"1\" a=\"2\"><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>",
            b"<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime><!-- a -- b --></BootstrappingInfo>",
            b"<BootstrappingInfo><btid>\xff@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime></BootstrappingInfo>",
            b"</BootstrappingInfo>",
        ];
        for c in cases {
            let e = err(c);
            assert!(
                e.starts_with("bad response from server: BootstrappingInfo:"),
                "{e}"
            );
        }
    }

    #[test]
    fn depth_and_size_limits() {
        let mut deep = String::from(
            "<BootstrappingInfo><btid>a@b</btid><lifetime>2025-01-01T12:00:00Z</lifetime>",
        );
        for _ in 0..MAX_DEPTH {
            deep.push_str("<x>");
        }
        for _ in 0..MAX_DEPTH {
            deep.push_str("</x>");
        }
        deep.push_str("</BootstrappingInfo>");
        assert!(err(deep.as_bytes()).contains("deeper"));

        // Just at the size limit (padding in a comment) is fine; one byte more is not.
        let head = EXAMPLE.trim_end();
        let pad = MAX_BOOTSTRAPPING_INFO_LEN - head.len() - "<!---->".len();
        let at_limit = format!("{head}<!--{}-->", " ".repeat(pad));
        assert_eq!(at_limit.len(), MAX_BOOTSTRAPPING_INFO_LEN);
        assert_eq!(ok(&at_limit).btid, BTID);
        let over = format!("{at_limit} ");
        assert!(err(over.as_bytes()).contains("exceeds"));
    }

    #[test]
    fn format_time_round_trips() {
        assert_eq!(
            format_time(LIFETIME).as_deref(),
            Some("2025-01-01T12:00:00Z")
        );
        assert_eq!(parse_time("2025-01-01T12:00:00Z", "t").unwrap(), LIFETIME);
        assert_eq!(format_time(i64::MAX), None);
    }

    /// Cheap randomized robustness check (the fuzz target `seca_bootstrapping_info`
    /// goes further): random bytes and mutations of valid documents never panic, and
    /// whatever is accepted satisfies the documented bounds.
    #[test]
    fn never_panics_on_random_and_mutated_input() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: [&[u8]; 3] = [
            EXAMPLE.as_bytes(),
            b"<g:BootstrappingInfo xmlns:g=\"uri:3gpp-gba\"><g:btid>x@y</g:btid><g:lifetime>2030-01-01T00:00:00Z</g:lifetime><g:Extension><g:currenttime>2029-01-01T00:00:00Z</g:currenttime></g:Extension></g:BootstrappingInfo>",
            b"<BootstrappingInfo><btid><![CDATA[a]]>&#64;b</btid><lifetime>2030-01-01T00:00:00Z</lifetime></BootstrappingInfo>",
        ];
        let alphabet = b"<>/=\"'&;:!?[]-# \n\tabtidBootstrappingInfolifetime0123456789TZ\xff\xc3";
        let mut accepted = 0;
        for i in 0..6000u32 {
            let mut input: Vec<u8> = if i % 3 == 0 {
                let len = (next() % 200) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                seeds[(next() % seeds.len() as u64) as usize].to_vec()
            };
            let mutations = 1 + next() % 4;
            for _ in 0..mutations {
                if input.is_empty() {
                    break;
                }
                let pos = (next() % input.len() as u64) as usize;
                match next() % 4 {
                    0 => input[pos] = alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => {
                        input.remove(pos);
                    }
                    2 => input.insert(pos, alphabet[(next() % alphabet.len() as u64) as usize]),
                    _ => input.truncate(pos),
                }
            }
            if let Ok(info) = parse_bootstrapping_info(&input) {
                accepted += 1;
                assert!(!info.btid.is_empty() && info.btid.len() <= MAX_FIELD_LEN);
                assert!(info.btid.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
        // Some single mutations leave a valid document (e.g. inside the comment-free
        // whitespace); if none were accepted the generator would be testing nothing useful.
        assert!(accepted > 0);
    }
}
