//! Routes on HTTPS listeners over real sockets (real KMC, bootstrapped terminals, two
//! echo upstreams that answer with what they received, tagged "1" and "2"): path and
//! host selection, per-route upstreams, allow lists, USS flags, accepted methods,
//! identity forwarding, body limits, timeouts, 404 and refused paths.

mod common;

use std::time::{Duration, Instant};

use common::*;
use seccf_digest::{answer, Qop};
use seccf_gba::naf::UaSecurityProtocolId;
use seccf_osg::principal::{ASSERTED_IDENTITY, ASSERTION, AUTH_METHOD};
use seccf_osg::verify_assertion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GBA_UA: (&str, &str) = ("user-agent", "seccf-test 3gpp-gba");
const ALICE: &str = "sip:alice@osg.test";

/// A psk+digest listener fronting two enablers by path and by host, a digest-only
/// listener with a single route (everything else is 404), and a digest+mtls listener
/// whose routes pick the accepted method.
const ROUTED: &str = r#"
[[osg.listener]]
name = "routed"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = { cert_file = "{srv_cert}", key_file = "{srv_key}" }
limits = { upstream_timeout_secs = 5, tls_handshake_timeout_secs = 3 }
[[osg.listener.route]]
name = "open"
path_prefix = "/"
upstream = "http://{up1}"
[[osg.listener.route]]
name = "vip"
path_prefix = "/vip"
upstream = "http://{up2}"
allow = ["sip:alice@osg.test"]
[[osg.listener.route]]
name = "flagged"
path_prefix = "/flagged/"
upstream = "http://{up2}"
required_flags = [7]
[[osg.listener.route]]
name = "psk-only"
path_prefix = "/psk"
upstream = "http://{up2}"
auth = ["psk"]
[[osg.listener.route]]
name = "digest-only"
path_prefix = "/digest"
upstream = "http://{up1}"
auth = ["digest"]
[[osg.listener.route]]
name = "enabler2"
host = "enabler2.osg.test"
path_prefix = "/"
upstream = "http://{up2}"
forward_identity = false
[[osg.listener.route]]
name = "small"
path_prefix = "/small"
upstream = "http://{up1}"
max_body_bytes = 16
[[osg.listener.route]]
name = "quick"
path_prefix = "/quick"
upstream = "http://{up1}"
upstream_timeout_secs = 1

[[osg.listener]]
name = "strict"
listen = "127.0.0.1:0"
kind = "https"
auth = ["digest"]
tls = { cert_file = "{srv_cert}", key_file = "{srv_key}" }
upstream = "http://{up2}"
[[osg.listener.route]]
name = "api"
path_prefix = "/api"

[[osg.listener]]
name = "certs"
listen = "127.0.0.1:0"
kind = "https"
auth = ["digest", "mtls"]
tls = { cert_file = "{srv_cert}", key_file = "{srv_key}", client_ca_file = "{ca}" }
[[osg.listener.route]]
name = "mtls-only"
path_prefix = "/certs"
upstream = "http://{up2}"
auth = ["mtls"]
allow = ["client-1"]
[[osg.listener.route]]
name = "digest-only"
path_prefix = "/digest"
upstream = "http://{up2}"
auth = ["digest"]
[[osg.listener.route]]
name = "any"
path_prefix = "/"
upstream = "http://{up1}"
[[osg.listener.route]]
name = "certs2"
host = "certs2.osg.test"
path_prefix = "/"
upstream = "http://{up2}"
"#;

async fn env() -> Env {
    Env::start_with(Options {
        extra_listeners: ROUTED.to_string(),
        ..Options::default()
    })
    .await
}

async fn alice(env: &Env) -> Terminal {
    env.terminal_with(Some(seccf_store::UserSecuritySettings {
        public_ids: vec![ALICE.into()],
        flags: vec!["7".into()],
        naf_groups: vec![],
    }))
    .await
}

fn digest_auth(
    ch: &seccf_digest::Challenge,
    t: &Terminal,
    suite: u16,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let pw = t.digest_password(UaSecurityProtocolId::tls_3gpp(suite));
    answer(
        ch,
        &t.btid,
        &pw,
        method,
        uri,
        Some(Qop::Auth),
        nc,
        "0a4f113b",
        b"",
    )
    .unwrap()
    .to_header_value()
}

fn route_metric(listener: &str, route: &str, result: &str) -> String {
    format!(
        "seccf_osg_route_requests_total{{listener=\"{listener}\",route=\"{route}\",result=\"{result}\"}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_with_their_own_upstreams_allow_lists_and_flags() {
    let env = env().await;
    let alice = alice(&env).await;
    let bob = env.terminal().await;
    let addr = env.addr("routed");

    let c = env.psk_connector(&alice, None, None, false);
    let mut s = h1(psk_connect(addr, &c).await.unwrap()).await;
    // "/" goes to upstream 1, with the identity.
    let r = send(&mut s, "GET", "/x?q=1", &[], b"").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["upstream"], "1");
    assert_eq!(j["uri"], "/x?q=1");
    assert_eq!(j["headers"][ASSERTED_IDENTITY], ALICE);
    // The token of one connection names the upstream of each route.
    let tok1 = j["headers"][ASSERTION].as_str().unwrap().to_string();
    let claims = verify_assertion(&tok1, &env.jwks, seccf_osg::unix_now()).unwrap();
    assert_eq!(claims.aud, env.upstream_authority(1));
    // "/vip…" goes to upstream 2 and lets alice in.
    let r = send(&mut s, "GET", "/vip/page", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "2");
    let tok2 = r.json()["headers"][ASSERTION].as_str().unwrap().to_string();
    let claims = verify_assertion(&tok2, &env.jwks, seccf_osg::unix_now()).unwrap();
    assert_eq!(claims.aud, env.upstream_authority(2));
    // "/vipx" is not under "/vip": the open route.
    let r = send(&mut s, "GET", "/vipx", &[], b"").await;
    assert_eq!(r.json()["upstream"], "1");
    // Alice has USS flag 7.
    let r = send(&mut s, "GET", "/flagged/a", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "2");

    // Bob: the open route yes, the allow list and the flag no — on one connection.
    let c = env.psk_connector(&bob, None, None, false);
    let mut s = h1(psk_connect(addr, &c).await.unwrap()).await;
    let before = env.upstream2_seen.lock().await.len();
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 200);
    let r = send(&mut s, "GET", "/vip", &[], b"").await;
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("not_allowed"));
    let r = send(&mut s, "GET", "/flagged/a", &[], b"").await;
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("missing_flag"));
    assert_eq!(
        env.upstream2_seen.lock().await.len(),
        before,
        "refused requests never reach upstream 2"
    );
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 200);

    assert!(
        env.metric(&route_metric("routed", "vip", "forwarded"))
            .await
            >= 1.0
    );
    assert!(
        env.metric(&route_metric("routed", "vip", "not_allowed"))
            .await
            >= 1.0
    );
    assert!(
        env.metric(&route_metric("routed", "flagged", "missing_flag"))
            .await
            >= 1.0
    );
    assert!(
        env.metric(&route_metric("routed", "open", "forwarded"))
            .await
            >= 3.0
    );
    assert!(
        env.metric(
            "seccf_osg_route_upstream_latency_seconds_count{listener=\"routed\",route=\"vip\"}"
        )
        .await
            >= 1.0
    );
    // The listener-level families keep their labels.
    assert!(
        env.metric(
            "seccf_osg_auth_decisions_total{listener=\"routed\",method=\"psk-tls\",result=\"not_allowed\"}"
        )
        .await
            >= 1.0
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_route_without_identity_forwarding() {
    let env = env().await;
    let alice = alice(&env).await;
    let c = env.psk_connector(&alice, None, None, false);
    let mut s = h1(psk_connect(env.addr("routed"), &c).await.unwrap()).await;
    for host in [
        "enabler2.osg.test",
        "ENABLER2.osg.test:443",
        "enabler2.osg.test.",
    ] {
        let r = send(
            &mut s,
            "GET",
            "/vip/x",
            &[
                ("host", host),
                ("x-3gpp-asserted-identity", "sip:admin@evil"),
                ("x-seccf-auth-method", "mtls"),
            ],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{host}");
        let j = r.json();
        // Host routes win over the longer host-less "/vip" prefix.
        assert_eq!(j["upstream"], "2", "{host}");
        let h = &j["headers"];
        assert_eq!(h["host"], host);
        // forward_identity = false: client claims stripped, none added…
        for n in [ASSERTED_IDENTITY, AUTH_METHOD, ASSERTION] {
            assert!(h.get(n).is_none(), "{n} at the upstream: {j}");
        }
        // …but the client address is still forwarded.
        assert!(h["x-forwarded-for"].as_str().unwrap().starts_with("127."));
        assert!(h["forwarded"].as_str().unwrap().contains("proto=https"));
    }
    // Another name: the host-less routes.
    let r = send(&mut s, "GET", "/", &[("host", "other.osg.test")], b"").await;
    assert_eq!(r.json()["upstream"], "1");
    assert_eq!(r.json()["headers"][ASSERTED_IDENTITY], ALICE);
    // HTTP/1.1 absolute-form naming another host than Host: refused.
    let mut raw = psk_connect(env.addr("routed"), &c).await.unwrap();
    raw.write_all(
        b"GET http://enabler2.osg.test/ HTTP/1.1\r\nHost: naf.osg.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(env.metric(&route_metric("routed", "-", "bad_host")).await >= 1.0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_only_and_digest_only_routes_on_a_psk_and_digest_listener() {
    let env = env().await;
    let t = env.terminal().await;
    let addr = env.addr("routed");

    // A PSK connection: fine on the psk route; the digest route challenges it.
    let c = env.psk_connector(&t, None, None, false);
    let stream = psk_connect(addr, &c).await.unwrap();
    let psk_suite = suite_of(&stream);
    let mut s = h1(stream).await;
    let r = send(&mut s, "GET", "/psk/a", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"][AUTH_METHOD], "psk-tls");
    let r = send(&mut s, "GET", "/digest/a", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    let ch = gba_challenge(&r);
    // Answering it authenticates the request by Digest (NAF_Id with the PSK suite).
    let auth = digest_auth(&ch, &t, psk_suite, "GET", "/digest/a", 1);
    let r = send(
        &mut s,
        "GET",
        "/digest/a",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"][AUTH_METHOD], "digest");

    // A certificate-only connection: Digest on the digest route and on routes that
    // accept everything; the psk route refuses it with 403 (no challenge to offer).
    let stream = tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap();
    let suite = suite_of(&stream);
    let mut s = h1(stream).await;
    let r = send(&mut s, "GET", "/psk/a", &[GBA_UA], b"").await;
    assert_eq!(r.status, 403);
    assert!(r.all("www-authenticate").is_empty());
    let r = send(&mut s, "GET", "/digest/b", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    let ch = gba_challenge(&r);
    let auth = digest_auth(&ch, &t, suite, "GET", "/digest/b", 1);
    let r = send(
        &mut s,
        "GET",
        "/digest/b",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["upstream"], "1");
    assert_eq!(j["headers"][AUTH_METHOD], "digest");
    assert_eq!(j["headers"][ASSERTED_IDENTITY], t.impi.as_str());
    let auth = digest_auth(&ch, &t, suite, "GET", "/elsewhere", 2);
    let r = send(
        &mut s,
        "GET",
        "/elsewhere",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        env.metric(&route_metric("routed", "psk-only", "method_not_accepted"))
            .await
            >= 1.0
    );
    assert!(
        env.metric(&route_metric("routed", "digest-only", "unauthenticated"))
            .await
            >= 2.0
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_accepting_only_mtls_on_a_digest_and_mtls_listener() {
    let env = env().await;
    let t = env.terminal().await;
    let addr = env.addr("certs");
    // client-1: allowed on the mtls route, and on the route that accepts all.
    let mut s = h1(tls_connect(addr, &env.connector(Some("client-1"), false))
        .await
        .unwrap())
    .await;
    let r = send(&mut s, "GET", "/certs/x", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "2");
    assert_eq!(r.json()["headers"][ASSERTED_IDENTITY], "client-1");
    assert_eq!(r.json()["headers"][AUTH_METHOD], "mtls");
    let r = send(&mut s, "GET", "/", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["upstream"], "1");
    // A certificate is not accepted on the digest route: a challenge instead.
    let r = send(&mut s, "GET", "/digest", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    gba_challenge(&r);
    // client-2: valid certificate, not in the route's allow list.
    let mut s = h1(tls_connect(addr, &env.connector(Some("client-2"), false))
        .await
        .unwrap())
    .await;
    assert_eq!(send(&mut s, "GET", "/certs/x", &[], b"").await.status, 403);
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 200);
    // No certificate: 403 on the mtls route, Digest elsewhere.
    let stream = tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap();
    let suite = suite_of(&stream);
    let mut s = h1(stream).await;
    let r = send(&mut s, "GET", "/certs/x", &[GBA_UA], b"").await;
    assert_eq!(r.status, 403);
    let r = send(&mut s, "GET", "/page", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    let ch = gba_challenge(&r);
    let auth = digest_auth(&ch, &t, suite, "GET", "/page", 1);
    let r = send(
        &mut s,
        "GET",
        "/page",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"][AUTH_METHOD], "digest");
    // Digest credentials do not open the mtls route either.
    let auth = digest_auth(&ch, &t, suite, "GET", "/certs/x", 2);
    let r = send(
        &mut s,
        "GET",
        "/certs/x",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);

    // HTTP/2: routed by :authority, which is also the Host the upstream sees.
    let cfg = seccf_tls::client::ClientTlsConfig {
        ca_file: env.ca_file.clone(),
        client_cert_file: Some(env.path("client-1.pem")),
        client_key_file: Some(env.path("client-1.key")),
    };
    let mut b = seccf_tls::client::connector_builder(&cfg).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    let stream = tls_connect(addr, &b.build()).await.unwrap();
    assert_eq!(stream.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for (authority, upstream) in [("certs2.osg.test", "2"), (NAF_FQDN, "1")] {
        let req = http::Request::get(format!("https://{authority}/h2"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = h2.send_request(req).await.unwrap();
        assert_eq!(r.status(), 200, "{authority}");
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(j["upstream"], upstream, "{authority}");
        assert_eq!(j["headers"]["host"], authority);
        assert_eq!(j["headers"][ASSERTED_IDENTITY], "client-1");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_route_body_limit_and_timeout() {
    let env = env().await;
    let t = env.terminal().await;
    let c = env.psk_connector(&t, None, None, false);
    let mut s = h1(psk_connect(env.addr("routed"), &c).await.unwrap()).await;
    // max_body_bytes = 16 on "/small"; the listener's 1 MiB elsewhere.
    let r = send(&mut s, "POST", "/small", &[], &[b'x'; 16]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "x".repeat(16));
    let r = send(&mut s, "POST", "/small", &[], &[b'x'; 17]).await;
    assert_eq!(r.status, 413);
    let mut s = h1(psk_connect(env.addr("routed"), &c).await.unwrap()).await;
    let r = send(&mut s, "POST", "/big", &[], &[b'y'; 4096]).await;
    assert_eq!(r.status, 200);
    // upstream_timeout_secs = 1 on "/quick": the 1.5 s upstream is too slow there…
    let start = Instant::now();
    let r = send(&mut s, "GET", "/quick/slow", &[], b"").await;
    assert_eq!(r.status, 504);
    // (A 504 at all means the gateway gave up before the upstream's 1.5 s answer.)
    assert!(start.elapsed() >= Duration::from_millis(900));
    // …and fine under the listener's 5 s.
    let r = send(&mut s, "GET", "/other/slow", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(
        env.metric(&route_metric("routed", "small", "body_too_large"))
            .await
            >= 1.0
    );
    assert!(
        env.metric(&route_metric("routed", "quick", "upstream_timeout"))
            .await
            >= 1.0
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_404_and_unsafe_paths_are_400() {
    let env = env().await;
    let t = env.terminal().await;
    let stream = tls_connect(env.addr("strict"), &env.connector(None, false))
        .await
        .unwrap();
    let suite = suite_of(&stream);
    let mut s = h1(stream).await;
    // Before any authentication: 404 for paths no route takes.
    for p in ["/", "/apix", "/other/api"] {
        let r = send(&mut s, "GET", p, &[GBA_UA], b"").await;
        assert_eq!(r.status, 404, "{p}");
        assert!(r.all("www-authenticate").is_empty());
    }
    // Spellings that could reach /api at the upstream are refused.
    for p in [
        "/x/../api",
        "/x/%2e%2E/api",
        "/x%2F..%2Fapi",
        "/x/..;/api",
        "/a%zz",
    ] {
        let r = send(&mut s, "GET", p, &[GBA_UA], b"").await;
        assert_eq!(r.status, 400, "{p}");
    }
    // The route itself works with Digest; its upstream is the listener's.
    let r = send(&mut s, "GET", "/api//v1", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    let ch = gba_challenge(&r);
    let auth = digest_auth(&ch, &t, suite, "GET", "/%61pi/v1", 1);
    let r = send(
        &mut s,
        "GET",
        "/%61pi/v1",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["upstream"], "2");
    // Forwarded with its original spelling.
    assert_eq!(j["uri"], "/%61pi/v1");
    assert!(env.metric(&route_metric("strict", "-", "no_route")).await >= 3.0);
    assert!(env.metric(&route_metric("strict", "-", "bad_path")).await >= 5.0);
    // Listeners without routes answer every path as before (implicit route "default").
    let c = env.psk_connector(&t, None, None, false);
    let mut s = h1(psk_connect(env.addr("psk"), &c).await.unwrap()).await;
    let r = send(&mut s, "GET", "/anything/%2e%2e/x", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/anything/%2e%2e/x");
    assert!(
        env.metric(&route_metric("psk", "default", "forwarded"))
            .await
            >= 1.0
    );
    env.stop().await;
}

#[test]
fn configuration_errors_are_refused_before_start() {
    let base = |listener: &str| {
        format!(
            r#"
[osg]
fqdn = "{NAF_FQDN}"
[osg.kmc]
url = "https://127.0.0.1:1"
tls = {{ ca_file = "/nonexistent" }}
[[osg.listener]]
name = "gw"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = {{ cert_file = "/s.pem", key_file = "/s.key" }}
{listener}
"#
        )
    };
    let route = |body: &str| {
        base(&format!(
            "[[osg.listener.route]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\n{body}\n"
        ))
    };
    assert!(seccf_osg::OsgConfig::from_toml_str(&route("path_prefix = \"/r\"")).is_ok());
    for (text, what) in [
        (route("path_prefix = \"r\""), "must start with"),
        (route("path_prefix = \"/r/./s\""), "canonical"),
        (
            route("path_prefix = \"/r\"\nauth = [\"mtls\"]"),
            "subset of the listener's auth",
        ),
        (
            format!(
                "{}[[osg.listener.route]]\nname = \"s\"\nupstream = \"http://127.0.0.1:2\"\npath_prefix = \"/r\"\n",
                route("path_prefix = \"/r\"")
            ),
            "same host and path_prefix",
        ),
        (route("path_prefix = \"/r\"\nhost = \"a b\""), "host"),
        (base(""), "upstream is required"),
        (
            route("path_prefix = \"/r\"").replace("name = \"r\"", "name = \"r r\""),
            "name",
        ),
    ] {
        let e = seccf_osg::OsgConfig::from_toml_str(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}
