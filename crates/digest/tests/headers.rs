//! Header parsing and formatting through the public API: real-world shapes (TS 24.109
//! Ub messages, RFC 7616 examples), edge cases, round trips, and a randomized
//! never-panic test.

use seccf_digest::{
    Algorithm, AuthenticationInfo, Challenge, Credentials, ParseError, Qop, MAX_HEADER_LEN,
    MAX_PARAMS, MAX_VALUE_LEN,
};

// ---------------------------------------------------------------------------
// Shapes seen on the wire

#[test]
fn ub_challenge_as_in_ts_24_109() {
    // gba.md 3.1 step 3 (TS 24.109 A.3 shape), with the 3.6 nonce; folded lines joined.
    let v = "Digest realm=\"bsf.mnc001.mcc001.pub.3gppnetwork.org\", \
             nonce=\"I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=\", \
             algorithm=AKAv1-MD5, qop=\"auth-int\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let c = Challenge::parse(v).unwrap();
    assert_eq!(c.realm, "bsf.mnc001.mcc001.pub.3gppnetwork.org");
    assert_eq!(c.nonce, "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=");
    assert_eq!(c.algorithm, Algorithm::AkaV1Md5);
    assert_eq!(c.qop, vec![Qop::AuthInt]);
    assert_eq!(
        c.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert!(!c.stale);
    assert_eq!(Challenge::parse(&c.to_header_value()).unwrap(), c);
}

#[test]
fn ub_initial_request() {
    // TS 24.109 A.3: empty nonce and response start a bootstrap.
    let v = r#"Digest username="001010123456789@ims.mnc001.mcc001.3gppnetwork.org", realm="bsf.mnc001.mcc001.pub.3gppnetwork.org", nonce="", uri="/", response="""#;
    let c = Credentials::parse(v).unwrap();
    assert!(c.is_initial());
    assert_eq!(c.uri, "/");
    assert_eq!(c.algorithm, None);
    assert_eq!(c.effective_algorithm(), Algorithm::Md5);
    assert_eq!(
        c,
        Credentials::initial(
            "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "bsf.mnc001.mcc001.pub.3gppnetwork.org",
            "/"
        )
    );
    assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
}

#[test]
fn ub_resync_request_with_auts() {
    // TS 24.109 A.4 shape; AUTS from gba.md 3.6.
    let v = "Digest username=\"001010123456789@ims.mnc001.mcc001.3gppnetwork.org\", \
             realm=\"bsf.mnc001.mcc001.pub.3gppnetwork.org\", \
             nonce=\"I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=\", uri=\"/\", qop=auth-int, \
             nc=00000001, cnonce=\"0a4f113b7c1d2e3f\", response=\"7e93067bc876a2339dce19130cbf0186\", \
             opaque=\"5ccc069c\", algorithm=AKAv1-MD5, auts=\"RR6L7KQb+O5YnUbYNck=\"";
    let c = Credentials::parse(v).unwrap();
    assert_eq!(c.auts.as_deref(), Some("RR6L7KQb+O5YnUbYNck="));
    assert_eq!(c.qop, Some(Qop::AuthInt));
    assert_eq!((c.nc, c.nc_text.as_deref()), (Some(1), Some("00000001")));
    // RFC 3310: the resync response uses an empty password.
    assert_eq!(seccf_digest::verify(&c, b"", "GET", b""), Ok(()));
    assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
}

#[test]
fn rfc7616_challenge_and_credentials() {
    // RFC 7616 3.9.1, folded lines joined.
    let ch = Challenge::parse(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    )
    .unwrap();
    assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(ch.algorithm, Algorithm::Sha256);
    let cr = Credentials::parse(
        "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
         algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
         cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
         response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    )
    .unwrap();
    assert_eq!(cr.check_against(&ch), Ok(()));
    assert_eq!(
        seccf_digest::verify(&cr, b"Circle of Life", "GET", b""),
        Ok(())
    );
}

#[test]
fn quoted_tokens_are_accepted_leniently() {
    // Many clients quote qop, nc and algorithm although the RFCs say token.
    let c = Credentials::parse(
        r#"Digest username="u", realm="r", nonce="n", uri="/", response="", qop="auth", nc="00000002", cnonce="c", algorithm="MD5-sess", userhash="false""#,
    )
    .unwrap();
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc, Some(2));
    assert_eq!(c.algorithm, Some(Algorithm::Md5Sess));
    // Unquoted string values are accepted when they are valid tokens.
    let c = Credentials::parse("Digest username=u, realm=r, nonce=n, uri=x, response=abc").unwrap();
    assert_eq!(c.username, "u");
}

#[test]
fn formatting_quotes_what_the_rfc_quotes() {
    let ch = Challenge {
        opaque: Some("o".into()),
        qop: vec![Qop::Auth, Qop::AuthInt],
        stale: true,
        domain: Some("/a /b".into()),
        userhash: true,
        ..Challenge::new("r\"x", "n\\y", Algorithm::Sha256Sess)
    };
    assert_eq!(
        ch.to_header_value(),
        r#"Digest realm="r\"x", domain="/a /b", nonce="n\\y", opaque="o", stale=true, algorithm=SHA-256-sess, qop="auth, auth-int", userhash=true"#
    );
    let cr = Credentials {
        algorithm: Some(Algorithm::AkaV1Md5),
        qop: Some(Qop::AuthInt),
        nc: Some(1),
        nc_text: Some("00000001".into()),
        cnonce: Some("c".into()),
        response: "ab".into(),
        ..Credentials::initial("u", "r", "/")
    };
    assert_eq!(
        cr.to_header_value(),
        r#"Digest username="u", realm="r", nonce="", uri="/", algorithm=AKAv1-MD5, qop=auth-int, nc=00000001, cnonce="c", response="ab""#
    );
    // nc without its text is written as 8 hex digits.
    let cr2 = Credentials {
        nc_text: None,
        nc: Some(0x1f),
        ..cr
    };
    assert!(cr2.to_header_value().contains("nc=0000001f"));
}

// ---------------------------------------------------------------------------
// Edge cases

const MIN: &str = r#"Digest username="u", realm="r", nonce="n", uri="/", response="""#;

#[test]
fn escapes_and_whitespace() {
    let c = Credentials::parse(
        "Digest\tusername = \"a\\\"b\\\\c\" ,realm=\"r\",, nonce=\"n\"\t,uri=\"/\",response=\"\" , ",
    )
    .unwrap();
    assert_eq!(c.username, r#"a"b\c"#);
    assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
    // Leading whitespace before the scheme is tolerated; the scheme is case-insensitive.
    assert!(Credentials::parse(&format!("  digest{}", &MIN[6..])).is_ok());
}

#[test]
fn duplicates_are_rejected() {
    assert_eq!(
        Credentials::parse(&format!("{MIN}, realm=\"again\"")),
        Err(ParseError::Duplicate("realm".into()))
    );
    assert_eq!(
        Credentials::parse(&format!("{MIN}, x=1, X=2")),
        Err(ParseError::Duplicate("x".into()))
    );
}

#[test]
fn missing_fields() {
    for (field, name) in [
        ("username=\"u\", ", "username"),
        ("realm=\"r\", ", "realm"),
        ("nonce=\"n\", ", "nonce"),
        ("uri=\"/\", ", "uri"),
    ] {
        assert_eq!(
            Credentials::parse(&MIN.replace(field, "")),
            Err(ParseError::Missing(name)),
            "{field}"
        );
    }
    assert_eq!(
        Credentials::parse(&MIN.replace(", response=\"\"", "")),
        Err(ParseError::Missing("response"))
    );
    assert_eq!(
        Challenge::parse("Digest nonce=\"n\""),
        Err(ParseError::Missing("realm"))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\""),
        Err(ParseError::Missing("nonce"))
    );
}

#[test]
fn qop_requires_nc_and_cnonce() {
    assert_eq!(
        Credentials::parse(&format!("{MIN}, qop=auth, cnonce=\"c\"")),
        Err(ParseError::Missing("nc"))
    );
    assert_eq!(
        Credentials::parse(&format!("{MIN}, qop=auth, nc=00000001")),
        Err(ParseError::Missing("cnonce"))
    );
    for bad_nc in ["1", "0000001", "000000001", "0000000x", "\"\""] {
        assert_eq!(
            Credentials::parse(&format!("{MIN}, qop=auth, nc={bad_nc}, cnonce=\"c\"")),
            Err(ParseError::BadValue("nc")),
            "{bad_nc}"
        );
    }
    assert_eq!(
        Credentials::parse(&format!("{MIN}, qop=auth-conf, nc=00000001, cnonce=\"c\"")),
        Err(ParseError::BadValue("qop"))
    );
    // Without qop, nc and cnonce are kept but do not enter the digest.
    let c = Credentials::parse(&format!("{MIN}, nc=00000001, cnonce=\"c\"")).unwrap();
    assert_eq!(c.qop, None);
    assert_eq!(c.nc, Some(1));
}

#[test]
fn unknown_parameters_are_ignored_but_counted() {
    let c = Credentials::parse(&format!("{MIN}, charset=UTF-8, future=\"x\"")).unwrap();
    assert_eq!(c.username, "u");
    let extra: Vec<String> = (0..MAX_PARAMS - 5).map(|i| format!("x{i}=1")).collect();
    assert!(Credentials::parse(&format!("{MIN}, {}", extra.join(", "))).is_ok());
    let extra: Vec<String> = (0..MAX_PARAMS - 4).map(|i| format!("x{i}=1")).collect();
    assert_eq!(
        Credentials::parse(&format!("{MIN}, {}", extra.join(", "))),
        Err(ParseError::TooManyParams)
    );
}

#[test]
fn oversize_input() {
    let long = "a".repeat(MAX_VALUE_LEN + 1);
    assert!(matches!(
        Credentials::parse(&MIN.replace("\"u\"", &format!("\"{long}\""))),
        Err(ParseError::ValueTooLong { .. })
    ));
    let huge = format!("{MIN}, pad=\"{}\"", "b".repeat(MAX_HEADER_LEN));
    assert_eq!(Credentials::parse(&huge), Err(ParseError::TooLong));
    assert_eq!(
        AuthenticationInfo::parse(&"x".repeat(MAX_HEADER_LEN + 1)),
        Err(ParseError::TooLong)
    );
    assert_eq!(
        Challenge::parse(&" ".repeat(MAX_HEADER_LEN + 1)),
        Err(ParseError::TooLong)
    );
}

#[test]
fn control_characters_and_raw_newlines_are_rejected() {
    for bad in ["\r\n", "\n", "\r", "\0", "\x1b", "\x7f"] {
        let v = MIN.replace("\"u\"", &format!("\"u{bad}x\""));
        assert!(
            matches!(Credentials::parse(&v), Err(ParseError::BadSyntax { .. })),
            "{bad:?}"
        );
    }
    // An obs-fold style continuation is not accepted either.
    assert!(matches!(
        Credentials::parse(&MIN.replace(", realm", ",\r\n realm")),
        Err(ParseError::BadSyntax { .. })
    ));
}

#[test]
fn other_schemes_and_extended_username() {
    assert_eq!(
        Credentials::parse("Basic dXNlcjpwYXNz"),
        Err(ParseError::NotDigest)
    );
    assert_eq!(
        Challenge::parse("Bearer realm=\"x\""),
        Err(ParseError::NotDigest)
    );
    assert_eq!(
        Credentials::parse(
            "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", nonce=\"n\", uri=\"/\", response=\"\""
        ),
        Err(ParseError::ExtendedUsername)
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
        Err(ParseError::UnsupportedAlgorithm)
    );
}

#[test]
fn two_challenges_in_one_value_are_rejected_not_half_read() {
    for v in [
        "Digest realm=\"a\", nonce=\"b\", Basic realm=\"x\"",
        "Digest realm=\"a\", nonce=\"b\", algorithm=MD5, Digest realm=\"a\", nonce=\"c\", algorithm=SHA-256",
    ] {
        assert!(
            matches!(Challenge::parse(v), Err(ParseError::BadSyntax { .. })),
            "{v}"
        );
    }
}

#[test]
fn errors_never_echo_values() {
    // A response or password-like value must not leak into error text.
    let secretish = "s3cr3tvalue0123456789";
    let cases = [
        format!("Digest username=\"{secretish}\", x"),
        format!("Digest response=\"{secretish}\", response=\"{secretish}\""),
        format!("Digest nc={secretish}, qop=auth, username=u, realm=r, nonce=n, uri=u, response=r, cnonce=c"),
        format!("Digest realm=r, nonce=n, algorithm={secretish}"),
    ];
    for c in cases {
        let e1 = Credentials::parse(&c).err();
        let e2 = Challenge::parse(&c).err();
        for e in [e1, e2].into_iter().flatten() {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(secretish), "{text}");
        }
    }
}

#[test]
fn authentication_info_shapes() {
    // RFC 7616 3.5 shape, with nextnonce.
    let a = AuthenticationInfo::parse(
        "nextnonce=\"abc\", qop=auth, rspauth=\"0123\", cnonce=\"xyz\", nc=00000001",
    )
    .unwrap();
    assert_eq!(a.qop, Some(Qop::Auth));
    assert_eq!(a.nextnonce.as_deref(), Some("abc"));
    assert_eq!(AuthenticationInfo::parse(&a.to_header_value()).unwrap(), a);
    assert_eq!(
        AuthenticationInfo::parse("").unwrap(),
        AuthenticationInfo::default()
    );
    assert_eq!(
        AuthenticationInfo::parse("nc=1"),
        Err(ParseError::BadValue("nc"))
    );
    assert!(matches!(
        AuthenticationInfo::parse("Digest qop=auth"),
        Err(ParseError::BadSyntax { .. })
    ));
}

// ---------------------------------------------------------------------------
// Randomized: round trips and never-panic

/// xorshift64*: small, deterministic, good enough to spread test inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    /// Printable text including quotes, backslashes, commas, '=' and non-ASCII, which
    /// are the characters that stress quoting.
    fn text(&mut self, max: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', ' ', '\t', '"', '\\', ',', '=', '/', '+', ':', '@', ';', '\u{e4}',
            '\u{20ac}', '-', '_', '~',
        ];
        let n = self.below(max + 1);
        (0..n)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }
    fn opt_text(&mut self, max: usize) -> Option<String> {
        if self.chance(2) {
            Some(self.text(max))
        } else {
            None
        }
    }
    fn algorithm(&mut self) -> Algorithm {
        Algorithm::ALL[self.below(Algorithm::ALL.len())]
    }
    fn qop(&mut self) -> Qop {
        if self.chance(2) {
            Qop::Auth
        } else {
            Qop::AuthInt
        }
    }
}

#[test]
fn random_round_trips_are_identity() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let ch = Challenge {
            realm: r.text(40),
            nonce: r.text(60),
            opaque: r.opt_text(30),
            algorithm: r.algorithm(),
            qop: (0..r.below(3)).map(|_| r.qop()).collect(),
            stale: r.chance(2),
            domain: r.opt_text(30),
            userhash: r.chance(2),
        };
        assert_eq!(Challenge::parse(&ch.to_header_value()).unwrap(), ch);

        let qop = if r.chance(3) { None } else { Some(r.qop()) };
        let nc = r.next() as u32;
        let with_nc = qop.is_some() || r.chance(4);
        let cr = Credentials {
            username: r.text(40),
            realm: r.text(40),
            nonce: r.text(60),
            uri: r.text(40),
            response: r.text(64),
            algorithm: if r.chance(2) {
                Some(r.algorithm())
            } else {
                None
            },
            qop,
            nc: with_nc.then_some(nc),
            nc_text: with_nc.then(|| format!("{nc:08x}")),
            cnonce: if qop.is_some() {
                Some(r.text(20))
            } else {
                r.opt_text(20)
            },
            opaque: r.opt_text(30),
            auts: r.opt_text(20),
            userhash: r.chance(2),
        };
        assert_eq!(Credentials::parse(&cr.to_header_value()).unwrap(), cr);

        let ai = AuthenticationInfo {
            qop: if r.chance(2) { Some(r.qop()) } else { None },
            rspauth: r.opt_text(64),
            cnonce: r.opt_text(20),
            nc_text: r.chance(2).then(|| format!("{:08X}", r.next() as u32)),
            nextnonce: r.opt_text(40),
        };
        assert_eq!(
            AuthenticationInfo::parse(&ai.to_header_value()).unwrap(),
            ai
        );
    }
}

fn mutate(r: &mut Rng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=r.below(4) {
        let interesting: &[u8] = b"\"\\,= \t\r\n\0\x7f\xc3\xa4:";
        match r.below(5) {
            0 if !bytes.is_empty() => {
                let i = r.below(bytes.len());
                bytes[i] = (r.next() & 0xff) as u8;
            }
            1 if !bytes.is_empty() => {
                let i = r.below(bytes.len());
                bytes.remove(i);
            }
            2 => {
                let i = r.below(bytes.len() + 1);
                bytes.insert(i, interesting[r.below(interesting.len())]);
            }
            3 if !bytes.is_empty() => {
                let i = r.below(bytes.len());
                bytes.truncate(i);
            }
            _ => {
                let i = r.below(bytes.len() + 1);
                let j = r.below(bytes.len() + 1);
                let (a, b) = (i.min(j), i.max(j));
                let chunk = bytes[a..b].to_vec();
                bytes.splice(a..a, chunk);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn parsers_never_panic_on_random_and_mutated_input() {
    let seeds = [
        MIN.to_owned(),
        "Digest realm=\"bsf.home1.net\", nonce=\"AAECAw==\", algorithm=AKAv1-MD5, qop=\"auth-int\", opaque=\"x\"".to_owned(),
        "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", qop=auth-int, nc=00000001, cnonce=\"c\", response=\"ab\", auts=\"QQ==\"".to_owned(),
        "qop=auth, rspauth=\"0123\", cnonce=\"xyz\", nc=00000001, nextnonce=\"a\\\"b\"".to_owned(),
    ];
    let mut r = Rng(0xdead_beef_cafe_f00d);
    let mut ok = 0usize;
    for i in 0..6000 {
        let input = if i % 3 == 0 {
            // Pure noise over a small, grammar-relevant alphabet.
            let alphabet = b"Digest =,\"\\ \tabcnq01:/\r\n\x7f";
            let n = r.below(120);
            let bytes: Vec<u8> = (0..n).map(|_| alphabet[r.below(alphabet.len())]).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let seed = &seeds[r.below(seeds.len())];
            mutate(&mut r, seed)
        };
        let results = [
            Challenge::parse(&input).is_ok(),
            Credentials::parse(&input).is_ok(),
            AuthenticationInfo::parse(&input).is_ok(),
        ];
        ok += results.iter().filter(|b| **b).count();
        // Whatever parses must re-format into something that parses to the same value.
        if let Ok(c) = Credentials::parse(&input) {
            assert_eq!(
                Credentials::parse(&c.to_header_value()).unwrap(),
                c,
                "{input:?}"
            );
        }
        if let Ok(c) = Challenge::parse(&input) {
            assert_eq!(
                Challenge::parse(&c.to_header_value()).unwrap(),
                c,
                "{input:?}"
            );
        }
    }
    // The mutations must leave some inputs valid, or the test explores nothing useful.
    assert!(ok > 200, "only {ok} inputs parsed");
}
