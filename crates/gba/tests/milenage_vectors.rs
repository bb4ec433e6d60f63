//! MILENAGE and AKA token vectors from `testdata/` (sources named in each file).

mod common;

use common::{h, kv, one, rows, sqn};
use seccf_gba::aka::{build_auts, check_autn, generate_av, verify_auts, AutnError};
use seccf_gba::milenage::{derive_opc, Milenage};
use seccf_gba::sqn::to_bytes;
use seccf_gba::Secret;

struct TestSet {
    n: u32,
    k: [u8; 16],
    rand: [u8; 16],
    sqn: [u8; 6],
    amf: [u8; 2],
    op: [u8; 16],
    opc: [u8; 16],
    f1: [u8; 8],
    f1s: [u8; 8],
    f2: [u8; 8],
    f3: [u8; 16],
    f4: [u8; 16],
    f5: [u8; 6],
    f5s: [u8; 6],
}

fn test_sets() -> Vec<TestSet> {
    let sets: Vec<TestSet> = rows("milenage_test_sets.txt")
        .iter()
        .map(|r| {
            assert_eq!(r.len(), 14, "row {r:?}");
            TestSet {
                n: r[0].parse().unwrap(),
                k: h(&r[1]),
                rand: h(&r[2]),
                sqn: h(&r[3]),
                amf: h(&r[4]),
                op: h(&r[5]),
                opc: h(&r[6]),
                f1: h(&r[7]),
                f1s: h(&r[8]),
                f2: h(&r[9]),
                f3: h(&r[10]),
                f4: h(&r[11]),
                f5: h(&r[12]),
                f5s: h(&r[13]),
            }
        })
        .collect();
    assert_eq!(
        sets.iter().map(|s| s.n).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    sets
}

#[test]
fn all_twenty_test_sets() {
    for t in test_sets() {
        let n = t.n;
        let opc = derive_opc(&Secret::new(t.k), &Secret::new(t.op));
        assert_eq!(opc.expose(), &t.opc, "OPc, set {n}");

        // Built from OP: the derived OPc is used.
        let m = Milenage::with_op(Secret::new(t.k), &Secret::new(t.op));
        assert_eq!(m.opc().expose(), &t.opc, "with_op, set {n}");

        let m = Milenage::new(Secret::new(t.k), Secret::new(t.opc));
        assert_eq!(m.f1(&t.rand, &t.sqn, &t.amf), t.f1, "f1, set {n}");
        assert_eq!(m.f1_star(&t.rand, &t.sqn, &t.amf), t.f1s, "f1*, set {n}");
        let o = m.f2345(&t.rand);
        assert_eq!(o.res.expose(), &t.f2, "f2, set {n}");
        assert_eq!(o.ck.expose(), &t.f3, "f3, set {n}");
        assert_eq!(o.ik.expose(), &t.f4, "f4, set {n}");
        assert_eq!(o.ak, t.f5, "f5, set {n}");
        assert_eq!(m.f5_star(&t.rand), t.f5s, "f5*, set {n}");
    }
}

#[test]
fn derived_autn_and_auts_sets_1_to_6() {
    let sets = test_sets();
    let derived = rows("aka_derived.txt");
    assert_eq!(derived.len(), 6);
    for r in derived {
        let n: usize = r[0].parse().unwrap();
        let t = &sets[n - 1];
        let autn: [u8; 16] = h(&r[1]);
        let auts: [u8; 14] = h(&r[2]);
        let m = Milenage::new(Secret::new(t.k), Secret::new(t.opc));
        let sqn_v = seccf_gba::sqn::from_bytes(&t.sqn);

        let av = generate_av(&m, t.rand, sqn_v, t.amf);
        assert_eq!(av.autn, autn, "AUTN, set {n}");
        assert_eq!(av.rand, t.rand);
        assert_eq!(av.xres.expose(), &t.f2);
        assert_eq!(av.ck.expose(), &t.f3);
        assert_eq!(av.ik.expose(), &t.f4);

        let ok = check_autn(&m, &t.rand, &autn).unwrap();
        assert_eq!(ok.sqn, sqn_v, "SQN recovered, set {n}");
        assert_eq!(ok.amf, t.amf);
        assert_eq!(ok.keys.res.expose(), &t.f2);

        assert_eq!(build_auts(&m, &t.rand, sqn_v), auts, "AUTS, set {n}");
        assert_eq!(verify_auts(&m, &t.rand, &auts), Some(sqn_v), "set {n}");
    }
}

#[test]
fn osmocom_resync_example() {
    let v = kv("resync_vectors.txt");
    let m = Milenage::new(
        Secret::new(h(one(&v, "osmo_k"))),
        Secret::new(h(one(&v, "osmo_opc"))),
    );
    let rand: [u8; 16] = h(one(&v, "osmo_rand"));
    let av = generate_av(&m, rand, sqn(one(&v, "osmo_sqn")), h(one(&v, "osmo_amf")));
    assert_eq!(av.autn, h::<16>(one(&v, "osmo_autn")));
    assert_eq!(av.xres.expose(), &h::<8>(one(&v, "osmo_res")));
    assert_eq!(av.ck.expose(), &h::<16>(one(&v, "osmo_ck")));
    assert_eq!(av.ik.expose(), &h::<16>(one(&v, "osmo_ik")));

    let auts: [u8; 14] = h(one(&v, "osmo_auts"));
    assert_eq!(
        verify_auts(&m, &rand, &auts),
        Some(sqn(one(&v, "osmo_auts_sqn_ms")))
    );
    assert_eq!(sqn(one(&v, "osmo_auts_sqn_ms")), 31);
    // The UE side reproduces the same AUTS.
    assert_eq!(build_auts(&m, &rand, 31), auts);

    let opc = derive_opc(&Secret::new(h(one(&v, "osmo_k"))), &Secret::new([0u8; 16]));
    assert_eq!(opc.expose(), &h::<16>(one(&v, "osmo_opc_for_op_zero")));
}

#[test]
fn test_set_19_autn() {
    let t = &test_sets()[18];
    assert_eq!(t.n, 19);
    let v = kv("resync_vectors.txt");
    let m = Milenage::new(Secret::new(t.k), Secret::new(t.opc));
    let av = generate_av(&m, t.rand, seccf_gba::sqn::from_bytes(&t.sqn), t.amf);
    assert_eq!(av.autn, h::<16>(one(&v, "set19_autn")));
}

#[test]
fn test_set_1_resync_example() {
    let t = &test_sets()[0];
    let v = kv("resync_vectors.txt");
    let m = Milenage::new(Secret::new(t.k), Secret::new(t.opc));
    let sqn_ms = sqn(one(&v, "set1_resync_sqn_ms"));
    assert_eq!(m.f5_star(&t.rand), h::<6>(one(&v, "set1_resync_ak_star")));
    assert_eq!(
        m.f1_star(&t.rand, &to_bytes(sqn_ms), &[0, 0]),
        h::<8>(one(&v, "set1_resync_mac_s"))
    );
    let auts: [u8; 14] = h(one(&v, "set1_resync_auts"));
    assert_eq!(build_auts(&m, &t.rand, sqn_ms), auts);
    assert_eq!(verify_auts(&m, &t.rand, &auts), Some(sqn_ms));
    // MAC-S uses AMF* = 0000, never the AUTN's AMF (reference §11 pitfall 2).
    assert_ne!(
        m.f1_star(&t.rand, &to_bytes(sqn_ms), &t.amf),
        h::<8>(one(&v, "set1_resync_mac_s"))
    );
}

#[test]
fn mac_failure_on_other_sets_autn() {
    let sets = test_sets();
    let derived = rows("aka_derived.txt");
    // Set 1's card must refuse set 2's AUTN under set 1's RAND.
    let m1 = Milenage::new(Secret::new(sets[0].k), Secret::new(sets[0].opc));
    let autn2: [u8; 16] = h(&derived[1][1]);
    assert_eq!(
        check_autn(&m1, &sets[0].rand, &autn2).unwrap_err(),
        AutnError::MacFailure
    );
}
