//! SQN handling between a home environment and a USIM, through the public API only.

use seccf_gba::aka::{build_auts, check_autn, generate_av, verify_auts};
use seccf_gba::sqn::{self, he_counter_after_resync, next_sqn, SqnError, SqnWindow};
use seccf_gba::{Milenage, Secret};

fn milenage() -> Milenage {
    Milenage::new(Secret::new([0x42; 16]), Secret::new([0x24; 16]))
}

/// A minimal USIM: MAC check, then the freshness window; on a stale SQN it answers AUTS.
fn usim(m: &Milenage, w: &mut SqnWindow, rand: &[u8; 16], autn: &[u8; 16]) -> Result<(), [u8; 14]> {
    let ok = check_autn(m, rand, autn).expect("MAC");
    match w.check(ok.sqn) {
        Ok(()) => {
            w.accept(ok.sqn);
            Ok(())
        }
        Err(_) => Err(build_auts(m, rand, w.sqn_ms())),
    }
}

#[test]
fn out_of_order_vectors_with_different_ind_are_accepted() {
    let m = milenage();
    let mut w = SqnWindow::new(SqnWindow::DEFAULT_DELTA);
    // HE issues five consecutive SQNs: same SEQ region, IND 1..5.
    let mut counter = 32; // SEQ 1, IND 0
    let avs: Vec<_> = (0..5u8)
        .map(|i| {
            counter = next_sqn(counter).unwrap();
            generate_av(&m, [i; 16], counter, [0x80, 0])
        })
        .collect();
    // Used in the order 4, 2, 0, 3, 1: all accepted (different INDs).
    for i in [4usize, 2, 0, 3, 1] {
        assert_eq!(
            usim(&m, &mut w, &avs[i].rand, &avs[i].autn),
            Ok(()),
            "vector {i}"
        );
    }
    // Every replay is refused and answered with an AUTS the HE can verify.
    for av in &avs {
        let auts = usim(&m, &mut w, &av.rand, &av.autn).unwrap_err();
        assert_eq!(verify_auts(&m, &av.rand, &auts), Some(w.sqn_ms()));
    }
}

#[test]
fn replay_is_rejected() {
    let m = milenage();
    let mut w = SqnWindow::default();
    let av = generate_av(&m, [1; 16], sqn::from_parts(10, 3), [0, 0]);
    assert!(usim(&m, &mut w, &av.rand, &av.autn).is_ok());
    let again = check_autn(&m, &av.rand, &av.autn).unwrap();
    assert_eq!(w.check(again.sqn), Err(SqnError::NotFresh));
    // Same IND, lower SEQ: also stale.
    assert_eq!(w.check(sqn::from_parts(9, 3)), Err(SqnError::NotFresh));
    // Different IND, lower SEQ: fresh (out-of-order delivery).
    assert_eq!(w.check(sqn::from_parts(9, 4)), Ok(()));
}

#[test]
fn too_far_ahead_is_rejected_then_resync_recovers() {
    let m = milenage();
    let delta = 1000;
    let mut w = SqnWindow::new(delta);
    w.accept(sqn::from_parts(50, 0));

    // The HE's counter jumped (e.g. a restored database): SEQ 50 + delta + 1.
    let far = sqn::from_parts(50 + delta + 1, 0);
    assert_eq!(w.check(far), Err(SqnError::TooFarAhead));
    assert_eq!(w.check(sqn::from_parts(50 + delta, 7)), Ok(()));

    // Resync: USIM reports SQN_MS, HE verifies AUTS and moves its counter.
    let rand = [9; 16];
    let auts = build_auts(&m, &rand, w.sqn_ms());
    let sqn_ms = verify_auts(&m, &rand, &auts).unwrap();
    assert_eq!(sqn_ms, sqn::from_parts(50, 0));
    let counter = he_counter_after_resync(sqn_ms);
    let next = next_sqn(counter).unwrap();
    assert_eq!((sqn::seq(next), sqn::ind(next)), (51, 0));
    let av = generate_av(&m, [2; 16], next, [0, 0]);
    assert_eq!(usim(&m, &mut w, &av.rand, &av.autn), Ok(()));
}

#[test]
fn resync_moves_he_past_every_ind() {
    // The USIM has seen SEQ 20 on IND 31 and SEQ 19 elsewhere.
    let mut w = SqnWindow::new(SqnWindow::DEFAULT_DELTA);
    for i in 0..32 {
        w.accept(sqn::from_parts(19, i));
    }
    w.accept(sqn::from_parts(20, 31));
    assert_eq!(w.sqn_ms(), sqn::from_parts(20, 31));
    let mut counter = he_counter_after_resync(w.sqn_ms());
    // Every one of the next 32 SQNs (one full IND cycle) is fresh.
    for _ in 0..32 {
        counter = next_sqn(counter).unwrap();
        assert_eq!(w.check(counter), Ok(()), "sqn {counter:#x}");
    }
}

#[test]
fn persisted_window_keeps_refusing() {
    let mut w = SqnWindow::new(77);
    w.accept(sqn::from_parts(5, 5));
    let restored = SqnWindow::from_array(w.as_array(), 77);
    assert_eq!(
        restored.check(sqn::from_parts(5, 5)),
        Err(SqnError::NotFresh)
    );
    assert_eq!(restored.sqn_ms(), sqn::from_parts(5, 5));
}
