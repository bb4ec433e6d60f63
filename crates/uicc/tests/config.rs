//! Soft-USIM configuration parsing: strict, and never echoing key material.

mod common;

use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::CardError;

const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";

fn err(text: &str) -> String {
    match SoftUsimConfig::from_toml_str(text) {
        Err(CardError::Config(msg)) => msg,
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn sample_file_parses() {
    let c = common::set1_config();
    assert_eq!(c.amf, [0xb9, 0xb9]);
    assert!(!c.gba_u);
    assert_eq!(c.delta, seccf_gba::sqn::SEQ_MAX);
    assert_eq!(c.k.expose(), &common::h::<16>(K));
    // Debug output is redacted.
    let d = format!("{c:?}");
    assert!(!d.contains(K) && !d.contains(OPC), "{d}");
}

#[test]
fn refusals() {
    let base = format!("impi = \"a@b.example\"\nk = \"{K}\"\n");
    let cases = [
        (
            format!("{base}opc = \"{OPC}\"\nextra = 1\n"),
            "unknown field",
        ),
        (
            format!("{base}opc = \"{OPC}\"\nop = \"{OPC}\"\n"),
            "not both",
        ),
        (base.clone(), "one of opc or op"),
        (format!("{base}opc = \"{OPC}\"\namf = \"80\"\n"), "amf"),
        (
            format!("{base}opc = \"{OPC}\"\nsqn_window = [1, 2]\n"),
            "32 entries",
        ),
        (
            format!("impi = \"not an impi\"\nk = \"{K}\"\nopc = \"{OPC}\"\n"),
            "impi",
        ),
    ];
    for (text, want) in cases {
        let msg = err(&text);
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
}

#[test]
fn bad_keys_are_not_echoed() {
    // A key one digit short, a non-hex key, and keys of the wrong TOML type.
    let secretish = "465b5ce8b199b49faa5f0a2ee238a6b";
    for bad_k in [
        format!("\"{secretish}\""),
        format!("\"{secretish}z\""),
        "4652584199449".to_owned(),
        format!("[\"{secretish}\"]"),
    ] {
        let text = format!("impi = \"a@b.example\"\nk = {bad_k}\nopc = \"{OPC}\"\n");
        let msg = err(&text);
        assert!(msg.contains("32 hex digits"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(
            !msg.contains("465b") && !msg.contains("46525"),
            "echoed: {msg}"
        );
        assert!(!msg.contains("cd63"), "echoed OPc: {msg}");
    }
}

#[test]
fn open_reports_missing_file() {
    let e = SoftUsim::open(std::path::Path::new("/nonexistent/usim.toml"), None).unwrap_err();
    assert!(matches!(e, CardError::Io { .. }), "{e}");
}
