//! Helpers for the real-peer interop tests of the gateway (`tests/interop_osg.rs`).
//!
//! What is here: spawning the `seccf` binary and external peers (openssl, gnutls-cli,
//! curl) with a timeout on every process, a `seccf dev` environment per test, a real
//! bootstrap and NAF key derivation through the `seccf seca` CLI, a gateway started
//! with a custom `seccf osg --config`, a small test PKI, and parsers for what the
//! echo resource sends back.
//!
//! What is not here: any protocol logic of the product. Digest responses are computed
//! from RFC 7616 with OpenSSL's MD5, and assertions are checked with the public
//! `seccf_osg::verify_assertion` against the key set the gateway publishes.
//!
//! Every spawned process lives in a [`ChildGuard`], which kills it when dropped, so a
//! failing assertion never leaves a server running.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use seccf_tls::pki::{self, CertifiedKey, RevocationPointers};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_seccf");

/// Longest wait for one peer invocation (each test should stay under ~20 s).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(15);

/// Headers a client sends to impersonate someone; the gateway must drop all of them.
/// The values share one marker so a single `contains` finds any that leaked through.
pub const FORGED_HEADERS: &[&str] = &[
    "X-3GPP-Asserted-Identity: forged-by-client@evil.example",
    "X-Seccf-Auth-Method: forged-by-client",
    "X-Seccf-Assertion: forged-by-client.e30.e30",
    "X-Forwarded-For: 203.0.113.66",
    "X-Real-IP: 203.0.113.66",
];

/// Marker present in every forged header value (or the forged address).
pub const FORGED_MARKERS: &[&str] = &["forged-by-client", "203.0.113.66"];

/// The dev gateway's FQDN (keys are derived for it).
pub const OSG_FQDN: &str = "localhost";

/// Ua security protocol ids used by the tests (TS 33.220 Annex H / TS 33.222).
pub mod ua {
    /// TLS 1.2 PSK-AES128-GCM-SHA256 (0x00a8).
    pub const PSK_AES128_GCM_SHA256: &str = "01000100a8";
    /// TLS 1.3 shared-key (external PSK).
    pub const TLS13_PSK: &str = "0100000007";
    /// Digest inside TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 (0xc02b).
    pub const ECDHE_ECDSA_AES128_GCM_SHA256: &str = "010001c02b";
    /// Digest inside TLS 1.3 TLS_AES_128_GCM_SHA256 (0x1301).
    pub const TLS13_AES128_GCM_SHA256: &str = "0100011301";
}

/// Kills and reaps its child when dropped.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `cmd` (panics with the program name when it cannot start).
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        ChildGuard { child }
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// True when `program` is on PATH. When it is not: fails under CI (the peers are part
/// of the CI image), otherwise prints `SKIPPED: <program> not installed`.
pub fn have_peer(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is required under CI but is not installed"
    );
    println!("SKIPPED: {program} not installed");
    false
}

/// What a finished peer printed.
#[derive(Debug)]
pub struct PeerOutput {
    /// Exit status (None when it was killed at the timeout).
    pub status: Option<ExitStatus>,
    /// Whether the timeout fired.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl PeerOutput {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// stdout then stderr, for searching and for failure messages.
    pub fn all(&self) -> String {
        format!("{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// A running external peer with piped stdin/stdout/stderr.
pub struct Peer {
    guard: ChildGuard,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn drain_into(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Ok(mut b) = buf.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        }
    })
}

fn text_of(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    buf.lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Peer {
    /// Starts `cmd` with all three standard streams piped.
    pub fn spawn(cmd: &mut Command) -> Peer {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(cmd);
        let stdin = guard.child.stdin.take();
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(o) = guard.child.stdout.take() {
            readers.push(drain_into(o, out.clone()));
        }
        if let Some(e) = guard.child.stderr.take() {
            readers.push(drain_into(e, err.clone()));
        }
        Peer {
            guard,
            stdin,
            out,
            err,
            readers,
        }
    }

    /// Writes to the peer's stdin. A peer that already quit (handshake refused) makes
    /// this a no-op: the test judges the peer by its output, not by this write.
    pub fn send(&mut self, data: &[u8]) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(data).and_then(|()| s.flush());
        }
    }

    /// Everything printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        text_of(&self.out)
    }

    /// Polls stdout until `pred` holds (true), the peer exits or `timeout` passes
    /// (false in both cases unless `pred` holds on the final output).
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if pred(&self.stdout_text()) {
                return true;
            }
            if self.guard.try_wait().is_some() {
                // Let the reader threads catch the last bytes.
                std::thread::sleep(Duration::from_millis(50));
                return pred(&self.stdout_text());
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the peer to exit by itself, stdin still open (servers that close the
    /// connection end the peer), killing it at `timeout`.
    pub fn wait_exit(mut self, timeout: Duration) -> PeerOutput {
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = self.guard.try_wait() {
                break Some(s);
            }
            if start.elapsed() > timeout {
                timed_out = true;
                let _ = self.guard.child.kill();
                let _ = self.guard.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.collect(status, timed_out)
    }

    /// Closes stdin (EOF), then [`Peer::wait_exit`].
    pub fn close_and_wait(mut self, timeout: Duration) -> PeerOutput {
        self.stdin = None;
        self.wait_exit(timeout)
    }

    /// Kills the peer now and returns what it printed.
    pub fn kill(mut self) -> PeerOutput {
        let _ = self.guard.child.kill();
        let status = self.guard.child.wait().ok();
        self.collect(status, false)
    }

    fn collect(mut self, status: Option<ExitStatus>, timed_out: bool) -> PeerOutput {
        self.stdin = None;
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        PeerOutput {
            status,
            timed_out,
            stdout: text_of(&self.out),
            stderr: text_of(&self.err),
        }
    }
}

/// Runs `cmd` to completion with empty stdin and [`PEER_TIMEOUT`].
pub fn run(cmd: &mut Command) -> PeerOutput {
    Peer::spawn(cmd).close_and_wait(PEER_TIMEOUT)
}

/// Runs `seccf <args>`, requires success, and parses its stdout as JSON.
pub fn seccf_json(args: &[&str]) -> serde_json::Value {
    let out = run(Command::new(BIN).args(args));
    assert!(out.success(), "seccf {args:?} failed:\n{}", out.all());
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("seccf {args:?}: stdout is not JSON ({e}):\n{}", out.all()))
}

/// A free loopback TCP port (bound then released: fine for tests that need to know a
/// port before the server that will use it starts).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Plain `http://host:port/path` GET (HTTP/1.0, so no chunking): status and body,
/// or `None` when the server cannot be reached or answers garbage.
pub fn try_http_get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// [`try_http_get`] that must succeed.
pub fn http_get(url: &str) -> (u16, String) {
    try_http_get(url).unwrap_or_else(|| panic!("GET {url} failed"))
}

/// A `seccf dev` environment in its own temporary directory.
pub struct Dev {
    // Field order matters: the process is killed before its directory is removed.
    _proc: ChildGuard,
    dir: tempfile::TempDir,
    /// dev.json.
    pub info: serde_json::Value,
}

/// A bootstrapping context made by `seccf seca bootstrap` (a real Ub run).
pub struct Boot {
    /// The B-TID.
    pub btid: String,
    /// The subscriber's IMPI.
    pub impi: String,
    /// Its expiry (unix seconds).
    pub expires_at: i64,
    usim: PathBuf,
    state: PathBuf,
}

/// A NAF key printed by `seccf seca naf-key --reveal`.
pub struct NafKey {
    /// Hex (what openssl/gnutls take as `-psk` / `--pskkey`).
    pub hex: String,
    /// Base64 (the Digest password).
    pub b64: String,
}

impl Dev {
    /// Starts `seccf dev --base-port 0` and waits until dev.json is written and the
    /// gateway answers its health check.
    pub fn start() -> Dev {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("dev.log")).expect("dev.log");
        let proc = ChildGuard::spawn(
            Command::new(BIN)
                .args(["dev", "--base-port", "0", "--data-dir"])
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut dev = Dev {
            _proc: proc,
            dir,
            info: serde_json::Value::Null,
        };
        let start = Instant::now();
        // dev.json is written in one go but not renamed into place: retry until it parses.
        dev.info = loop {
            if let Some(v) = std::fs::read(data.join("dev.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                break v;
            }
            if let Some(st) = dev._proc.try_wait() {
                panic!("seccf dev exited ({st}):\n{}", dev.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dev.json never appeared:\n{}",
                dev.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let health = format!("{}/healthz", dev.s("/osg/admin_url"));
        loop {
            if try_http_get(&health).is_some_and(|(code, _)| code == 200) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the dev gateway never became healthy:\n{}",
                dev.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dev
    }

    /// The dev process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    /// A scratch directory for this test (removed with the environment).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A string of dev.json by JSON pointer, e.g. `/osg/psk_addr`.
    pub fn s(&self, pointer: &str) -> String {
        self.info
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("dev.json has no string at {pointer}"))
            .to_string()
    }

    /// The port of a `host:port` or `https://host:port/` entry of dev.json.
    pub fn port(&self, pointer: &str) -> u16 {
        let v = self.s(pointer);
        let hostport = v
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        hostport
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("{pointer} = {v} has no port"))
    }

    /// The CA certificate of every dev server certificate.
    pub fn ca(&self) -> String {
        self.s("/ca_cert")
    }

    /// The gateway's published key set.
    pub fn jwks(&self) -> String {
        let (code, body) = http_get(&self.s("/osg/jwks_url"));
        assert_eq!(code, 200, "JWKS: {body}");
        body
    }

    /// Bootstraps the demo subscriber with `seccf seca bootstrap` (a real Ub run
    /// against the dev KMC).
    pub fn bootstrap(&self) -> Boot {
        let usim = PathBuf::from(self.s("/subscriber/usim_file"));
        self.bootstrap_with(&usim, &self.dir.path().join("seca-demo"))
    }

    /// Bootstraps the subscriber of `usim` with agent state in `state`.
    pub fn bootstrap_with(&self, usim: &Path, state: &Path) -> Boot {
        let ub = self.s("/kmc/ub_url");
        let v = seccf_json(&[
            "seca",
            "--usim",
            path_str(usim),
            "--state-dir",
            path_str(state),
            "bootstrap",
            "--ub-url",
            &ub,
        ]);
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("bootstrap output lacks {k}: {v}"))
                .to_string()
        };
        Boot {
            btid: field("btid"),
            impi: field("impi"),
            expires_at: v["expires_at"].as_i64().unwrap_or(0),
            usim: usim.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    /// Ks_NAF for (`fqdn`, `ua_id`) from the stored context, via `seccf seca naf-key
    /// --reveal` (the terminal-side derivation; the gateway gets its copy over Zn).
    pub fn naf_key(&self, boot: &Boot, fqdn: &str, ua_id: &str) -> NafKey {
        let v = seccf_json(&[
            "seca",
            "--usim",
            path_str(&boot.usim),
            "--state-dir",
            path_str(&boot.state),
            "naf-key",
            "--naf-fqdn",
            fqdn,
            "--ua-id",
            ua_id,
            "--reveal",
        ]);
        assert_eq!(v["btid"].as_str(), Some(boot.btid.as_str()));
        assert_eq!(v["ua_id"].as_str(), Some(ua_id));
        NafKey {
            hex: v["key_hex"].as_str().expect("key_hex").to_string(),
            b64: v["key_base64"].as_str().expect("key_base64").to_string(),
        }
    }
}

/// A path as UTF-8 (temporary directories are).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The values of request header `name` (lowercase) as the echo resource lists them
/// (`name: value` lines).
pub fn echoed_header(text: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// The echo resource's verdict on the assertion (`assertion: …` line).
pub fn echo_verdict(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with("assertion: "))
        .map(|l| l.trim_end_matches('\r').to_string())
}

/// Checks what the resource received behind the gateway: exactly one asserted
/// identity equal to `identity`, method `amr`, the echo's own verdict, no forged
/// header, and the signed assertion verified here independently with the JWKS the
/// gateway publishes (sub, amr, issuer, audience, expiry, B-TID hash).
pub fn check_forwarded(
    text: &str,
    jwks: &str,
    identity: &str,
    amr: &str,
    btid: Option<&str>,
    audience: &str,
) {
    assert_eq!(
        echoed_header(text, "x-3gpp-asserted-identity"),
        vec![identity.to_string()],
        "asserted identity:\n{text}"
    );
    assert_eq!(
        echoed_header(text, "x-seccf-auth-method"),
        vec![amr.to_string()],
        "auth method:\n{text}"
    );
    assert_eq!(
        echo_verdict(text).as_deref(),
        Some(format!("assertion: verified sub={identity} amr={amr}").as_str()),
        "echo verdict:\n{text}"
    );
    for m in FORGED_MARKERS {
        assert!(
            !text.contains(m),
            "client-supplied header ({m}) reached the resource:\n{text}"
        );
    }
    let jwts = echoed_header(text, "x-seccf-assertion");
    assert_eq!(jwts.len(), 1, "one assertion expected:\n{text}");
    let now = seccf_osg::unix_now();
    let claims = seccf_osg::verify_assertion(&jwts[0], jwks, now)
        .unwrap_or_else(|e| panic!("assertion does not verify with the published JWKS: {e}"));
    assert_eq!(claims.sub, identity);
    assert_eq!(claims.amr, vec![amr.to_string()]);
    assert_eq!(claims.iss, format!("https://{OSG_FQDN}"));
    assert_eq!(claims.aud, audience);
    assert!(claims.exp > now && claims.iat <= now + 5, "{claims:?}");
    assert_eq!(
        claims.btid_hash,
        btid.map(seccf_osg::assertion::btid_hash),
        "btid-hash claim"
    );
    // A different key set must not verify it (the check above can fail).
    let other = seccf_osg::assertion::AssertionSigner::generate("https://other", 60)
        .expect("a second signer")
        .jwks_json();
    assert!(seccf_osg::verify_assertion(&jwts[0], &other, now).is_err());
}

/// An HTTP/1.1 request with the forged headers, `Connection: close`.
pub fn forged_request(path: &str, extra: &[&str]) -> String {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: {OSG_FQDN}\r\n");
    for h in FORGED_HEADERS.iter().chain(extra) {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("Connection: close\r\n\r\n");
    r
}

/// The status code curl printed with `-w` (see [`curl`]).
pub fn curl_code(out: &PeerOutput) -> Option<u16> {
    out.stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("HTTP_CODE="))
        .and_then(|c| c.trim().parse().ok())
}

/// Runs curl with a 10 s limit, `-i` and the final status printed as `HTTP_CODE=…`.
pub fn curl(args: &[&str]) -> PeerOutput {
    run(Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "10",
            "-w",
            "\nHTTP_CODE=%{http_code}\n",
        ])
        .args(args))
}

/// `--resolve localhost:PORT:127.0.0.1` (the listeners bind IPv4 loopback only).
pub fn resolve_localhost(port: u16) -> String {
    format!("{OSG_FQDN}:{port}:127.0.0.1")
}

/// Lowercase hex MD5 (Digest's algorithm for GBA, TS 24.109 §5.2).
pub fn md5_hex(data: &str) -> String {
    let d = openssl::hash::hash(openssl::hash::MessageDigest::md5(), data.as_bytes()).expect("MD5");
    hex::encode(d)
}

/// The parameters of a Digest header value (`Digest k="v", k2=token, …`), keys
/// lowercased. Values in this protocol never contain escaped quotes.
pub fn digest_params(value: &str) -> HashMap<String, String> {
    let mut rest = value.trim();
    if rest
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("digest "))
    {
        rest = &rest[7..];
    }
    let mut out = HashMap::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let val;
        if let Some(q) = rest.strip_prefix('"') {
            let Some(end) = q.find('"') else {
                return out;
            };
            val = q[..end].to_string();
            rest = &q[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            val = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.insert(key, val);
    }
}

/// The value of the first header `name` (case-insensitive) in `text` (`Name: value`
/// lines, as curl -i / -v and openssl s_client print them; curl -v prefixes `> `).
pub fn header_line(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim_start_matches("> ").trim_end_matches('\r');
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The status codes of every HTTP response head in `text`, in order.
pub fn status_codes(text: &str) -> Vec<u16> {
    text.lines()
        .filter(|l| l.starts_with("HTTP/"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// The gateway's Prometheus text (admin listener of dev.json).
pub fn osg_metrics(dev: &Dev) -> String {
    let (code, body) = http_get(&format!("{}/metrics", dev.s("/osg/admin_url")));
    assert_eq!(code, 200);
    body
}

/// The fields of a Digest answer (RFC 7616 §3.4, qop=auth, MD5).
pub struct DigestAnswer<'a> {
    /// User name (the B-TID).
    pub username: &'a str,
    /// Password (base64 of Ks_NAF).
    pub password: &'a str,
    /// Realm from the challenge.
    pub realm: &'a str,
    /// Nonce from the challenge.
    pub nonce: &'a str,
    /// Opaque from the challenge.
    pub opaque: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Request target.
    pub uri: &'a str,
    /// Nonce count.
    pub nc: u32,
    /// Client nonce.
    pub cnonce: &'a str,
}

impl DigestAnswer<'_> {
    /// The `Authorization` header value, computed here from RFC 7616 (independent of
    /// the product's Digest code).
    pub fn header_value(&self) -> String {
        let ha1 = md5_hex(&format!(
            "{}:{}:{}",
            self.username, self.realm, self.password
        ));
        let ha2 = md5_hex(&format!("{}:{}", self.method, self.uri));
        let nc = format!("{:08x}", self.nc);
        let response = md5_hex(&format!(
            "{ha1}:{}:{nc}:{}:auth:{ha2}",
            self.nonce, self.cnonce
        ));
        format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{}\", response=\"{response}\", opaque=\"{}\"",
            self.username, self.realm, self.nonce, self.uri, self.cnonce, self.opaque
        )
    }
}

/// A small PKI for gateways started with a custom configuration: a CA, a server
/// certificate for `localhost`/127.0.0.1, client certificates, CRLs and an OCSP
/// responder certificate, all as files in `dir`.
pub struct TestPki {
    dir: PathBuf,
    ca: CertifiedKey,
    /// CA certificate file.
    pub ca_pem: PathBuf,
    /// Server certificate file.
    pub server_cert: PathBuf,
    /// Server key file.
    pub server_key: PathBuf,
}

/// A client certificate of a [`TestPki`].
pub struct TestClient {
    /// Certificate and key.
    pub ck: CertifiedKey,
    /// Certificate file.
    pub cert: PathBuf,
    /// Key file.
    pub key: PathBuf,
}

impl TestPki {
    /// Generates the CA and the server certificate under `dir`.
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca = pki::generate_ca("seccf interop test CA", 30).expect("CA");
        let ca_pem = dir.join("ca.pem");
        pki::write_pem_pair(&ca, &ca_pem, &dir.join("ca.key")).expect("writing the CA");
        let server = pki::issue_server_cert(&ca, "interop gateway", &[OSG_FQDN, "127.0.0.1"], 30)
            .expect("server cert");
        let server_cert = dir.join("server.pem");
        let server_key = dir.join("server.key");
        pki::write_pem_pair(&server, &server_cert, &server_key).expect("writing the server cert");
        TestPki {
            dir: dir.to_path_buf(),
            ca,
            ca_pem,
            server_cert,
            server_key,
        }
    }

    /// A clientAuth certificate with CN `cn`, naming `ocsp_url` in its AIA when given.
    pub fn client(&self, cn: &str, ocsp_url: Option<&str>) -> TestClient {
        let ck = pki::issue_client_cert_with(
            &self.ca,
            cn,
            30,
            &RevocationPointers {
                ocsp_url,
                crl_url: None,
            },
        )
        .expect("client cert");
        let cert = self.dir.join(format!("{cn}.pem"));
        let key = self.dir.join(format!("{cn}.key"));
        pki::write_pem_pair(&ck, &cert, &key).expect("writing the client cert");
        TestClient { ck, cert, key }
    }

    /// What the OCSP responder logged (for failure messages).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("ocsp.log")).unwrap_or_default()
    }

    /// A CRL file revoking `revoked`.
    pub fn crl(&self, revoked: &[&TestClient]) -> PathBuf {
        let list: Vec<&CertifiedKey> = revoked.iter().map(|c| &c.ck).collect();
        let pem = pki::generate_crl(&self.ca, &list, 1, 7).expect("CRL");
        let path = self.dir.join("crl.pem");
        std::fs::write(&path, pem).expect("writing the CRL");
        path
    }

    /// Starts `openssl ocsp` on 127.0.0.1:`port` answering for this CA from an index
    /// file (`good` valid, `revoked` revoked), signing with a delegated responder
    /// certificate.
    pub fn ocsp_responder(
        &self,
        port: u16,
        good: &[&TestClient],
        revoked: &[&TestClient],
    ) -> ChildGuard {
        let responder = pki::issue_ocsp_responder_cert(&self.ca, "interop OCSP responder", 30)
            .expect("responder cert");
        let rcert = self.dir.join("ocsp.pem");
        let rkey = self.dir.join("ocsp.key");
        pki::write_pem_pair(&responder, &rcert, &rkey).expect("writing the responder cert");
        // OpenSSL CA database format: status, expiry, revocation[,reason], serial, file, DN.
        let mut index = String::new();
        for (status, list) in [("V", good), ("R", revoked)] {
            for c in list.iter() {
                let serial = c.ck.serial_hex().expect("serial");
                let revocation = if status == "R" {
                    "260101000000Z,keyCompromise"
                } else {
                    ""
                };
                index.push_str(&format!(
                    "{status}\t491231235959Z\t{revocation}\t{serial}\tunknown\t/CN=client-{serial}\n"
                ));
            }
        }
        let idx = self.dir.join("index.txt");
        std::fs::write(&idx, index).expect("writing the OCSP index");
        let log = std::fs::File::create(self.dir.join("ocsp.log")).expect("ocsp.log");
        let guard = ChildGuard::spawn(
            Command::new("openssl")
                .arg("ocsp")
                .arg("-index")
                .arg(&idx)
                .args(["-port", &port.to_string()])
                .arg("-rsigner")
                .arg(&rcert)
                .arg("-rkey")
                .arg(&rkey)
                .arg("-CA")
                .arg(&self.ca_pem)
                .args(["-ndays", "1", "-ignore_err"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log),
        );
        // Wait for its "ACCEPT" line rather than probing the port: `openssl ocsp` (3.0)
        // serves one connection at a time and stalls on a connection that closes
        // without sending a request.
        let start = Instant::now();
        while !self.logs().contains("ACCEPT") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "openssl ocsp did not start:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        guard
    }
}

/// A gateway run as `seccf osg --config FILE` (JSON logs in a file, from which the
/// bound addresses of `listen = "127.0.0.1:0"` listeners are read).
pub struct CustomOsg {
    _proc: ChildGuard,
    log: PathBuf,
    /// Listener name (and `admin`) → bound address.
    pub addrs: HashMap<String, SocketAddr>,
}

impl CustomOsg {
    /// Writes `config` to `dir/osg.toml`, starts the gateway and waits until every
    /// listener of `names` has logged its address.
    pub fn start(dir: &Path, config: &str, names: &[&str]) -> CustomOsg {
        let cfg = dir.join("osg.toml");
        std::fs::write(&cfg, config).expect("writing osg.toml");
        let log = dir.join("osg.log");
        let f = std::fs::File::create(&log).expect("osg.log");
        let mut proc = ChildGuard::spawn(
            Command::new(BIN)
                .args(["osg", "--config"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(f),
        );
        let start = Instant::now();
        let addrs = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let mut addrs = HashMap::new();
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let f = &v["fields"];
                if f["message"] == "OSG listening" {
                    if let (Some(n), Some(a)) = (f["listener"].as_str(), f["addr"].as_str()) {
                        if let Ok(a) = a.parse() {
                            addrs.insert(n.to_string(), a);
                        }
                    }
                }
            }
            if names.iter().all(|n| addrs.contains_key(*n)) {
                break addrs;
            }
            if let Some(st) = proc.try_wait() {
                panic!("seccf osg exited ({st}):\n{text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "seccf osg never logged its listeners:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        CustomOsg {
            _proc: proc,
            log,
            addrs,
        }
    }

    /// The port of listener `name`.
    pub fn port(&self, name: &str) -> u16 {
        self.addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
            .port()
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The `[osg]` head of a custom configuration: the dev KMC over Zn (with the dev NAF
/// client certificate) and JSON logs, so that [`CustomOsg`] can read the addresses.
pub fn osg_config_head(dev: &Dev) -> String {
    format!(
        r#"[log]
format = "json"
level = "info"

[osg]
fqdn = "{OSG_FQDN}"
shutdown_grace_secs = 1
[osg.kmc]
url = "{zn}"
tls = {{ ca_file = '{ca}', client_cert_file = '{cert}', client_key_file = '{key}' }}
"#,
        zn = dev.s("/kmc/zn_url"),
        ca = dev.ca(),
        cert = dev.s("/naf_client/cert"),
        key = dev.s("/naf_client/key"),
    )
}

/// One mutual-TLS HTTPS listener in front of the dev echo resource; `extra_tls` is
/// appended inside its `tls = { … }` table.
pub fn mtls_listener(dev: &Dev, name: &str, pki: &TestPki, extra_tls: &str) -> String {
    format!(
        r#"
[[osg.listener]]
name = "{name}"
listen = "127.0.0.1:0"
kind = "https"
auth = ["mtls"]
tls = {{ cert_file = '{cert}', key_file = '{key}', client_ca_file = '{ca}'{extra_tls} }}
upstream = "http://{echo}"
"#,
        cert = path_str(&pki.server_cert),
        key = path_str(&pki.server_key),
        ca = path_str(&pki.ca_pem),
        echo = dev.s("/osg/echo_http_addr"),
    )
}

/// curl with a client certificate of `pki` to listener `port` of a custom gateway,
/// with `extra` arguments before the URL.
pub fn curl_with_cert(
    pki: &TestPki,
    client: &TestClient,
    port: u16,
    path: &str,
    extra: &[&str],
) -> PeerOutput {
    let resolve = resolve_localhost(port);
    let url = format!("https://{OSG_FQDN}:{port}{path}");
    let mut args = vec![
        "--cacert",
        path_str(&pki.ca_pem),
        "--resolve",
        &resolve,
        "--cert",
        path_str(&client.cert),
        "--key",
        path_str(&client.key),
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}
