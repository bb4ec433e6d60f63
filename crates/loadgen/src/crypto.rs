//! `crypto`: what one KMC core spends per bootstrap on GBA crypto, with no IO.
//!
//! One thread, three phases sharing the requested time (½, ¼, ¼):
//! 1. the full per-bootstrap chain: Milenage f1 and f2345 for a fresh RAND, then
//!    Ks = CK ‖ IK and one Ks_NAF (TS 33.220 B.2 KDF, HMAC-SHA-256);
//! 2. Milenage alone (f1 + f2345);
//! 3. the KDF alone (Ks + one Ks_NAF).
//!
//! RAND comes from a xorshift generator, not the OS: the point is the cost of the
//! algorithms, and a getrandom system call per operation would be measured instead.
//! K and OPc are random test keys made for this run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;
use seccf_gba::naf::{ks_naf, NafId, UaSecurityProtocolId};
use seccf_gba::{kdf, sqn, Milenage};
use seccf_secret::Secret;

use crate::driver::{Outcome, Report};

/// IMPI used in the KDF input (the length of a typical 3GPP IMPI matters for HMAC cost).
const IMPI: &str = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
/// NAF FQDN used in the KDF input.
const NAF_FQDN: &str = "naf.seccf.test";
/// AMF of the vectors.
const AMF: [u8; 2] = [0x80, 0x00];
/// Shortest phase, so tiny `--seconds` values still measure something.
const MIN_PHASE: Duration = Duration::from_millis(200);
/// Operation budget per phase (a bound, far above what a core does in an hour).
const MAX_OPS_PER_PHASE: u64 = 10_000_000_000;

/// xorshift64*: cheap, deterministic, good enough to vary RAND.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn rand16(&mut self) -> [u8; 16] {
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&self.next().to_be_bytes());
        r[8..].copy_from_slice(&self.next().to_be_bytes());
        r
    }
}

/// Runs the three phases for `seconds` in total.
pub fn run(seconds: u64) -> anyhow::Result<Report> {
    let total = Duration::from_secs(seconds);
    let full_time = (total / 2).max(MIN_PHASE);
    let part_time = (total / 4).max(MIN_PHASE);

    let k = Secret::<16>::random().context("random K")?;
    let opc = Secret::<16>::random().context("random OPc")?;
    let milenage = Milenage::new(k, opc);
    let naf = NafId::new(NAF_FQDN, UaSecurityProtocolId::HTTP_DIGEST)
        .map_err(|e| anyhow::anyhow!("NAF_Id: {e}"))?;
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    let mut sqn_counter: u64 = 32;

    // Phase 1: the whole chain, with per-operation latency.
    let mut full = Outcome::default();
    let start = Instant::now();
    let deadline = start + full_time;
    while full.hist.count() < MAX_OPS_PER_PHASE {
        let t0 = Instant::now();
        if t0 >= deadline {
            break;
        }
        let rand = rng.rand16();
        sqn_counter = sqn_counter.wrapping_add(32) & sqn::SQN_MAX;
        let mac_a = milenage.f1(&rand, &sqn::to_bytes(sqn_counter), &AMF);
        let keys = milenage.f2345(&rand);
        let ks = kdf::ks(&keys.ck, &keys.ik);
        let ks_naf_key = ks_naf(&ks, &rand, IMPI, &naf).context("Ks_NAF")?;
        black_box(&mac_a);
        black_box(ks_naf_key.expose());
        full.hist.record(t0.elapsed());
    }
    full.elapsed = start.elapsed();
    full.ops = full.hist.count();

    // Phase 2: Milenage alone.
    let start = Instant::now();
    let deadline = start + part_time;
    let mut milenage_ops = 0u64;
    while milenage_ops < MAX_OPS_PER_PHASE && Instant::now() < deadline {
        // Batches of 16 keep the clock reads out of the measurement.
        for _ in 0..16 {
            let rand = rng.rand16();
            sqn_counter = sqn_counter.wrapping_add(32) & sqn::SQN_MAX;
            let mac_a = milenage.f1(&rand, &sqn::to_bytes(sqn_counter), &AMF);
            let keys = milenage.f2345(&rand);
            // By reference, so every output (RES, CK, IK, AK) counts as used and none
            // of the AES calls can be optimised away.
            black_box(&mac_a);
            black_box(&keys);
        }
        milenage_ops += 16;
    }
    let milenage_rate = milenage_ops as f64 / start.elapsed().as_secs_f64();

    // Phase 3: KDF alone, over fixed CK/IK with a varying RAND in the Ks_NAF input.
    let keys = milenage.f2345(&rng.rand16());
    let start = Instant::now();
    let deadline = start + part_time;
    let mut kdf_ops = 0u64;
    while kdf_ops < MAX_OPS_PER_PHASE && Instant::now() < deadline {
        for _ in 0..16 {
            let rand = rng.rand16();
            let ks = kdf::ks(&keys.ck, &keys.ik);
            let key = ks_naf(&ks, &rand, IMPI, &naf).context("Ks_NAF")?;
            black_box(key.expose());
        }
        kdf_ops += 16;
    }
    let kdf_rate = kdf_ops as f64 / start.elapsed().as_secs_f64();

    let mut report = Report::new(
        "crypto",
        "Milenage f1+f2345, Ks, one Ks_NAF (single thread, in process)".into(),
        1,
        seconds as f64,
        &full,
    );
    report.milenage_per_sec = Some(milenage_rate);
    report.kdf_per_sec = Some(kdf_rate);
    Ok(report)
}
