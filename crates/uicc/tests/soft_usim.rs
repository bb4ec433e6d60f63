//! The software USIM driven through `Usim` (APDUs only), checked against seccf-gba and
//! the test-set-1 vectors in `testdata/`.

mod common;

use common::{network_milenage, set1_card, set1_config, testdata, Recorder, Set1, T0Reader};
use seccf_gba::aka::{autn_star, generate_av, verify_auts};
use seccf_gba::kdf::ks;
use seccf_gba::naf::{ks_int_naf, ks_naf, NafId, UaSecurityProtocolId};
use seccf_gba::sqn::{self, he_counter_after_resync, next_sqn, SqnWindow};
use seccf_gba::Secret;
use seccf_uicc::soft::{SoftUsim, KS_INT_NAF_SLOTS};
use seccf_uicc::{AkaOutcome, CardError, GbaUOutcome, Gbabp, Usim, UsimError};

fn success(o: AkaOutcome) -> (Secret<8>, Secret<16>, Secret<16>) {
    match o {
        AkaOutcome::Success { res, ck, ik } => (res, ck, ik),
        AkaOutcome::SyncFailure { .. } => panic!("unexpected sync failure"),
    }
}

fn auts_of(o: AkaOutcome) -> [u8; 14] {
    match o {
        AkaOutcome::SyncFailure { auts } => auts,
        AkaOutcome::Success { .. } => panic!("unexpected success"),
    }
}

#[test]
fn test_set_1_authenticate_3g() {
    let t = Set1::load();
    let card = SoftUsim::open(&testdata("soft_usim_set1.toml"), None).unwrap();
    assert_eq!(
        card.impi(),
        "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
    );
    let mut usim = Usim::new(card);
    let (res, ck, ik) = success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    assert_eq!(res.expose(), &t.get::<8>("res"));
    assert_eq!(ck.expose(), &t.get::<16>("ck"));
    assert_eq!(ik.expose(), &t.get::<16>("ik"));
}

#[test]
fn config_with_op_derives_the_same_card() {
    let t = Set1::load();
    let text = format!(
        "impi = \"a@b.example\"\nk = \"465b5ce8b199b49faa5f0a2ee238a6bc\"\nop = \"{}\"\ndelta = {}\n",
        t.v["op"],
        sqn::SEQ_MAX
    );
    let cfg = seccf_uicc::soft::SoftUsimConfig::from_toml_str(&text).unwrap();
    assert_eq!(cfg.opc, set1_config().opc);
    let mut usim = Usim::new(SoftUsim::from_config(cfg));
    let (res, _, _) = success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    assert_eq!(res.expose(), &t.get::<8>("res"));
}

#[test]
fn replay_is_refused_with_verifiable_auts() {
    let t = Set1::load();
    let mut usim = Usim::new(set1_card(false));
    success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    let auts = auts_of(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    // The network verifies AUTS and learns the card's SQN_MS (the SQN just accepted).
    assert_eq!(
        verify_auts(&network_milenage(), &t.rand(), &auts),
        Some(t.sqn())
    );
}

#[test]
fn fresh_card_with_default_delta_resyncs_then_accepts() {
    let t = Set1::load();
    let mut cfg = set1_config();
    cfg.delta = SqnWindow::DEFAULT_DELTA;
    let mut usim = Usim::new(SoftUsim::from_config(cfg));
    // Test set 1's SQN is far beyond delta for a card that has seen nothing.
    let auts = auts_of(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    let m = network_milenage();
    let sqn_ms = verify_auts(&m, &t.rand(), &auts).unwrap();
    assert_eq!(sqn_ms, 0);
    // The HE moves its counter and the next vector is accepted.
    let next = next_sqn(he_counter_after_resync(sqn_ms)).unwrap();
    let av = generate_av(&m, [0x42; 16], next, [0x80, 0]);
    let (res, ck, _) = success(usim.authenticate_3g(&av.rand, &av.autn).unwrap());
    assert_eq!(res, av.xres);
    assert_eq!(ck, av.ck);
}

#[test]
fn mac_failure_consumes_nothing() {
    let t = Set1::load();
    let mut usim = Usim::new(set1_card(false));
    for byte in [0usize, 6, 8, 15] {
        let mut bad = t.autn();
        bad[byte] ^= 0x40;
        assert!(matches!(
            usim.authenticate_3g(&t.rand(), &bad),
            Err(UsimError::MacFailure)
        ));
    }
    assert_eq!(usim.transport().sqn_window().sqn_ms(), 0);
    // The genuine AUTN is still fresh.
    success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
}

#[test]
fn replay_refused_after_reopening_from_state_file() {
    let t = Set1::load();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("usim-state.toml");
    let config = testdata("soft_usim_set1.toml");

    let mut usim = Usim::new(SoftUsim::open(&config, Some(&state)).unwrap());
    success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    drop(usim);
    assert!(state.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "state file readable by others: {mode:o}");
    }
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut usim = Usim::new(SoftUsim::open(&config, Some(&state)).unwrap());
    let auts = auts_of(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    assert_eq!(
        verify_auts(&network_milenage(), &t.rand(), &auts),
        Some(t.sqn())
    );
    // Without the state file the same card would accept again: the file is what refuses.
    let mut forgetful = Usim::new(SoftUsim::open(&config, None).unwrap());
    success(forgetful.authenticate_3g(&t.rand(), &t.autn()).unwrap());
}

#[test]
fn no_res_when_state_cannot_be_written() {
    let t = Set1::load();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("missing-dir").join("state.toml");
    let mut card = set1_card(false);
    card.attach_state(&state).unwrap();
    let mut usim = Usim::new(card);
    assert!(matches!(
        usim.authenticate_3g(&t.rand(), &t.autn()),
        Err(UsimError::Card(CardError::Io { .. }))
    ));
    // Nothing was recorded, so nothing is lost: once writable, the challenge succeeds.
    assert_eq!(usim.transport().sqn_window().sqn_ms(), 0);
    std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
    success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
}

#[test]
fn damaged_or_foreign_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = testdata("soft_usim_set1.toml");
    let state = dir.path().join("state.toml");
    std::fs::write(&state, "version = 1\nseq_ms = [1, 2]\nimpi = \"x@y\"\n").unwrap();
    assert!(matches!(
        SoftUsim::open(&config, Some(&state)),
        Err(CardError::State { .. })
    ));
    let zeros = vec!["0"; 32].join(", ");
    std::fs::write(
        &state,
        format!("version = 1\nimpi = \"other@example.org\"\nseq_ms = [{zeros}]\n"),
    )
    .unwrap();
    let err = SoftUsim::open(&config, Some(&state)).unwrap_err();
    assert!(err.to_string().contains("another IMPI"), "{err}");
    std::fs::write(&state, "garbage = [").unwrap();
    assert!(matches!(
        SoftUsim::open(&config, Some(&state)),
        Err(CardError::State { .. })
    ));
}

fn gba_u_bootstrap(usim: &mut Usim<impl seccf_uicc::CardTransport>) -> seccf_gba::aka::AuthVector {
    let t = Set1::load();
    let m = network_milenage();
    let av = generate_av(&m, t.rand(), t.sqn(), t.get("amf"));
    assert_eq!(av.autn, t.autn());
    // The BSF of a GBA_U subscriber sends AUTN*.
    let star = autn_star(&av.autn, &av.ik);
    match usim.gba_u_bootstrap(&av.rand, &star).unwrap() {
        GbaUOutcome::Success { res } => assert_eq!(res, av.xres),
        GbaUOutcome::SyncFailure { .. } => panic!("unexpected sync failure"),
    }
    av
}

#[test]
fn gba_u_keys_match_gba_and_ks_int_never_leaves_the_card() {
    let t = Set1::load();
    let impi = set1_config().impi;
    let mut usim = Usim::new(Recorder::new(set1_card(true)));
    assert!(usim.supports_gba_u().unwrap());

    let av = gba_u_bootstrap(&mut usim);
    let ks_v = ks(&av.ck, &av.ik);
    let mut derived = Vec::new();
    for ua in [
        UaSecurityProtocolId::HTTP_DIGEST,
        UaSecurityProtocolId::OMA_SIP_DIGEST,
        UaSecurityProtocolId::tls_3gpp(0x008c),
    ] {
        let naf = NafId::new(&t.v["naf_fqdn"], ua).unwrap();
        let ext = usim.gba_u_naf_derive(&naf, &impi).unwrap();
        assert_eq!(ext, ks_naf(&ks_v, &av.rand, &impi, &naf).unwrap(), "{ua}");
        let int = usim
            .transport()
            .inner
            .card_application_ks_int_naf(&naf)
            .expect("Ks_int_NAF stored in the card");
        assert_eq!(
            int,
            ks_int_naf(&ks_v, &av.rand, &impi, &naf).unwrap(),
            "{ua}"
        );
        derived.push((naf, ext, int));
    }
    // The worked example of the reference (same subscriber, RAND and IMPI).
    let (_, ext, int) = &derived[0];
    assert_eq!(ext.expose(), &t.get::<32>("ks_ext_naf_http_digest"));
    assert_eq!(int.expose(), &t.get::<32>("ks_int_naf_http_digest"));

    // Nothing secret to the card crossed the APDU interface: no Ks_int_NAF, no Ks, no
    // CK, no IK. RES and Ks_ext_NAF did (they are for the ME).
    let rec = usim.transport();
    for (_, ext, int) in &derived {
        assert!(!rec.saw(int.expose()), "Ks_int_NAF seen on the interface");
        assert!(rec.saw(ext.expose()));
    }
    assert!(!rec.saw(ks_v.expose()));
    assert!(!rec.saw(&av.ck.expose()[..8]));
    assert!(!rec.saw(&av.ik.expose()[..8]));
    assert!(rec.saw(av.xres.expose()));
}

#[test]
fn gba_u_card_rules() {
    let t = Set1::load();
    let impi = set1_config().impi;
    let naf = NafId::new("naf.example.com", UaSecurityProtocolId::HTTP_DIGEST).unwrap();

    // No Ks yet.
    let mut usim = Usim::new(set1_card(true));
    assert!(matches!(
        usim.gba_u_naf_derive(&naf, &impi),
        Err(UsimError::NoBootstrap)
    ));
    // A plain AUTN in the GBA context fails: the card expects AUTN*.
    assert!(matches!(
        usim.gba_u_bootstrap(&t.rand(), &t.autn()),
        Err(UsimError::MacFailure)
    ));
    // The GBA_U card still runs 3G AKA with the plain AUTN.
    let (res, _, _) = success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    assert_eq!(res.expose(), &t.get::<8>("res"));

    // A GBA_ME card refuses the GBA context and has no EF_GBABP.
    let mut me = Usim::new(set1_card(false));
    assert!(!me.supports_gba_u().unwrap());
    let star = {
        let av = generate_av(&network_milenage(), t.rand(), t.sqn(), t.get("amf"));
        autn_star(&av.autn, &av.ik)
    };
    assert!(matches!(
        me.gba_u_bootstrap(&t.rand(), &star),
        Err(UsimError::ContextNotSupported { sw: 0x9864 })
    ));
    assert!(matches!(
        me.gba_u_naf_derive(&naf, &impi),
        Err(UsimError::ContextNotSupported { .. })
    ));
    assert!(matches!(
        me.read_gbabp(),
        Err(UsimError::FileNotFound { fid: 0x6FD6 })
    ));
}

#[test]
fn gba_u_replay_refused_and_ks_survives_restart() {
    let t = Set1::load();
    let impi = set1_config().impi;
    let naf = NafId::new("naf.example.com", UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.toml");

    let mut card = set1_card(true);
    card.attach_state(&state).unwrap();
    let mut usim = Usim::new(card);
    let av = gba_u_bootstrap(&mut usim);
    let before = usim.gba_u_naf_derive(&naf, &impi).unwrap();
    drop(usim);

    let mut card = set1_card(true);
    card.attach_state(&state).unwrap();
    let mut usim = Usim::new(card);
    // Ks and RAND came back from the state file.
    assert_eq!(usim.gba_u_naf_derive(&naf, &impi).unwrap(), before);
    // The bootstrap challenge is a replay now.
    let star = autn_star(&av.autn, &av.ik);
    match usim.gba_u_bootstrap(&av.rand, &star).unwrap() {
        GbaUOutcome::SyncFailure { auts } => {
            assert_eq!(
                verify_auts(&network_milenage(), &av.rand, &auts),
                Some(t.sqn())
            )
        }
        GbaUOutcome::Success { .. } => panic!("replay accepted"),
    }
}

#[test]
fn ks_int_naf_table_is_lru_bounded() {
    let impi = set1_config().impi;
    let mut usim = Usim::new(set1_card(true));
    gba_u_bootstrap(&mut usim);
    let nafs: Vec<NafId> = (0..=KS_INT_NAF_SLOTS)
        .map(|i| {
            NafId::new(
                &format!("naf{i}.example.com"),
                UaSecurityProtocolId::HTTP_DIGEST,
            )
            .unwrap()
        })
        .collect();
    for naf in &nafs[..KS_INT_NAF_SLOTS] {
        usim.gba_u_naf_derive(naf, &impi).unwrap();
    }
    // Use naf0 again, then one more: naf1 is the least recently used and goes.
    usim.gba_u_naf_derive(&nafs[0], &impi).unwrap();
    usim.gba_u_naf_derive(&nafs[KS_INT_NAF_SLOTS], &impi)
        .unwrap();
    let card = usim.transport();
    assert!(card.card_application_ks_int_naf(&nafs[1]).is_none());
    for (i, naf) in nafs.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert!(card.card_application_ks_int_naf(naf).is_some(), "naf{i}");
    }
}

#[test]
fn ef_gbabp_round_trip_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.toml");
    let mut card = set1_card(true);
    card.attach_state(&state).unwrap();
    let mut usim = Usim::new(card);
    assert_eq!(usim.read_gbabp().unwrap(), None);

    let rand = [0x23; 16];
    let long_btid = format!(
        "{}@{}",
        "I1U8vpY3qJ0hiuZNrke/NQ==",
        "b".repeat(200) + ".example"
    );
    usim.write_gbabp(&rand, &long_btid, "2025-01-01T12:00:00Z")
        .unwrap();
    assert_eq!(
        usim.read_gbabp().unwrap(),
        Some(Gbabp {
            rand,
            btid: long_btid,
            lifetime: "2025-01-01T12:00:00Z".into()
        })
    );
    // A new bootstrap overwrites it; the shorter content is read back exactly.
    let btid = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org";
    usim.write_gbabp(&[0x24; 16], btid, "2025-02-01T00:00:00Z")
        .unwrap();
    let expected = Gbabp {
        rand: [0x24; 16],
        btid: btid.into(),
        lifetime: "2025-02-01T00:00:00Z".into(),
    };
    assert_eq!(usim.read_gbabp().unwrap(), Some(expected.clone()));
    drop(usim);

    let mut card = set1_card(true);
    card.attach_state(&state).unwrap();
    assert_eq!(Usim::new(card).read_gbabp().unwrap(), Some(expected));

    // Inputs that do not fit the file format are refused before any APDU.
    let mut usim = Usim::new(set1_card(true));
    assert!(matches!(
        usim.write_gbabp(&rand, &"x".repeat(256), "t"),
        Err(UsimError::File(_))
    ));
}

#[test]
fn read_impi_and_t0_reader() {
    let t = Set1::load();
    let mut usim = Usim::new(T0Reader(set1_card(true)));
    assert_eq!(usim.read_impi().unwrap(), set1_config().impi);
    // AUTHENTICATE answered 61xx is completed with GET RESPONSE.
    let (res, ck, ik) = success(usim.authenticate_3g(&t.rand(), &t.autn()).unwrap());
    assert_eq!(res.expose(), &t.get::<8>("res"));
    assert_eq!(ck.expose(), &t.get::<16>("ck"));
    assert_eq!(ik.expose(), &t.get::<16>("ik"));
    usim.write_gbabp(
        &[1; 16],
        "AQEBAQEBAQEBAQEBAQEBAQ==@bsf.example",
        "2030-01-01T00:00:00Z",
    )
    .unwrap();
    assert!(usim.read_gbabp().unwrap().is_some());
    assert!(usim.supports_gba_u().unwrap());
}

#[test]
fn naf_derivation_input_limits() {
    let mut usim = Usim::new(set1_card(true));
    gba_u_bootstrap(&mut usim);
    let naf = NafId::new(&"n".repeat(60), UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    let long_impi = format!("{}@example.org", "u".repeat(190));
    assert!(matches!(
        usim.gba_u_naf_derive(&naf, &long_impi),
        Err(UsimError::InputTooLong(_))
    ));
    assert!(matches!(
        usim.gba_u_naf_derive(&naf, "ü@example.org"),
        Err(UsimError::InvalidInput(_))
    ));
}
