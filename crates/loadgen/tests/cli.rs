//! The `seccf-load` command line: the subcommands that need no running KMC or
//! gateway (`compare`, `report`, `free-ports`, `upstream`) and the refusals that must
//! happen before any load is generated.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_seccf-load");

fn testdata(name: &str) -> String {
    format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_takes_medians_and_pairs_rounds() {
    let (ok, out, err) = run(&["compare", &testdata("gateway-results.jsonl")]);
    assert!(ok, "{err}");
    // Handshakes: OSG 2061.303 and 1825.094 → median 1943.2; stunnel 1395.027 and
    // 1326.908 → 1361.0; ratio 1.428; per round 1.478 and 1.375.
    assert!(
        out.contains("| New PSK-TLS tunnels (handshakes/s) | TLSv1.3 | osg | 1943 handshakes/s | stunnel | 1361 handshakes/s | **1.43** | 1.38–1.48 (2 rounds) | ≥ 1.00 | yes |"),
        "{out}"
    );
    // Bulk: OSG 308.04 and 332.45 MB/s → 320.2; stunnel 362.87 and 447.96 → 405.4;
    // ratio 0.790 (below the target of 1); per round 0.849 and 0.742.
    assert!(
        out.contains("| Bulk through a PSK-TLS tunnel (MB/s each way) | TLSv1.3 | osg | 320 MB/s | stunnel | 405 MB/s | **0.79** | 0.74–0.85 (2 rounds) | ≥ 1.00 | **no** |"),
        "{out}"
    );
    // Keep-alive: 18990.36 / 16423.79 = 1.156 against a target of 0.8.
    assert!(
        out.contains("| osg-psk | 18990 requests/s | nginx-sha1 | 16424 requests/s | **1.16** | 1.16 (1 round) | ≥ 0.80 | yes |"),
        "{out}"
    );
    // Gateway CPU per operation: 2.61 CPU-s over 75985 requests = 0.034 ms.
    assert!(out.contains("| 0.034 / 0.030 |"), "{out}");
    // The detail table has one row per run.
    assert_eq!(out.matches("| tls-handshake |").count(), 4, "{out}");
}

#[test]
fn report_still_renders_kmc_and_gateway_lines() {
    let (ok, out, err) = run(&["report", &testdata("gateway-results.jsonl")]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2 + 10, "{out}");
}

#[test]
fn free_ports_prints_distinct_ports() {
    let (ok, out, err) = run(&["free-ports", "--count", "4"]);
    assert!(ok, "{err}");
    let mut ports: Vec<u16> = out.lines().map(|l| l.parse().expect("port")).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4);
}

#[test]
fn load_is_only_aimed_at_loopback() {
    for target in ["10.1.2.3:443", "0.0.0.0:443", "example.org:443"] {
        let (ok, _, err) = run(&[
            "tls-handshake",
            "--target",
            "osg",
            "--addr",
            target,
            "--keys",
            "/nonexistent",
        ]);
        assert!(!ok, "{target} accepted");
        assert!(err.contains("--addr"), "{err}");
    }
    let (ok, _, err) = run(&["upstream", "--http-listen", "192.0.2.1:80"]);
    assert!(!ok);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn a_missing_key_file_fails_before_any_load() {
    let (ok, _, err) = run(&[
        "https-keepalive",
        "--target",
        "osg-psk",
        "--addr",
        "127.0.0.1:9",
        "--keys",
        "/nonexistent/keys.json",
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/keys.json"), "{err}");
}

/// Kills the upstream when the test ends, pass or fail.
struct Upstream(Child);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn upstream_answers_fixed_bodies_and_echoes() {
    let child = Command::new(BIN)
        .args([
            "upstream",
            "--http-listen",
            "127.0.0.1:0",
            "--tcp-listen",
            "127.0.0.1:0",
            "--body-bytes",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut up = Upstream(child);
    let mut lines = BufReader::new(up.0.stdout.take().expect("stdout")).lines();
    let mut addr_of = |scheme: &str| {
        let line = lines.next().expect("a line").expect("text");
        let start = line.find(scheme).expect("address") + scheme.len();
        line[start..]
            .split_whitespace()
            .next()
            .expect("addr")
            .to_string()
    };
    let http = addr_of("http://");
    let tcp = addr_of("tcp://");

    // Two requests on one connection: keep-alive works and the body is fixed.
    let mut s = TcpStream::connect(&http).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for _ in 0..2 {
        s.write_all(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut buf = vec![0u8; 4096];
        let mut got: Vec<u8> = Vec::new();
        // Until the head and the 100 body bytes are in.
        let head_end = |g: &[u8]| g.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        while head_end(&got).map_or(true, |h| got.len() < h + 100) {
            let n = s.read(&mut buf).expect("response");
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        assert!(text.contains("x-seccf-load-upstream: 100"), "{text}");
        assert!(text.contains("content-length: 100"), "{text}");
    }

    // The echo returns exactly what it gets.
    let mut e = TcpStream::connect(&tcp).expect("connect");
    e.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    e.write_all(b"\0ping").expect("write");
    let mut back = [0u8; 5];
    e.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"\0ping");
}
