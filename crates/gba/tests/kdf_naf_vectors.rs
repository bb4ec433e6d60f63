//! KDF, NAF key, B-TID and TMPI vectors from `testdata/` (sources named in each file).

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{h, kv, one, rows};
use seccf_gba::btid::{make_btid, parse_btid, tmpi};
use seccf_gba::kdf::{kdf, kdf_input, ks};
use seccf_gba::naf::{
    ks_int_naf, ks_int_naf_from_bytes, ks_naf, ks_naf_from_bytes, NafId, UaSecurityProtocolId,
};
use seccf_gba::Secret;

#[test]
fn generic_kdf_fc_0x11_vectors() {
    let vs = rows("kdf_vectors.txt");
    assert_eq!(vs.len(), 6);
    for r in vs {
        let fc = h::<1>(&r[0])[0];
        let key: [u8; 32] = h(&r[1]);
        let p0: [u8; 4] = h(&r[2]);
        let out: [u8; 32] = h(&r[3]);
        assert_eq!(kdf(&key, fc, &[&p0]).unwrap().expose(), &out, "{r:?}");
    }
}

fn inputs() -> (Secret<32>, [u8; 16], String, String) {
    let v = kv("naf_keys.txt");
    (
        Secret::new(h(one(&v, "ks"))),
        h(one(&v, "rand")),
        one(&v, "impi").to_owned(),
        one(&v, "fqdn").to_owned(),
    )
}

#[test]
fn kdf_input_string_matches_worked_example() {
    let v = kv("naf_keys.txt");
    let (_, rand, impi, fqdn) = inputs();
    let naf = NafId::new(&fqdn, UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    let s = kdf_input(0x01, &[b"gba-me", &rand, impi.as_bytes(), &naf.to_bytes()]).unwrap();
    assert_eq!(hex::encode(s), one(&v, "s_http_digest"));
}

#[test]
fn naf_key_table() {
    let v = kv("naf_keys.txt");
    let (ks_v, rand, impi, fqdn) = inputs();
    // Ks in the file is CK || IK of MILENAGE test set 1.
    let ck = Secret::new(h::<16>("b40ba9a3c58b2a05bbf0d987b21bf8cb"));
    let ik = Secret::new(h::<16>("f769bcd751044604127672711c6d3441"));
    assert_eq!(ks(&ck, &ik), ks_v);

    let table = v.get("row").unwrap();
    assert_eq!(table.len(), 4);
    let mut seen = Vec::new();
    for row in table {
        let c: Vec<&str> = row.split_whitespace().collect();
        let ua = UaSecurityProtocolId::from_hex(c[0]).unwrap();
        seen.push(ua);
        let naf = NafId::new(&fqdn, ua).unwrap();
        assert_eq!(hex::encode(naf.to_bytes()), c[1]);

        let me = ks_naf(&ks_v, &rand, &impi, &naf).unwrap();
        let int = ks_int_naf(&ks_v, &rand, &impi, &naf).unwrap();
        assert_eq!(me.expose(), &h::<32>(c[2]), "Ks_NAF for {ua}");
        assert_eq!(int.expose(), &h::<32>(c[3]), "Ks_int_NAF for {ua}");
        assert_eq!(STANDARD.encode(me.expose()), c[4], "password for {ua}");

        // The raw-octet forms (what a UICC computes) agree.
        let raw = naf.to_bytes();
        assert_eq!(
            ks_naf_from_bytes(&ks_v, &rand, impi.as_bytes(), &raw).unwrap(),
            me
        );
        assert_eq!(
            ks_int_naf_from_bytes(&ks_v, &rand, impi.as_bytes(), &raw).unwrap(),
            int
        );
    }
    // The four ids of the table, built from the named constants.
    assert_eq!(
        seen,
        [
            UaSecurityProtocolId::HTTP_DIGEST,
            UaSecurityProtocolId::tls_3gpp(0x008c), // TLS_PSK_WITH_AES_128_CBC_SHA
            UaSecurityProtocolId::OMA_SIP_DIGEST,
            UaSecurityProtocolId::TLS13_SHARED_KEY,
        ]
    );
    // The FQDN is case-normalised, so a mixed-case Host gives the same key.
    let upper = NafId::new(&fqdn.to_uppercase(), UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    assert_eq!(
        ks_naf(&ks_v, &rand, &impi, &upper).unwrap().expose(),
        &h::<32>(table[0].split_whitespace().nth(2).unwrap())
    );
}

#[test]
fn btid_example() {
    let v = kv("ub_example.txt");
    let rand: [u8; 16] = h(one(&v, "rand"));
    let domain = one(&v, "bsf_domain");
    let btid = make_btid(&rand, domain);
    assert_eq!(btid, one(&v, "btid"));
    assert_eq!(parse_btid(&btid).unwrap(), (rand, domain));
}

#[test]
fn tmpi_example() {
    let v = kv("ub_example.txt");
    let t = tmpi(
        &Secret::new(h(one(&v, "ks"))),
        &h(one(&v, "rand")),
        one(&v, "impi"),
        one(&v, "bsf_domain"),
    )
    .unwrap();
    assert_eq!(t, one(&v, "tmpi"));
}
