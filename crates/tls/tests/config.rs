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

#[test]
fn psk_configs_from_toml() {
    use seccf_tls::psk::{
        PskClientConfig, PskServerConfig, PskTlsVersion, DEFAULT_TLS12_PSK_CIPHERS,
    };

    let server: PskServerConfig = toml::from_str(
        r#"
        identity_hint = "3GPP-bootstrapping"
        allow_psk_ke_without_dhe = true
        certificate = ["/etc/seccf/osg.pem", "/etc/seccf/osg.key"]
        "#,
    )
    .unwrap();
    assert_eq!(server.identity_hint.as_deref(), Some("3GPP-bootstrapping"));
    assert!(server.allow_psk_ke_without_dhe);
    assert!(server.enable_tls13, "default kept");
    assert_eq!(server.tls12_ciphers, DEFAULT_TLS12_PSK_CIPHERS);
    assert_eq!(
        server.certificate,
        Some((
            PathBuf::from("/etc/seccf/osg.pem"),
            PathBuf::from("/etc/seccf/osg.key")
        ))
    );
    assert_eq!(
        toml::from_str::<PskServerConfig>("").unwrap(),
        PskServerConfig::default()
    );
    assert!(toml::from_str::<PskServerConfig>("identity = \"x\"").is_err());

    let client: PskClientConfig =
        toml::from_str("max_version = \"1.2\"\nserver_ca_file = \"/etc/ca.pem\"").unwrap();
    assert_eq!(client.max_version, Some(PskTlsVersion::Tls12));
    assert_eq!(client.server_ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(toml::from_str::<PskClientConfig>("max_version = \"1.1\"").is_err());
}
