//! The `seccf` binary as an operator runs it: separate processes, real ports,
//! `kill -9`, the CLI tools and the demo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};

const BIN: &str = env!("CARGO_BIN_EXE_seccf");

fn wait_for_file(p: &Path, secs: u64) {
    let start = Instant::now();
    while !p.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // dev.json is written in one go, but give the writer a moment to finish.
    std::thread::sleep(Duration::from_millis(100));
}

fn wait_for_port(addr: &str, secs: u64) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{addr} never accepted connections"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_logged(args: &[&str], log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .unwrap()
}

fn dev_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("dev.json")).unwrap()).unwrap()
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap().to_string()
}

fn zn_client(dev: &serde_json::Value) -> seccf_kmc::zn_client::ZnClient {
    let tls = seccf_tls::client::ClientTlsConfig {
        ca_file: PathBuf::from(s(&dev["ca_cert"])),
        client_cert_file: Some(PathBuf::from(s(&dev["naf_client"]["cert"]))),
        client_key_file: Some(PathBuf::from(s(&dev["naf_client"]["key"]))),
    };
    seccf_kmc::zn_client::ZnClient::new(&s(&dev["kmc"]["zn_url"]), &tls).unwrap()
}

fn assert_no_secret(haystack: &[u8], what: &str, secrets: &[(&str, Vec<u8>)]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for (name, raw) in secrets {
        for form in [
            raw.clone(),
            hex::encode(raw).into_bytes(),
            hex::encode_upper(raw).into_bytes(),
            b64.encode(raw).into_bytes(),
        ] {
            assert!(
                !haystack.windows(form.len()).any(|w| w == form.as_slice()),
                "{name} found in {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_bootstrap_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut dev = spawn_logged(
        &["dev", "--data-dir", d.to_str().unwrap(), "--base-port", "0"],
        &d.join("dev.log"),
    );
    wait_for_file(&d.join("dev.json"), 60);
    let info = dev_json(d);
    let sub = &info["subscriber"];
    let usim_file = PathBuf::from(s(&sub["usim_file"]));
    let card = seccf_uicc::soft::SoftUsim::open(&usim_file, None).unwrap();
    let mut agent = seccf_seca::Agent::new(seccf_uicc::Usim::new(card)).unwrap();
    let ctx = agent.bootstrap(&s(&info["kmc"]["ub_url"])).await.unwrap();
    // The 200 is in: kill the KMC without any chance to flush.
    dev.kill().unwrap();
    dev.wait().unwrap();

    // Restart from the generated config (same store, same ports).
    let mut kmc = spawn_logged(
        &["kmc", "--config", d.join("seccf.toml").to_str().unwrap()],
        &d.join("kmc.log"),
    );
    let zn_addr = s(&info["kmc"]["zn_url"])
        .trim_start_matches("https://")
        .to_string();
    wait_for_port(&zn_addr, 30);
    let naf = NafId::new(
        &s(&info["naf_client"]["fqdn"]),
        UaSecurityProtocolId::HTTP_DIGEST,
    )
    .unwrap();
    let keys = zn_client(&info)
        .bootstrapping_info(&ctx.btid, &naf, false)
        .await
        .expect("the acknowledged B-TID must resolve after kill -9 and restart");
    let ue_key = agent.naf_key(&ctx, &naf).unwrap();
    assert_eq!(keys.me_key, ue_key);

    // Graceful stop on SIGTERM.
    let st = Command::new("kill")
        .args(["-TERM", &kmc.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = kmc.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "KMC did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "KMC exit status after SIGTERM: {status}");

    // No secret in the logs, the audit trail or the store files.
    let k = hex::decode(s(&sub["k"])).unwrap();
    let opc = hex::decode(s(&sub["opc"])).unwrap();
    let m = seccf_gba::Milenage::new(
        seccf_secret::Secret::from_slice(&k).unwrap(),
        seccf_secret::Secret::from_slice(&opc).unwrap(),
    );
    let f = m.f2345(&ctx.rand);
    let ks = seccf_gba::kdf::ks(&f.ck, &f.ik);
    let secrets = [
        ("K", k.clone()),
        ("OPc", opc.clone()),
        ("Ks", ks.expose().to_vec()),
        ("Ks_NAF", ue_key.expose().to_vec()),
    ];
    for file in [
        "dev.log",
        "kmc.log",
        "audit.log",
        "kmc.sqlite",
        "kmc.sqlite-wal",
    ] {
        if let Ok(bytes) = std::fs::read(d.join(file)) {
            assert_no_secret(&bytes, file, &secrets);
        }
    }
    let audit = std::fs::read_to_string(d.join("audit.log")).unwrap();
    assert!(
        audit.contains("zn.key_release"),
        "audit trail records the key release"
    );
    assert!(
        !audit.contains(&s(&sub["impi"])),
        "audit trail hashes identities"
    );
}

#[test]
fn crypto_tools_reproduce_reference_vectors() {
    // TS 35.208 test set 1 (reference/gba.md §1.5).
    let out = Command::new(BIN)
        .args([
            "crypto",
            "milenage",
            "--k",
            "465b5ce8b199b49faa5f0a2ee238a6bc",
            "--op",
            "cdc202d5123e20f62b6d676ac72cb318",
            "--rand",
            "23553cbe9637a89d218ae64dae47bf35",
            "--sqn",
            "ff9bb4d0b607",
            "--amf",
            "b9b9",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["opc"], "cd63cb71954a9f4e48a5994e37a02baf");
    assert_eq!(v["mac_a"], "4a9ffac354dfafb3");
    assert_eq!(v["mac_s"], "01cfaf9ec4e871e9");
    assert_eq!(v["res"], "a54211d5e3ba50bf");
    assert_eq!(v["ck"], "b40ba9a3c58b2a05bbf0d987b21bf8cb");
    assert_eq!(v["ik"], "f769bcd751044604127672711c6d3441");
    assert_eq!(v["ak"], "aa689c648370");
    assert_eq!(v["ak_star"], "451e8beca43b");
    assert_eq!(v["autn"], "55f328b43577b9b94a9ffac354dfafb3");

    // reference/gba.md §10, HTTP digest row, GBA_U.
    let out = Command::new(BIN)
        .args([
            "crypto",
            "naf-key",
            "--ks",
            "b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441",
            "--rand",
            "23553cbe9637a89d218ae64dae47bf35",
            "--impi",
            "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "--naf-fqdn",
            "naf.example.com",
            "--ua-id",
            "0100000002",
            "--gba-u",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["ks_ext_naf"],
        "ae9ecc3c7c17692c1d44d6d68d53a3b1624a706039753ba991e8293f3cfdec08"
    );
    assert_eq!(
        v["ks_int_naf"],
        "0a1506dc49027e4932c767f73fde7d306ef97e37d805539f71182bb6c1b69fd2"
    );

    // Bad input is refused with a message, not a panic.
    let out = Command::new(BIN)
        .args([
            "crypto", "milenage", "--k", "zz", "--opc", "00", "--rand", "00", "--sqn", "00",
            "--amf", "00",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--k"));
}

#[test]
fn demo_passes_every_flow() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        8,
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seca_and_admin_cli_against_dev() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut dev = spawn_logged(
        &["dev", "--data-dir", d.to_str().unwrap(), "--base-port", "0"],
        &d.join("dev.log"),
    );
    wait_for_file(&d.join("dev.json"), 60);
    let info = dev_json(d);
    let usim = s(&info["subscriber"]["usim_file"]);
    let state = d.join("seca-state");
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let base = [
        "seca",
        "--usim",
        usim.as_str(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let ub = s(&info["kmc"]["ub_url"]);
    let boot = run(&[&base[..], &["bootstrap", "--ub-url", ub.as_str()]].concat());
    let btid = s(&boot["btid"]);
    // Without --reveal the key is not printed.
    let hidden = run(&[&base[..], &["naf-key", "--naf-fqdn", "naf.seccf.test"]].concat());
    assert!(hidden.get("key_hex").is_none());
    assert_eq!(s(&hidden["btid"]), btid, "naf-key uses the stored context");
    let shown = run(&[
        &base[..],
        &["naf-key", "--naf-fqdn", "naf.seccf.test", "--reveal"],
    ]
    .concat());
    let naf = NafId::new("naf.seccf.test", UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    let keys = zn_client(&info)
        .bootstrapping_info(&btid, &naf, false)
        .await
        .unwrap();
    assert_eq!(s(&shown["key_hex"]), keys.me_key.reveal_hex().as_str());

    // Admin CLI on the same store while the KMC runs: no secrets in the listing.
    let cfg = d.join("seccf.toml");
    let out = Command::new(BIN)
        .args([
            "admin",
            "--config",
            cfg.to_str().unwrap(),
            "subscriber",
            "list",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&s(&info["subscriber"]["impi"])));
    assert!(!listing.contains(&s(&info["subscriber"]["k"])));
    dev.kill().unwrap();
    let _ = dev.wait();
}

#[test]
fn help_explains_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["kmc", "admin", "seca", "crypto", "dev", "demo"] {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seca_get_and_tunnel_commands_through_the_gateway() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut dev = spawn_logged(
        &["dev", "--data-dir", d.to_str().unwrap(), "--base-port", "0"],
        &d.join("dev.log"),
    );
    wait_for_file(&d.join("dev.json"), 60);
    let info = dev_json(d);
    let usim = s(&info["subscriber"]["usim_file"]);
    let impi = s(&info["subscriber"]["impi"]);
    let ub = s(&info["kmc"]["ub_url"]);
    let ca = s(&info["ca_cert"]);
    let state = d.join("seca-state");
    let base = [
        "seca",
        "--usim",
        usim.as_str(),
        "--state-dir",
        state.to_str().unwrap(),
    ];

    // `seca get` bootstraps on demand and authenticates with PSK-TLS, then with Digest.
    let psk_url = format!("https://{}/cli/psk", s(&info["osg"]["psk_addr"]));
    let digest_url = format!("{}cli/digest", s(&info["osg"]["digest_url"]));
    for (url, method) in [(psk_url, "psk-tls"), (digest_url, "digest")] {
        let out = Command::new(BIN)
            .args(base)
            .args([
                "get",
                url.as_str(),
                "--ca",
                ca.as_str(),
                "--ub-url",
                ub.as_str(),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{url}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with("HTTP 200"), "{text}");
        assert!(
            text.contains(&format!("x-3gpp-asserted-identity: {impi}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("x-seccf-auth-method: {method}")),
            "{text}"
        );
        assert!(text.contains("assertion: verified"), "{text}");
    }

    // `seca tunnel`: a plain local port carried over PSK-TLS to the TCP echo resource.
    let local = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let remote = s(&info["osg"]["tcp_tunnel_addr"]);
    let mut tunnel = spawn_logged(
        &[
            &base[..],
            &[
                "tunnel",
                &local.to_string(),
                remote.as_str(),
                "--naf-fqdn",
                "localhost",
                "--ub-url",
                ub.as_str(),
            ],
        ]
        .concat(),
        &d.join("tunnel.log"),
    );
    wait_for_port(&local.to_string(), 30);
    let tcp = tokio::net::TcpStream::connect(local).await.unwrap();
    let mut stream = tokio::io::BufReader::new(tcp);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_line(&mut line))
        .await
        .expect("greeting through the tunnel")
        .unwrap();
    assert_eq!(
        line,
        format!("seccf tcp echo: identity={impi} method=psk-tls\n")
    );
    stream.get_mut().write_all(b"hello tunnel\n").await.unwrap();
    let mut echo = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, "hello tunnel\n");
    tunnel.kill().unwrap();
    let _ = tunnel.wait();
    dev.kill().unwrap();
    let _ = dev.wait();
}
