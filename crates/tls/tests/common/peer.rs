//! Running external peers (`openssl`, `gnutls-cli`) from tests: availability checks that
//! fail in CI and skip (saying so) elsewhere, and a runner with a hard time limit.

use std::io::{Read as _, Write as _};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when `bin` runs. When it does not: panics if the `CI` environment variable is
/// set (CI installs every peer, so a missing one is a broken pipeline), otherwise prints
/// "SKIPPED: <peer> not installed" and returns false.
pub fn available(bin: &str, version_arg: &str) -> bool {
    let ok = Command::new(bin)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{bin} is not installed, and CI is set: install it (openssl, gnutls-bin)");
        }
        eprintln!("SKIPPED: {bin} not installed");
    }
    ok
}

/// `openssl` is installed (see [`available`]).
pub fn openssl() -> bool {
    available("openssl", "version")
}

/// `gnutls-cli` is installed (see [`available`]).
pub fn gnutls_cli() -> bool {
    available("gnutls-cli", "--version")
}

/// Runs `cmd`, writes `input` to its stdin and keeps stdin open until the child exits
/// (peers like gnutls-cli stop reading the network when their stdin ends), killing it
/// after `limit`. Returns the output and whether it had to be killed.
pub fn run(mut cmd: Command, input: &[u8], limit: Duration) -> (Output, bool) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let mut killed = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    (
        Output {
            status,
            stdout: out_t.join().unwrap(),
            stderr: err_t.join().unwrap(),
        },
        killed,
    )
}

/// Both streams of an output as one lossy string (peers print on either).
pub fn text(o: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A spawned peer process that is killed (by its own handle, so only the process this
/// test started) and reaped when dropped, including when the test panics.
pub struct Killer(pub std::process::Child);

impl Killer {
    /// Kills and reaps the process now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects to 127.0.0.1:`port`, retrying while a just-spawned peer starts listening.
pub async fn connect_retry(port: u16) -> tokio::net::TcpStream {
    let deadline = Instant::now() + super::STEP;
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => {
                panic!("peer on port {port} never listened: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A port that was free a moment ago (bind to 0, read, release), for peers that need a
/// port number on their command line.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
