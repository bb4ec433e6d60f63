//! CRL checking in real mutual-TLS handshakes: a revoked client certificate is refused,
//! a reloaded CRL changes the verdict, and the OpenSSL command line (an independent
//! implementation) agrees with the CRLs `pki::generate_crl` makes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{peer, serve_once, talk};
use openssl::ssl::{SslConnector, SslVersion};
use seccf_tls::client::{self, ClientTlsConfig};
use seccf_tls::pki::{self, CertifiedKey};
use seccf_tls::revocation;
use seccf_tls::server::ServerTlsConfig;
use seccf_tls::TlsError;

struct Crls {
    dir: tempfile::TempDir,
    ca: CertifiedKey,
    good: CertifiedKey,
    revoked: CertifiedKey,
    other_ca: CertifiedKey,
}

impl Crls {
    fn new() -> Crls {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::generate_ca("seccf CRL test CA", 2).unwrap();
        let server = pki::issue_server_cert(&ca, "osg", &["localhost"], 2).unwrap();
        let good = pki::issue_client_cert(&ca, "good-client", 2).unwrap();
        let revoked = pki::issue_client_cert(&ca, "revoked-client", 2).unwrap();
        let other_ca = pki::generate_ca("unrelated CA", 2).unwrap();
        let c = Crls {
            dir,
            ca,
            good,
            revoked,
            other_ca,
        };
        for (name, ck) in [
            ("ca", &c.ca),
            ("server", &server),
            ("good", &c.good),
            ("revoked", &c.revoked),
        ] {
            pki::write_pem_pair(
                ck,
                &c.p(&format!("{name}.pem")),
                &c.p(&format!("{name}.key")),
            )
            .unwrap();
        }
        c
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_crl(
        &self,
        name: &str,
        issuer: &CertifiedKey,
        revoked: &[&CertifiedKey],
        number: u32,
    ) -> PathBuf {
        let path = self.p(name);
        std::fs::write(
            &path,
            pki::generate_crl(issuer, revoked, number, 7).unwrap(),
        )
        .unwrap();
        path
    }

    fn server_cfg(&self) -> ServerTlsConfig {
        ServerTlsConfig {
            cert_file: self.p("server.pem"),
            key_file: self.p("server.key"),
            client_ca_file: Some(self.p("ca.pem")),
            require_client_cert: true,
        }
    }

    fn connector(&self, leaf: &str, version: SslVersion) -> SslConnector {
        let cfg = ClientTlsConfig {
            ca_file: self.p("ca.pem"),
            client_cert_file: Some(self.p(&format!("{leaf}.pem"))),
            client_key_file: Some(self.p(&format!("{leaf}.key"))),
        };
        let mut b = client::connector_builder(&cfg).ok().unwrap();
        b.set_min_proto_version(Some(version)).unwrap();
        b.set_max_proto_version(Some(version)).unwrap();
        b.build()
    }
}

/// One handshake of `leaf` against a server with `crls`; the server's result.
async fn attempt(
    c: &Crls,
    crls: &[PathBuf],
    leaf: &str,
    version: SslVersion,
) -> Result<String, String> {
    let acceptor = revocation::build_acceptor_with_crls(&c.server_cfg(), crls).unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let client = talk(&c.connector(leaf, version), "localhost", addr).await;
    let server = srv.await.unwrap();
    match server {
        Ok(view) => {
            client.map_err(|e| format!("server accepted but client failed: {e}"))?;
            Ok(view.peer_fingerprint.unwrap_or_default())
        }
        Err(e) => {
            assert!(
                client.is_err(),
                "client succeeded although the server refused"
            );
            Err(e.to_string())
        }
    }
}

#[tokio::test]
async fn revoked_client_is_refused_good_client_is_not() {
    let c = Crls::new();
    let crl = c.write_crl("crl.pem", &c.ca, &[&c.revoked], 1);
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let ok = attempt(&c, std::slice::from_ref(&crl), "good", version).await;
        assert_eq!(ok, Ok(c.good.sha256_fingerprint()), "{version:?}");
        let err = attempt(&c, std::slice::from_ref(&crl), "revoked", version)
            .await
            .unwrap_err();
        assert!(err.contains("revoked"), "{version:?}: {err}");
    }
    // Control: without CRLs the same certificate gets in, so the CRL made the difference.
    let ok = attempt(&c, &[], "revoked", SslVersion::TLS1_3).await;
    assert_eq!(ok, Ok(c.revoked.sha256_fingerprint()));
}

#[tokio::test]
async fn reloading_a_crl_changes_the_verdict() {
    let c = Crls::new();
    // An operator's CRL path; its content is replaced between the two acceptors.
    let path = c.write_crl("current.pem", &c.ca, &[], 1);
    let before = attempt(
        &c,
        std::slice::from_ref(&path),
        "revoked",
        SslVersion::TLS1_3,
    )
    .await;
    assert!(before.is_ok(), "{before:?}");
    c.write_crl("current.pem", &c.ca, &[&c.revoked], 2);
    let after = attempt(
        &c,
        std::slice::from_ref(&path),
        "revoked",
        SslVersion::TLS1_3,
    )
    .await;
    assert!(after.unwrap_err().contains("revoked"));
    // The good client is unaffected by the reload.
    assert!(attempt(&c, &[path], "good", SslVersion::TLS1_3)
        .await
        .is_ok());
}

#[test]
fn bad_crl_files_are_configuration_errors() {
    let c = Crls::new();
    let foreign = c.write_crl("foreign.pem", &c.other_ca, &[], 1);
    let err = revocation::build_acceptor_with_crls(&c.server_cfg(), &[foreign])
        .err()
        .unwrap();
    assert!(
        matches!(&err, TlsError::Config(m) if m.contains("not signed by any CA")),
        "{err}"
    );
    let missing = c.p("missing-crl.pem");
    let err = revocation::build_acceptor_with_crls(&c.server_cfg(), &[missing])
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing-crl.pem"), "{err}");
    std::fs::write(
        c.p("junk.pem"),
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert!(revocation::build_acceptor_with_crls(&c.server_cfg(), &[c.p("junk.pem")]).is_err());
    let mut no_ca = c.server_cfg();
    no_ca.client_ca_file = None;
    no_ca.require_client_cert = false;
    let ok_crl = c.write_crl("ok.pem", &c.ca, &[], 1);
    assert!(revocation::build_acceptor_with_crls(&no_ca, &[ok_crl]).is_err());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `openssl crl` accepts the CRL's signature, lists the revoked serial, and
/// `openssl verify -crl_check` reaches the same verdicts as our handshakes.
#[test]
fn openssl_cli_agrees_with_generated_crl() {
    if !peer::openssl() {
        return;
    }
    let c = Crls::new();
    let crl = c.write_crl("crl.pem", &c.ca, &[&c.revoked], 42);
    let out = Command::new("openssl")
        .args([
            "crl",
            "-in",
            s(&crl),
            "-CAfile",
            s(&c.p("ca.pem")),
            "-noout",
            "-text",
        ])
        .output()
        .unwrap();
    let text = peer::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains(&c.revoked.serial_hex().unwrap()), "{text}");
    assert!(!text.contains(&c.good.serial_hex().unwrap()), "{text}");
    let number = text
        .lines()
        .skip_while(|l| !l.contains("X509v3 CRL Number"))
        .nth(1)
        .map(str::trim);
    assert_eq!(number, Some("42"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");

    let verify = |leaf: &str| {
        Command::new("openssl")
            .args([
                "verify",
                "-crl_check",
                "-CAfile",
                s(&c.p("ca.pem")),
                "-CRLfile",
                s(&crl),
            ])
            .arg(c.p(&format!("{leaf}.pem")))
            .output()
            .unwrap()
    };
    let good = verify("good");
    assert!(good.status.success(), "{}", peer::text(&good));
    let revoked = verify("revoked");
    assert!(!revoked.status.success());
    assert!(
        peer::text(&revoked).contains("certificate revoked"),
        "{}",
        peer::text(&revoked)
    );
}
