//! PROXY protocol version 2 (HAProxy's "PROXY protocol" specification, section 2.2):
//! a sans-IO encoder and a bounded decoder.
//!
//! The OSG's TCP tunnels write one header at the start of every upstream connection so
//! that the resource learns who the terminal is without speaking TLS or GBA itself
//! (SEC-3 for raw TCP). Layout:
//!
//! ```text
//! signature (12) | ver_cmd (1) | fam (1) | len (2, BE) | addresses | TLVs
//! TLV = type (1) | length (2, BE) | value
//! ```
//!
//! TLVs written by the OSG:
//!
//! | type | meaning | source |
//! |---|---|---|
//! | 0x02 `PP2_TYPE_AUTHORITY` | the gateway FQDN the terminal addressed | spec |
//! | 0x20 `PP2_TYPE_SSL` | client flags, verify result, sub-TLVs 0x21 version, 0x22 CN (mutual TLS), 0x23 cipher | spec |
//! | 0xE0 | authenticated identity (UTF-8) | **seccf's own**, in the custom range 0xE0–0xEF |
//! | 0xE1 | authentication method (`psk-tls` or `mtls`) | **seccf's own** |
//!
//! The decoder exists for resources written in Rust and for tests; it accepts any TLV
//! type (unknown ones are kept as raw [`Tlv`]s) and refuses headers longer than
//! [`MAX_HEADER_LEN`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-octet signature that starts every v2 header.
pub const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Longest header (fixed part included) the decoder accepts and the encoder produces.
/// The specification allows 16 + 65535 octets; identities and names never need more
/// than a few hundred, and a small bound keeps a hostile peer from making a resource
/// buffer 64 KiB before it has checked anything.
pub const MAX_HEADER_LEN: usize = 16 + 4096;

/// `PP2_TYPE_AUTHORITY`.
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_SSL`.
pub const PP2_TYPE_SSL: u8 = 0x20;
/// `PP2_SUBTYPE_SSL_VERSION`.
pub const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// `PP2_SUBTYPE_SSL_CN`.
pub const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// `PP2_SUBTYPE_SSL_CIPHER`.
pub const PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;
/// `PP2_CLIENT_SSL`: the client connected over TLS.
pub const PP2_CLIENT_SSL: u8 = 0x01;
/// `PP2_CLIENT_CERT_CONN`: the client presented a certificate on this connection.
pub const PP2_CLIENT_CERT_CONN: u8 = 0x02;
/// seccf's own TLV: the authenticated identity (custom range).
pub const PP2_TYPE_SECCF_IDENTITY: u8 = 0xE0;
/// seccf's own TLV: the authentication method (custom range).
pub const PP2_TYPE_SECCF_AUTH_METHOD: u8 = 0xE1;

/// Why a header could not be decoded or encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The first 12 octets are not the v2 signature.
    #[error("not a PROXY protocol v2 header")]
    BadSignature,
    /// The version nibble is not 2.
    #[error("unsupported PROXY protocol version")]
    BadVersion,
    /// The command nibble is neither LOCAL nor PROXY.
    #[error("unsupported PROXY protocol command")]
    BadCommand,
    /// The address family / transport octet is not one this implementation handles.
    #[error("unsupported PROXY protocol address family or transport")]
    BadFamily,
    /// The declared length exceeds [`MAX_HEADER_LEN`] or cannot hold the addresses.
    #[error("PROXY protocol header length out of bounds")]
    BadLength,
    /// A TLV runs past the end of the header.
    #[error("PROXY protocol TLV truncated")]
    TruncatedTlv,
    /// The PP2_TYPE_SSL value is shorter than its fixed part.
    #[error("PROXY protocol SSL TLV malformed")]
    BadSslTlv,
    /// The encoder was asked for a header longer than [`MAX_HEADER_LEN`].
    #[error("PROXY protocol header would exceed the size limit")]
    TooLong,
}

/// LOCAL (health checks; addresses ignored) or PROXY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The connection was made by the proxy itself.
    Local,
    /// The connection is relayed on behalf of a client.
    Proxy,
}

/// One TLV as found on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// Type octet.
    pub kind: u8,
    /// Value octets.
    pub value: Vec<u8>,
}

/// The content of `PP2_TYPE_SSL`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SslInfo {
    /// `PP2_CLIENT_*` bits.
    pub client: u8,
    /// 0 when the client certificate verified (or none was needed).
    pub verify: u32,
    /// `PP2_SUBTYPE_SSL_VERSION`, e.g. `TLSv1.3`.
    pub version: Option<String>,
    /// `PP2_SUBTYPE_SSL_CN` (mutual TLS).
    pub cn: Option<String>,
    /// `PP2_SUBTYPE_SSL_CIPHER`, OpenSSL name of the negotiated suite.
    pub cipher: Option<String>,
}

/// A decoded (or to-be-encoded) PROXY v2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// LOCAL or PROXY.
    pub command: Command,
    /// Source (client) and destination (gateway listener) addresses, TCP. `None` is
    /// `AF_UNSPEC`; mixed IPv4/IPv6 pairs are written as IPv6 (IPv4-mapped).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// TLVs in wire order.
    pub tlvs: Vec<Tlv>,
}

impl ProxyHeader {
    /// A PROXY header for a relayed TCP connection.
    pub fn proxy(src: SocketAddr, dst: SocketAddr) -> Self {
        ProxyHeader {
            command: Command::Proxy,
            addresses: Some((src, dst)),
            tlvs: Vec::new(),
        }
    }

    /// Appends a TLV.
    pub fn push(&mut self, kind: u8, value: impl Into<Vec<u8>>) {
        self.tlvs.push(Tlv {
            kind,
            value: value.into(),
        });
    }

    /// Appends `PP2_TYPE_SSL` built from `info`.
    pub fn push_ssl(&mut self, info: &SslInfo) {
        let mut v = Vec::with_capacity(5 + 64);
        v.push(info.client);
        v.extend_from_slice(&info.verify.to_be_bytes());
        for (kind, text) in [
            (PP2_SUBTYPE_SSL_VERSION, &info.version),
            (PP2_SUBTYPE_SSL_CN, &info.cn),
            (PP2_SUBTYPE_SSL_CIPHER, &info.cipher),
        ] {
            if let Some(t) = text {
                put_tlv(&mut v, kind, t.as_bytes());
            }
        }
        self.push(PP2_TYPE_SSL, v);
    }

    /// The first TLV of `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.value.as_slice())
    }

    /// `PP2_TYPE_AUTHORITY` as text.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_AUTHORITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// seccf's identity TLV (0xE0) as text.
    pub fn seccf_identity(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_SECCF_IDENTITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// seccf's authentication-method TLV (0xE1) as text.
    pub fn seccf_auth_method(&self) -> Option<&str> {
        self.tlv(PP2_TYPE_SECCF_AUTH_METHOD)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `PP2_TYPE_SSL`, parsed.
    pub fn ssl(&self) -> Result<Option<SslInfo>, ProxyError> {
        let Some(v) = self.tlv(PP2_TYPE_SSL) else {
            return Ok(None);
        };
        let (&client, rest) = v.split_first().ok_or(ProxyError::BadSslTlv)?;
        let (verify, mut rest) = rest.split_first_chunk::<4>().ok_or(ProxyError::BadSslTlv)?;
        let mut info = SslInfo {
            client,
            verify: u32::from_be_bytes(*verify),
            ..SslInfo::default()
        };
        while !rest.is_empty() {
            let (tlv, used) = take_tlv(rest)?;
            let text = String::from_utf8_lossy(&tlv.value).into_owned();
            match tlv.kind {
                PP2_SUBTYPE_SSL_VERSION => info.version = Some(text),
                PP2_SUBTYPE_SSL_CN => info.cn = Some(text),
                PP2_SUBTYPE_SSL_CIPHER => info.cipher = Some(text),
                _ => {}
            }
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(Some(info))
    }

    /// The wire form.
    pub fn encode(&self) -> Result<Vec<u8>, ProxyError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&SIGNATURE);
        out.push(match self.command {
            Command::Local => 0x20,
            Command::Proxy => 0x21,
        });
        let mut body = Vec::with_capacity(48);
        match self.addresses {
            None => out.push(0x00),
            Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
                out.push(0x11);
                body.extend_from_slice(&s.ip().octets());
                body.extend_from_slice(&d.ip().octets());
                body.extend_from_slice(&s.port().to_be_bytes());
                body.extend_from_slice(&d.port().to_be_bytes());
            }
            Some((s, d)) => {
                out.push(0x21);
                body.extend_from_slice(&v6(s.ip()).octets());
                body.extend_from_slice(&v6(d.ip()).octets());
                body.extend_from_slice(&s.port().to_be_bytes());
                body.extend_from_slice(&d.port().to_be_bytes());
            }
        }
        for t in &self.tlvs {
            if t.value.len() > usize::from(u16::MAX) {
                return Err(ProxyError::TooLong);
            }
            put_tlv(&mut body, t.kind, &t.value);
        }
        if 16 + body.len() > MAX_HEADER_LEN {
            return Err(ProxyError::TooLong);
        }
        let len = u16::try_from(body.len()).map_err(|_| ProxyError::TooLong)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn put_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    // Callers bound the value to u16::MAX; saturate rather than wrap if one did not.
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.get(..usize::from(len)).unwrap_or(value));
}

fn take_tlv(buf: &[u8]) -> Result<(Tlv, usize), ProxyError> {
    let (head, rest) = buf
        .split_first_chunk::<3>()
        .ok_or(ProxyError::TruncatedTlv)?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let value = rest.get(..len).ok_or(ProxyError::TruncatedTlv)?;
    Ok((
        Tlv {
            kind: head[0],
            value: value.to_vec(),
        },
        3 + len,
    ))
}

/// Decodes a header at the start of `buf`.
///
/// `Ok(None)`: more bytes are needed (the caller reads more, up to [`MAX_HEADER_LEN`]).
/// `Ok(Some((header, n)))`: the header occupies the first `n` octets; the rest of
/// `buf` is payload. Garbage is refused as soon as the octets seen prove it.
pub fn decode(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let sig_seen = buf.len().min(SIGNATURE.len());
    if buf.get(..sig_seen) != SIGNATURE.get(..sig_seen) {
        return Err(ProxyError::BadSignature);
    }
    let Some(fixed) = buf.get(..16) else {
        return Ok(None);
    };
    let ver_cmd = fixed[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadVersion);
    }
    let command = match ver_cmd & 0x0F {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(ProxyError::BadCommand),
    };
    let fam = fixed[13];
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if 16 + len > MAX_HEADER_LEN {
        return Err(ProxyError::BadLength);
    }
    let addr_len = match fam {
        0x00 => 0,
        0x11 => 12,
        0x21 => 36,
        _ => return Err(ProxyError::BadFamily),
    };
    if len < addr_len {
        return Err(ProxyError::BadLength);
    }
    let Some(body) = buf.get(16..16 + len) else {
        return Ok(None);
    };
    let (addr, mut tlvs_buf) = body.split_at(addr_len);
    let addresses = match fam {
        0x11 => {
            let ip = |i: usize| Ipv4Addr::new(addr[i], addr[i + 1], addr[i + 2], addr[i + 3]);
            let port = |i: usize| u16::from_be_bytes([addr[i], addr[i + 1]]);
            Some((
                SocketAddr::new(IpAddr::V4(ip(0)), port(8)),
                SocketAddr::new(IpAddr::V4(ip(4)), port(10)),
            ))
        }
        0x21 => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&addr[i..i + 16]);
                Ipv6Addr::from(o)
            };
            let port = |i: usize| u16::from_be_bytes([addr[i], addr[i + 1]]);
            Some((
                SocketAddr::new(IpAddr::V6(ip(0)), port(32)),
                SocketAddr::new(IpAddr::V6(ip(16)), port(34)),
            ))
        }
        _ => None,
    };
    let mut tlvs = Vec::new();
    while !tlvs_buf.is_empty() {
        let (tlv, used) = take_tlv(tlvs_buf)?;
        tlvs.push(tlv);
        tlvs_buf = tlvs_buf.get(used..).unwrap_or_default();
    }
    Ok(Some((
        ProxyHeader {
            command,
            addresses,
            tlvs,
        },
        16 + len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProxyHeader {
        let mut h = ProxyHeader::proxy(
            "192.0.2.10:40000".parse().unwrap(),
            "127.0.0.1:9443".parse().unwrap(),
        );
        h.push(PP2_TYPE_AUTHORITY, "naf.example.org");
        h.push_ssl(&SslInfo {
            client: PP2_CLIENT_SSL,
            verify: 0,
            version: Some("TLSv1.2".into()),
            cn: None,
            cipher: Some("PSK-AES128-GCM-SHA256".into()),
        });
        h.push(PP2_TYPE_SECCF_IDENTITY, "sip:alice@example.org");
        h.push(PP2_TYPE_SECCF_AUTH_METHOD, "psk-tls");
        h
    }

    #[test]
    fn ipv4_layout_matches_the_specification() {
        let h = ProxyHeader::proxy(
            "1.2.3.4:258".parse().unwrap(),
            "5.6.7.8:772".parse().unwrap(),
        );
        let wire = h.encode().unwrap();
        // Built by hand from the specification's field table.
        let mut expected = SIGNATURE.to_vec();
        expected.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C]);
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(wire, expected);
    }

    #[test]
    fn round_trip_with_tlvs() {
        let h = sample();
        let mut wire = h.encode().unwrap();
        wire.extend_from_slice(b"payload");
        let (back, n) = decode(&wire).unwrap().unwrap();
        assert_eq!(back, h);
        assert_eq!(&wire[n..], b"payload");
        assert_eq!(back.authority(), Some("naf.example.org"));
        assert_eq!(back.seccf_identity(), Some("sip:alice@example.org"));
        assert_eq!(back.seccf_auth_method(), Some("psk-tls"));
        let ssl = back.ssl().unwrap().unwrap();
        assert_eq!(ssl.version.as_deref(), Some("TLSv1.2"));
        assert_eq!(ssl.cipher.as_deref(), Some("PSK-AES128-GCM-SHA256"));
        assert_eq!(ssl.client, PP2_CLIENT_SSL);
    }

    #[test]
    fn ipv6_and_mixed_families() {
        let h = ProxyHeader::proxy(
            "[::1]:1".parse().unwrap(),
            "[2001:db8::2]:2".parse().unwrap(),
        );
        let (back, _) = decode(&h.encode().unwrap()).unwrap().unwrap();
        assert_eq!(back, h);
        // Mixed: written as IPv6 with the IPv4 address mapped.
        let h = ProxyHeader::proxy("10.0.0.1:5".parse().unwrap(), "[::1]:6".parse().unwrap());
        let wire = h.encode().unwrap();
        assert_eq!(wire[13], 0x21);
        let (back, _) = decode(&wire).unwrap().unwrap();
        assert_eq!(
            back.addresses.unwrap().0,
            "[::ffff:10.0.0.1]:5".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn partial_input_asks_for_more_and_garbage_is_refused_early() {
        let wire = sample().encode().unwrap();
        for cut in 0..wire.len() {
            assert_eq!(decode(&wire[..cut]), Ok(None), "prefix of {cut} octets");
        }
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(ProxyError::BadSignature));
        assert_eq!(decode(b"\x0D\x0A\x0D\x0AX"), Err(ProxyError::BadSignature));
        let mut bad = wire.clone();
        bad[12] = 0x11;
        assert_eq!(decode(&bad), Err(ProxyError::BadVersion));
        let mut bad = wire.clone();
        bad[13] = 0x12; // UDP over IPv4: not produced, not accepted
        assert_eq!(decode(&bad), Err(ProxyError::BadFamily));
        let mut bad = wire.clone();
        bad[14] = 0xFF;
        assert_eq!(decode(&bad), Err(ProxyError::BadLength));
        // A TLV that claims more than the header holds.
        let mut bad = wire;
        let last_tlv_len_at = bad.len() - "psk-tls".len() - 2;
        bad[last_tlv_len_at] = 0x01;
        assert_eq!(decode(&bad), Err(ProxyError::TruncatedTlv));
    }

    #[test]
    fn encoder_refuses_oversized_headers() {
        let mut h = sample();
        h.push(0xE5, vec![0u8; MAX_HEADER_LEN]);
        assert_eq!(h.encode(), Err(ProxyError::TooLong));
    }

    /// Randomized: decoding never panics, and whatever decodes re-encodes to a header
    /// that decodes to the same value.
    #[test]
    fn decoder_never_panics() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = sample().encode().unwrap();
        for i in 0..5000 {
            let mut buf = if i % 2 == 0 {
                valid.clone()
            } else {
                let mut b = SIGNATURE.to_vec();
                let n = (next() % 80) as usize;
                b.extend((0..n).map(|_| next() as u8));
                b
            };
            let flips = next() % 6;
            for _ in 0..flips {
                if buf.is_empty() {
                    break;
                }
                let at = (next() as usize) % buf.len();
                buf[at] = next() as u8;
            }
            if next() % 4 == 0 {
                let keep = (next() as usize) % (buf.len() + 1);
                buf.truncate(keep);
            }
            if let Ok(Some((h, n))) = decode(&buf) {
                assert!(n <= buf.len());
                let _ = h.ssl();
                if let Ok(again) = h.encode() {
                    assert_eq!(decode(&again).unwrap().unwrap().0, h);
                }
            }
        }
    }
}
