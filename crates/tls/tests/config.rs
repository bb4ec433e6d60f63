//! TLS settings as they appear in seccf TOML files.

use std::path::PathBuf;

use seccf_tls::client::ClientTlsConfig;
use seccf_tls::server::ServerTlsConfig;

#[test]
fn server_config_from_toml() {
    let full: ServerTlsConfig = toml::from_str(
        r#"
        cert_file = "/etc/seccf/kmc.pem"
        key_file = "/etc/seccf/kmc.key"
        client_ca_file = "/etc/seccf/naf-ca.pem"
        require_client_cert = true
        "#,
    )
    .unwrap();
    assert_eq!(full.cert_file, PathBuf::from("/etc/seccf/kmc.pem"));
    assert_eq!(full.key_file, PathBuf::from("/etc/seccf/kmc.key"));
    assert_eq!(
        full.client_ca_file,
        Some(PathBuf::from("/etc/seccf/naf-ca.pem"))
    );
    assert!(full.require_client_cert);

    let minimal: ServerTlsConfig =
        toml::from_str("cert_file = \"a.pem\"\nkey_file = \"a.key\"\n").unwrap();
    assert_eq!(minimal.client_ca_file, None);
    assert!(!minimal.require_client_cert);
}

#[test]
fn server_config_rejects_unknown_and_missing_fields() {
    // A typo must not silently turn mutual TLS off.
    let typo = toml::from_str::<ServerTlsConfig>(
        "cert_file = \"a\"\nkey_file = \"b\"\nrequire_client_certs = true\n",
    );
    assert!(typo
        .unwrap_err()
        .to_string()
        .contains("require_client_certs"));
    assert!(toml::from_str::<ServerTlsConfig>("cert_file = \"a\"\n").is_err());
    assert!(toml::from_str::<ServerTlsConfig>(
        "cert_file = \"a\"\nkey_file = \"b\"\nrequire_client_cert = \"yes\"\n"
    )
    .is_err());
}

#[test]
fn client_config_from_toml() {
    let c: ClientTlsConfig = toml::from_str(
        "ca_file = \"ca.pem\"\nclient_cert_file = \"c.pem\"\nclient_key_file = \"c.key\"\n",
    )
    .unwrap();
    assert_eq!(c.ca_file, PathBuf::from("ca.pem"));
    assert_eq!(c.client_cert_file, Some(PathBuf::from("c.pem")));
    assert_eq!(c.client_key_file, Some(PathBuf::from("c.key")));
    let bare: ClientTlsConfig = toml::from_str("ca_file = \"ca.pem\"\n").unwrap();
    assert_eq!(bare.client_cert_file, None);
    assert!(toml::from_str::<ClientTlsConfig>("ca_file = \"x\"\nverify = false\n").is_err());
    assert!(toml::from_str::<ClientTlsConfig>("client_cert_file = \"x\"\n").is_err());
}
