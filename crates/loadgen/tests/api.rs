//! The library API (`seccf_load::procstat`, `seccf_load::keyfile`) against recorded
//! inputs in `testdata/` (see testdata/README.md for their source).

use seccf_gba::naf::UaSecurityProtocolId;
use seccf_load::keyfile::{GbaKeys, KeyFileError};
use seccf_load::procstat::{parse_machine_stat, parse_pid_stat, ticks_to_secs};
use seccf_secret::Secret;

fn testdata(name: &str) -> String {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn recorded_pid_stat_gives_user_and_system_ticks() {
    let t = parse_pid_stat(&testdata("proc-pid-stat.txt")).expect("recorded line parses");
    // Fields 14 and 15 of the recorded line.
    assert_eq!((t.utime, t.stime), (2110, 2919));
    assert!((ticks_to_secs(t.total()) - 50.29).abs() < 1e-9);
}

#[test]
fn recorded_machine_stat_gives_busy_ticks() {
    let m = parse_machine_stat(&testdata("proc-stat.txt")).expect("recorded file parses");
    // user + nice + system + irq + softirq = 393787 + 6007 + 168422 + 0 + 5694.
    assert_eq!(m.busy, 573_910);
}

#[test]
fn key_file_round_trip_through_the_public_api() {
    let btid = "EjRWeJq83vASNFZ4mrze8A==@bsf.seccf.test";
    let ua12 = UaSecurityProtocolId::tls_3gpp(0x00a8);
    let keys =
        GbaKeys::new(btid, "localhost", 42, vec![(ua12, Secret::new([7u8; 32]))]).expect("valid");
    let text = keys.to_json().expect("encodes");
    let back = GbaKeys::from_json(text.as_bytes()).expect("parses");
    assert_eq!(back.psk_identity(), format!("3GPP-bootstrapping.{btid}"));
    assert_eq!(back.key(&ua12).map(|k| *k.expose()), Some([7u8; 32]));
    assert_eq!(back.ua_ids().count(), 1);
    assert_eq!(
        back.stunnel_psk_line(&ua12).as_deref().map(String::as_str),
        Some(format!("3GPP-bootstrapping.{btid}:{}\n", "07".repeat(32)).as_str())
    );
    let tampered = text.replace("\"localhost\"", "\"\"");
    assert_eq!(
        GbaKeys::from_json(tampered.as_bytes()).map(|_| ()),
        Err(KeyFileError::Fqdn)
    );
}
