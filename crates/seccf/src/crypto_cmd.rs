//! `seccf crypto …`: offline GBA computations printed as JSON, for checking another
//! GBA stack's numbers. Inputs are on the command line, so use test keys only.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use seccf_gba::naf::{ks_int_naf, ks_naf, NafId, UaSecurityProtocolId};
use seccf_gba::{aka, milenage::Milenage, sqn};
use seccf_secret::{MasterKey, Secret};

/// `seccf crypto`.
#[derive(Args, Debug)]
pub struct CryptoArgs {
    #[command(subcommand)]
    cmd: CryptoCmd,
}

#[derive(Subcommand, Debug)]
enum CryptoCmd {
    /// Milenage f1–f5* and AUTN for one input → JSON (opc, mac_a, mac_s, res, ck, ik, ak, ak_star, autn).
    Milenage {
        /// Subscriber key K (32 hex digits).
        #[arg(long)]
        k: String,
        /// Operator variant OP (32 hex); OPc is derived.
        #[arg(long, conflicts_with = "opc", required_unless_present = "opc")]
        op: Option<String>,
        /// OPc (32 hex).
        #[arg(long)]
        opc: Option<String>,
        /// RAND (32 hex).
        #[arg(long)]
        rand: String,
        /// SQN (12 hex).
        #[arg(long)]
        sqn: String,
        /// AMF (4 hex).
        #[arg(long)]
        amf: String,
    },
    /// TS 33.220 NAF key derivation → JSON with ks_naf (or ks_ext_naf and ks_int_naf with --gba-u).
    NafKey {
        /// Ks = CK‖IK (64 hex digits).
        #[arg(long)]
        ks: String,
        /// RAND of the bootstrapping run (32 hex).
        #[arg(long)]
        rand: String,
        /// IMPI.
        #[arg(long)]
        impi: String,
        /// NAF FQDN.
        #[arg(long)]
        naf_fqdn: String,
        /// Ua security protocol identifier (10 hex digits, e.g. 0100000002).
        #[arg(long)]
        ua_id: String,
        /// Also derive the GBA_U internal key.
        #[arg(long)]
        gba_u: bool,
    },
    /// Print a fresh random master key (64 hex digits) for [store].master_key_file.
    GenMasterKey,
}

fn hex_array<const N: usize>(name: &str, text: &str) -> anyhow::Result<[u8; N]> {
    let v = hex::decode(text.trim()).with_context(|| format!("--{name} is not hex"))?;
    v.try_into()
        .map_err(|_| anyhow::anyhow!("--{name} must be {} hex digits", N * 2))
}

fn secret16(name: &str, text: &str) -> anyhow::Result<Secret<16>> {
    Secret::from_hex(text).with_context(|| format!("--{name} must be 32 hex digits"))
}

/// Runs a crypto subcommand.
pub fn run(args: CryptoArgs) -> anyhow::Result<()> {
    match args.cmd {
        CryptoCmd::Milenage {
            k,
            op,
            opc,
            rand,
            sqn: sqn_hex,
            amf,
        } => {
            let k = secret16("k", &k)?;
            let m = match (op, opc) {
                (Some(op), None) => Milenage::with_op(k, &secret16("op", &op)?),
                (None, Some(opc)) => Milenage::new(k, secret16("opc", &opc)?),
                _ => bail!("give exactly one of --op or --opc"),
            };
            let rand: [u8; 16] = hex_array("rand", &rand)?;
            let sqn_b: [u8; 6] = hex_array("sqn", &sqn_hex)?;
            let amf: [u8; 2] = hex_array("amf", &amf)?;
            let f = m.f2345(&rand);
            let av = aka::generate_av(&m, rand, sqn::from_bytes(&sqn_b), amf);
            let out = serde_json::json!({
                "opc": m.opc().reveal_hex().as_str(),
                "mac_a": hex::encode(m.f1(&rand, &sqn_b, &amf)),
                "mac_s": hex::encode(m.f1_star(&rand, &sqn_b, &amf)),
                "res": f.res.reveal_hex().as_str(),
                "ck": f.ck.reveal_hex().as_str(),
                "ik": f.ik.reveal_hex().as_str(),
                "ak": hex::encode(f.ak),
                "ak_star": hex::encode(m.f5_star(&rand)),
                "autn": hex::encode(av.autn),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        CryptoCmd::NafKey {
            ks,
            rand,
            impi,
            naf_fqdn,
            ua_id,
            gba_u,
        } => {
            let ks = Secret::<32>::from_hex(&ks).context("--ks must be 64 hex digits")?;
            let rand: [u8; 16] = hex_array("rand", &rand)?;
            let ua = UaSecurityProtocolId::from_hex(&ua_id)
                .map_err(|e| anyhow::anyhow!("--ua-id: {e}"))?;
            let naf = NafId::new(&naf_fqdn, ua).map_err(|e| anyhow::anyhow!("--naf-fqdn: {e}"))?;
            let me = ks_naf(&ks, &rand, &impi, &naf).map_err(|e| anyhow::anyhow!("{e}"))?;
            let out = if gba_u {
                let int =
                    ks_int_naf(&ks, &rand, &impi, &naf).map_err(|e| anyhow::anyhow!("{e}"))?;
                serde_json::json!({
                    "naf_id": hex::encode(naf.to_bytes()),
                    "ks_ext_naf": me.reveal_hex().as_str(),
                    "ks_int_naf": int.reveal_hex().as_str(),
                })
            } else {
                serde_json::json!({
                    "naf_id": hex::encode(naf.to_bytes()),
                    "ks_naf": me.reveal_hex().as_str(),
                })
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        CryptoCmd::GenMasterKey => {
            let mk = MasterKey::generate()?;
            println!("{}", mk.to_hex().as_str());
        }
    }
    Ok(())
}
