//! The software USIM: a card that processes APDUs like a real one.
//!
//! It holds K and OPc, runs MILENAGE, keeps the TS 33.102 Annex C SQN window and, when
//! configured as GBA_U, keeps Ks and the NAF-internal keys to itself. It answers:
//!
//! | INS | command | notes |
//! |-----|---------|-------|
//! | A4 | SELECT | P1=00 by FID ('3F00', '7FFF', '6F38' UST, '6FD6' GBABP, '6F02' IMPI), P1=04 by AID (any AID selects its one application); no FCP is returned |
//! | B0 | READ BINARY | offset in P1-P2 (no SFI); a read past the end returns the rest with '6282' |
//! | D6 | UPDATE BINARY | EF_GBABP only (the others are read-only: '6982') |
//! | 88 | AUTHENTICATE | P2=81 3G context; P2=84 GBA context (GBA_U cards only, else '9864') |
//! | C0 | GET RESPONSE | for data announced with '61xx' |
//!
//! Case-4 commands sent without Le (as a T=0 reader does) get '61xx' and the data through
//! GET RESPONSE. Other classes than 00 get '6E00', other instructions '6D00'.
//!
//! A GBA_U card still runs plain 3G AKA with P2=81 (the network sends a plain AUTN for
//! that); a GBA_U bootstrap must use P2=84, where the card expects AUTN* and undoes it
//! with [`seccf_gba::aka::autn_from_autn_star`] before checking the MAC. A GBA_ME card
//! answers P2=84 with '9864' (security context not supported).
//!
//! Persistence: with a state path, the SQN window, EF_GBABP and the GBA_U bootstrap
//! (RAND, Ks) are written atomically (temporary file, fsync, rename, directory fsync;
//! mode 0600) *before* the card releases RES, so a challenge accepted once is refused after
//! a restart. If the state cannot be written the command fails with
//! [`CardError::State`] and no key leaves the card. The Ks_int_NAF table is not persisted:
//! after a restart the ME derives again. One process per card: concurrent writers are not
//! coordinated.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use seccf_gba::aka::{autn_from_autn_star, build_auts, check_autn, AutnOk};
use seccf_gba::impi::validate_impi;
use seccf_gba::kdf::ks;
use seccf_gba::milenage::{derive_opc, Milenage};
use seccf_gba::naf::{ks_int_naf_from_bytes, ks_naf_from_bytes, NafId};
use seccf_gba::sqn::{SqnWindow, SEQ_MAX};
use seccf_gba::Secret;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::{Zeroize, Zeroizing};

#[cfg(test)]
use crate::apdu::Response;
use crate::apdu::{sw, Command};
use crate::authenticate::{
    encode_success, encode_sync_failure, parse_request, AuthRequest, INS_AUTHENTICATE, P2_3G,
    P2_GBA,
};
use crate::ef::{
    encode_impi, ust_with_services, FID_ADF, FID_GBABP, FID_IMPI, FID_MF, FID_UST, UST_SERVICE_GBA,
};
use crate::usim::{
    INS_GET_RESPONSE, INS_READ_BINARY, INS_SELECT, INS_UPDATE_BINARY, SELECT_BY_AID, SELECT_BY_FID,
};
use crate::{CardError, CardTransport};

/// How many Ks_int_NAF entries the card keeps; the least recently used one is
/// overwritten when full (TS 33.220 G.2).
pub const KS_INT_NAF_SLOTS: usize = 8;
/// Size of the soft card's EF_GBABP: the largest content the one-octet lengths allow.
pub const GBABP_FILE_SIZE: usize = 1 + 16 + 1 + 255 + 1 + 255;
/// Size of the soft card's EF_UST (services 1 to 136).
const UST_LEN: usize = 17;
/// Largest configuration or state file read.
pub const MAX_FILE_LEN: usize = 64 * 1024;
/// Version of the state file format.
const STATE_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------
// Configuration

/// File format (TOML) of a software USIM: impi, k (hex), opc (hex) or op (hex), amf (hex,
/// default "8000"), gba_u (bool, default false), sqn window array (optional), delta
/// (optional).
///
/// ```toml
/// impi = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
/// k = "465b5ce8b199b49faa5f0a2ee238a6bc"
/// opc = "cd63cb71954a9f4e48a5994e37a02baf"   # or: op = "..."
/// amf = "8000"          # not used by the card; the AMF the network side provisions
/// gba_u = false
/// sqn_window = [0, 0, ...]   # optional: 32 SEQ_MS values, indexed by IND
/// delta = 268435456          # optional: TS 33.102 C.2.2 delta, default 2^28
/// ```
///
/// Unknown keys are refused. Errors name the line, never the value.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct SoftUsimConfig {
    /// The subscriber's IMPI (validated NAI).
    pub impi: String,
    /// The long-term key K.
    pub k: Secret<16>,
    /// OPc (given directly, or derived from OP at load time).
    pub opc: Secret<16>,
    /// AMF the network side should use for this subscriber (the card ignores it).
    pub amf: [u8; 2],
    /// Whether the card runs GBA_U.
    pub gba_u: bool,
    /// Initial SEQ_MS array (used when no state file exists yet).
    pub sqn_window: Option<[u64; 32]>,
    /// Delta of the freshness check.
    pub delta: u64,
}

impl SoftUsimConfig {
    /// Parses the TOML text of a configuration.
    pub fn from_toml_str(text: &str) -> Result<Self, CardError> {
        if text.len() > MAX_FILE_LEN {
            return Err(CardError::Config("configuration larger than 64 KiB".into()));
        }
        toml::from_str(text).map_err(|e| CardError::Config(describe_toml_error(&e, text)))
    }

    /// The configuration as TOML, **including K and OPc in clear** (for writing a new
    /// soft-card file). The buffer is zeroized on drop.
    pub fn reveal_toml(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::new());
        s.push_str(&format!(
            "impi = {}\n",
            toml::Value::String(self.impi.clone())
        ));
        s.push_str(&format!("k = \"{}\"\n", self.k.reveal_hex().as_str()));
        s.push_str(&format!("opc = \"{}\"\n", self.opc.reveal_hex().as_str()));
        s.push_str(&format!("amf = \"{}\"\n", hex::encode(self.amf)));
        s.push_str(&format!("gba_u = {}\n", self.gba_u));
        if let Some(w) = &self.sqn_window {
            let items: Vec<String> = w.iter().map(u64::to_string).collect();
            s.push_str(&format!("sqn_window = [{}]\n", items.join(", ")));
        }
        s.push_str(&format!("delta = {}\n", self.delta));
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    impi: String,
    k: HexKey,
    #[serde(default)]
    opc: Option<HexKey>,
    #[serde(default)]
    op: Option<HexKey>,
    #[serde(default)]
    amf: Option<String>,
    #[serde(default)]
    gba_u: bool,
    #[serde(default)]
    sqn_window: Option<Vec<u64>>,
    #[serde(default)]
    delta: Option<u64>,
}

impl TryFrom<RawConfig> for SoftUsimConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        validate_impi(&raw.impi).map_err(|e| format!("impi: {e}"))?;
        let opc = match (raw.opc, raw.op) {
            (Some(opc), None) => opc.0,
            (None, Some(op)) => derive_opc(&raw.k.0, &op.0),
            (Some(_), Some(_)) => return Err("give either opc or op, not both".into()),
            (None, None) => return Err("one of opc or op is required".into()),
        };
        let amf = match raw.amf {
            None => [0x80, 0x00],
            Some(text) => {
                let mut amf = [0u8; 2];
                hex::decode_to_slice(text.trim(), &mut amf)
                    .map_err(|_| "amf must be 4 hex digits".to_owned())?;
                amf
            }
        };
        let sqn_window = match raw.sqn_window {
            None => None,
            Some(v) => {
                let arr: [u64; 32] = v
                    .try_into()
                    .map_err(|_| "sqn_window must have exactly 32 entries".to_owned())?;
                if arr.iter().any(|&s| s > SEQ_MAX) {
                    return Err("sqn_window entries are 43-bit SEQ values".into());
                }
                Some(arr)
            }
        };
        Ok(SoftUsimConfig {
            impi: raw.impi,
            k: raw.k.0,
            opc,
            amf,
            gba_u: raw.gba_u,
            sqn_window,
            delta: raw.delta.unwrap_or(SqnWindow::DEFAULT_DELTA),
        })
    }
}

/// A 128-bit key given as 32 hex digits.
struct HexKey(Secret<16>);

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "must be a string of 32 hex digits";
        // Going through `toml::Value` lets a value of the wrong type fail with our message
        // instead of serde's "invalid type: integer `...`", which would echo it.
        let value = toml::Value::deserialize(d)?;
        let toml::Value::String(mut text) = value else {
            return Err(D::Error::custom(EXPECTED));
        };
        let key = Secret::from_hex(&text);
        text.zeroize();
        key.map(HexKey).ok_or_else(|| D::Error::custom(EXPECTED))
    }
}

/// `line N: message`, without toml's source excerpt (which could show a key).
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let line = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    match line {
        Some(n) => format!("line {n}: {}", e.message()),
        None => e.message().to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// State

/// The GBA_U bootstrapping context kept in the card.
#[derive(Clone)]
struct Bootstrap {
    rand: [u8; 16],
    ks: Secret<32>,
}

/// Everything that must survive a restart. Changes are made on a copy, persisted, then
/// committed, so a failed write leaves the card as it was.
#[derive(Clone)]
struct CardState {
    window: SqnWindow,
    gbabp: Vec<u8>,
    bootstrap: Option<Bootstrap>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    impi: String,
    seq_ms: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gbabp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gba_u_rand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gba_u_ks: Option<String>,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if let Some(ks) = &mut self.gba_u_ks {
            ks.zeroize();
        }
    }
}

struct KsIntEntry {
    naf_id: Vec<u8>,
    key: Secret<32>,
    last_used: u64,
}

// ---------------------------------------------------------------------------------------
// The card

/// The software USIM; implements [`CardTransport`].
pub struct SoftUsim {
    impi: String,
    milenage: Milenage,
    gba_u: bool,
    state: CardState,
    state_path: Option<PathBuf>,
    ks_int: Vec<KsIntEntry>,
    clock: u64,
    selected: Option<u16>,
    pending: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for SoftUsim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftUsim")
            .field("impi", &self.impi)
            .field("gba_u", &self.gba_u)
            .field("state_path", &self.state_path)
            .field("bootstrapped", &self.state.bootstrap.is_some())
            .field("ks_int_naf_entries", &self.ks_int.len())
            .finish_non_exhaustive()
    }
}

/// A response being built: data (possibly keys, hence zeroizing) and status word.
struct Reply {
    data: Zeroizing<Vec<u8>>,
    sw: u16,
}

impl Reply {
    fn status(sw: u16) -> Self {
        Reply {
            data: Zeroizing::new(Vec::new()),
            sw,
        }
    }

    fn ok(data: Vec<u8>) -> Self {
        Reply {
            data: Zeroizing::new(data),
            sw: sw::OK,
        }
    }
}

impl SoftUsim {
    /// A card from an already parsed configuration, without persistence.
    pub fn from_config(cfg: SoftUsimConfig) -> Self {
        let window = match cfg.sqn_window {
            Some(arr) => SqnWindow::from_array(arr, cfg.delta),
            None => SqnWindow::new(cfg.delta),
        };
        SoftUsim {
            impi: cfg.impi.clone(),
            milenage: Milenage::new(cfg.k.clone(), cfg.opc.clone()),
            gba_u: cfg.gba_u,
            state: CardState {
                window,
                gbabp: vec![0xFF; GBABP_FILE_SIZE],
                bootstrap: None,
            },
            state_path: None,
            ks_int: Vec::new(),
            clock: 0,
            selected: None,
            pending: None,
        }
    }

    /// Load from a file; state (the SQN window) is persisted back to `state_path`
    /// atomically (write temp + fsync + rename) after each accepted AUTHENTICATE so replays
    /// are refused across restarts. An existing state file overrides the configuration's
    /// `sqn_window`; a missing one is created on the first change.
    pub fn open(config_path: &Path, state_path: Option<&Path>) -> Result<Self, CardError> {
        let text = read_bounded(config_path)?;
        let cfg = SoftUsimConfig::from_toml_str(&text).map_err(|e| match e {
            CardError::Config(msg) => {
                CardError::Config(format!("{}: {msg}", config_path.display()))
            }
            other => other,
        })?;
        let mut card = Self::from_config(cfg);
        if let Some(path) = state_path {
            card.attach_state(path)?;
        }
        Ok(card)
    }

    /// Persists this card's state to `path` from now on, first loading the state already
    /// there (if the file exists).
    pub fn attach_state(&mut self, path: &Path) -> Result<(), CardError> {
        match read_bounded(path) {
            Ok(text) => self.load_state(path, &text)?,
            Err(CardError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.state_path = Some(path.to_path_buf());
        Ok(())
    }

    /// The IMPI this card was configured with.
    pub fn impi(&self) -> &str {
        &self.impi
    }

    /// Whether the card runs GBA_U.
    pub fn is_gba_u(&self) -> bool {
        self.gba_u
    }

    /// The current SQN window (SEQ_MS per IND).
    pub fn sqn_window(&self) -> &SqnWindow {
        &self.state.window
    }

    /// Ks_int_NAF for `naf_id` if the card derived it: what a card application would use;
    /// it never crosses the APDU interface. For tests and in-card applications only.
    pub fn card_application_ks_int_naf(&self, naf_id: &NafId) -> Option<Secret<32>> {
        let id = naf_id.to_bytes();
        self.ks_int
            .iter()
            .find(|e| e.naf_id == id)
            .map(|e| e.key.clone())
    }

    fn load_state(&mut self, path: &Path, text: &str) -> Result<(), CardError> {
        let bad = |reason: &str| CardError::State {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let file: StateFile = toml::from_str(text).map_err(|e| CardError::State {
            path: path.to_path_buf(),
            reason: describe_toml_error(&e, text),
        })?;
        if file.version != STATE_VERSION {
            return Err(bad("unsupported version"));
        }
        if file.impi != self.impi {
            return Err(bad("state belongs to another IMPI"));
        }
        let seq_ms: [u64; 32] = file
            .seq_ms
            .as_slice()
            .try_into()
            .map_err(|_| bad("seq_ms must have 32 entries"))?;
        if seq_ms.iter().any(|&s| s > SEQ_MAX) {
            return Err(bad("seq_ms entries are 43-bit SEQ values"));
        }
        let mut gbabp = vec![0xFF; GBABP_FILE_SIZE];
        if let Some(h) = &file.gbabp {
            let content = hex::decode(h).map_err(|_| bad("gbabp is not hex"))?;
            let dst = gbabp
                .get_mut(..content.len())
                .ok_or_else(|| bad("gbabp larger than the file"))?;
            dst.copy_from_slice(&content);
        }
        let bootstrap = match (&file.gba_u_rand, &file.gba_u_ks) {
            (None, None) => None,
            (Some(r), Some(k)) => {
                let mut rand = [0u8; 16];
                hex::decode_to_slice(r, &mut rand)
                    .map_err(|_| bad("gba_u_rand is not 16 octets of hex"))?;
                let ks =
                    Secret::from_hex(k).ok_or_else(|| bad("gba_u_ks is not 32 octets of hex"))?;
                Some(Bootstrap { rand, ks })
            }
            _ => return Err(bad("gba_u_rand and gba_u_ks go together")),
        };
        self.state = CardState {
            window: SqnWindow::from_array(seq_ms, self.state.window.delta()),
            gbabp,
            bootstrap,
        };
        Ok(())
    }

    /// Persists `next` (if a state path is set) and makes it the card's state.
    fn commit(&mut self, next: CardState) -> Result<(), CardError> {
        if let Some(path) = &self.state_path {
            let file = StateFile {
                version: STATE_VERSION,
                impi: self.impi.clone(),
                seq_ms: next.window.as_array().to_vec(),
                gbabp: Some(hex::encode(trim_erased(&next.gbabp))),
                gba_u_rand: next.bootstrap.as_ref().map(|b| hex::encode(b.rand)),
                gba_u_ks: next
                    .bootstrap
                    .as_ref()
                    .map(|b| b.ks.reveal_hex().as_str().to_owned()),
            };
            let text = Zeroizing::new(toml::to_string(&file).map_err(|e| CardError::State {
                path: path.clone(),
                reason: format!("cannot serialise state: {e}"),
            })?);
            write_atomic(path, text.as_bytes()).map_err(|source| CardError::Io {
                path: path.clone(),
                source,
            })?;
        }
        self.state = next;
        Ok(())
    }

    fn process(&mut self, cmd: &Command) -> Result<Reply, CardError> {
        if cmd.cla != 0x00 {
            self.pending = None;
            return Ok(Reply::status(sw::CLA_NOT_SUPPORTED));
        }
        if cmd.ins == INS_GET_RESPONSE {
            return Ok(self.get_response(cmd));
        }
        self.pending = None;
        let reply = match cmd.ins {
            INS_SELECT => self.select(cmd),
            INS_READ_BINARY => self.read_binary(cmd),
            INS_UPDATE_BINARY => self.update_binary(cmd)?,
            INS_AUTHENTICATE => self.authenticate(cmd)?,
            _ => Reply::status(sw::INS_NOT_SUPPORTED),
        };
        Ok(self.deliver(reply, cmd.le))
    }

    /// T=0 behaviour: data that the command's Le does not cover is held back for GET
    /// RESPONSE and announced with 61xx.
    fn deliver(&mut self, reply: Reply, le: Option<u16>) -> Reply {
        let n = reply.data.len();
        if n == 0 || le.is_some_and(|le| usize::from(le) >= n) {
            return reply;
        }
        // n <= 256 for every reply this card builds; 256 is announced as 00.
        let announced = u16::try_from(n % 256).unwrap_or(0);
        self.pending = Some(reply.data);
        Reply::status(0x6100 | announced)
    }

    fn get_response(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Reply::status(sw::INCORRECT_P1_P2);
        }
        let Some(le) = cmd.le else {
            return Reply::status(sw::WRONG_LENGTH);
        };
        let Some(mut pending) = self.pending.take() else {
            return Reply::status(sw::CONDITIONS_NOT_SATISFIED);
        };
        let n = usize::from(le).min(pending.len());
        let rest = Zeroizing::new(pending.split_off(n));
        if rest.is_empty() {
            Reply {
                data: pending,
                sw: sw::OK,
            }
        } else {
            let announced = u16::try_from(rest.len() % 256).unwrap_or(0);
            self.pending = Some(rest);
            Reply {
                data: pending,
                sw: 0x6100 | announced,
            }
        }
    }

    fn select(&mut self, cmd: &Command) -> Reply {
        match cmd.p1 {
            SELECT_BY_FID => {
                let [hi, lo] = cmd.data[..] else {
                    return Reply::status(sw::WRONG_LENGTH);
                };
                match u16::from_be_bytes([hi, lo]) {
                    FID_MF | FID_ADF => self.selected = None,
                    FID_UST | FID_IMPI => self.selected = Some(u16::from_be_bytes([hi, lo])),
                    // EF_GBABP exists only where the GBA service does (GBA_U cards).
                    FID_GBABP if self.gba_u => self.selected = Some(FID_GBABP),
                    _ => return Reply::status(sw::FILE_NOT_FOUND),
                }
                Reply::status(sw::OK)
            }
            SELECT_BY_AID => {
                if cmd.data.is_empty() || cmd.data.len() > 16 {
                    return Reply::status(sw::WRONG_LENGTH);
                }
                // The soft card has one application: any AID selects it.
                self.selected = None;
                Reply::status(sw::OK)
            }
            _ => Reply::status(sw::INCORRECT_P1_P2),
        }
    }

    fn ef_content(&self, fid: u16) -> Vec<u8> {
        match fid {
            FID_UST => {
                let services: &[usize] = if self.gba_u { &[UST_SERVICE_GBA] } else { &[] };
                ust_with_services(UST_LEN, services)
            }
            FID_GBABP => self.state.gbabp.clone(),
            // The IMPI was validated when the configuration was parsed; a hand-built
            // configuration with an unencodable one reads as an empty file.
            FID_IMPI => encode_impi(&self.impi).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn read_binary(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 & 0x80 != 0 {
            return Reply::status(sw::FUNCTION_NOT_SUPPORTED);
        }
        let Some(fid) = self.selected else {
            return Reply::status(sw::NO_CURRENT_EF);
        };
        let Some(le) = cmd.le else {
            return Reply::status(sw::WRONG_LENGTH);
        };
        let content = self.ef_content(fid);
        let offset = usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]));
        if offset >= content.len() {
            return Reply::status(sw::WRONG_OFFSET);
        }
        let wanted_end = offset + usize::from(le);
        let end = wanted_end.min(content.len());
        let data = content.get(offset..end).unwrap_or_default().to_vec();
        let status = if wanted_end > content.len() {
            sw::END_OF_FILE
        } else {
            sw::OK
        };
        Reply {
            data: Zeroizing::new(data),
            sw: status,
        }
    }

    fn update_binary(&mut self, cmd: &Command) -> Result<Reply, CardError> {
        if cmd.p1 & 0x80 != 0 {
            return Ok(Reply::status(sw::FUNCTION_NOT_SUPPORTED));
        }
        match self.selected {
            Some(FID_GBABP) => {}
            Some(_) => return Ok(Reply::status(sw::SECURITY_STATUS)),
            None => return Ok(Reply::status(sw::NO_CURRENT_EF)),
        }
        if cmd.data.is_empty() {
            return Ok(Reply::status(sw::WRONG_LENGTH));
        }
        let offset = usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]));
        if offset >= GBABP_FILE_SIZE {
            return Ok(Reply::status(sw::WRONG_OFFSET));
        }
        let mut next = self.state.clone();
        let Some(dst) = next.gbabp.get_mut(offset..offset + cmd.data.len()) else {
            return Ok(Reply::status(sw::WRONG_LENGTH));
        };
        dst.copy_from_slice(&cmd.data);
        self.commit(next)?;
        Ok(Reply::status(sw::OK))
    }

    fn authenticate(&mut self, cmd: &Command) -> Result<Reply, CardError> {
        if cmd.p1 != 0 {
            return Ok(Reply::status(sw::INCORRECT_P1_P2));
        }
        match cmd.p2 {
            P2_3G => {}
            P2_GBA if self.gba_u => {}
            // GBA context on a GBA_ME card, and the other TS 31.102 contexts (GSM, VGCS/VBS,
            // MBMS) this card does not implement.
            P2_GBA | 0x80 | 0x82 | 0x85 => {
                return Ok(Reply::status(sw::AUTH_CONTEXT_NOT_SUPPORTED))
            }
            _ => return Ok(Reply::status(sw::INCORRECT_P1_P2)),
        }
        let Ok(request) = parse_request(cmd.p2, &cmd.data) else {
            return Ok(Reply::status(sw::WRONG_DATA));
        };
        match request {
            AuthRequest::ThreeG { rand, autn } => self.aka(&rand, &autn, false),
            AuthRequest::GbaBootstrap { rand, autn } => {
                let ik = self.milenage.f2345(&rand).ik;
                let autn = autn_from_autn_star(&autn, &ik);
                self.aka(&rand, &autn, true)
            }
            AuthRequest::GbaNafDerivation { naf_id, impi } => Ok(self.naf_derivation(naf_id, impi)),
        }
    }

    /// Checks AUTN, then freshness; on success records the SQN (and, for GBA_U, Ks) and
    /// persists before answering.
    fn aka(&mut self, rand: &[u8; 16], autn: &[u8; 16], gba_u: bool) -> Result<Reply, CardError> {
        let Ok(AutnOk { sqn, keys, .. }) = check_autn(&self.milenage, rand, autn) else {
            return Ok(Reply::status(sw::AUTH_MAC_FAILURE));
        };
        if self.state.window.check(sqn).is_err() {
            let auts = build_auts(&self.milenage, rand, self.state.window.sqn_ms());
            return Ok(Reply::ok(encode_sync_failure(&auts)));
        }
        let mut next = self.state.clone();
        next.window.accept(sqn);
        if gba_u {
            // A new bootstrap replaces the previous Ks and RAND (TS 33.220 G.1).
            next.bootstrap = Some(Bootstrap {
                rand: *rand,
                ks: ks(&keys.ck, &keys.ik),
            });
        }
        self.commit(next)?;
        let fields: Vec<&[u8]> = if gba_u {
            vec![keys.res.expose()]
        } else {
            vec![keys.res.expose(), keys.ck.expose(), keys.ik.expose()]
        };
        // Fields are 8 or 16 octets, well below the one-octet length limit.
        let data = encode_success(&fields).unwrap_or_default();
        Ok(Reply::ok(data))
    }

    fn naf_derivation(&mut self, naf_id: &[u8], impi: &[u8]) -> Reply {
        let Some(b) = &self.state.bootstrap else {
            return Reply::status(sw::CONDITIONS_NOT_SATISFIED);
        };
        // At least one FQDN octet before the 5-octet Ua security protocol id.
        if naf_id.len() < 6 {
            return Reply::status(sw::WRONG_DATA);
        }
        let (Ok(ext), Ok(int)) = (
            ks_naf_from_bytes(&b.ks, &b.rand, impi, naf_id),
            ks_int_naf_from_bytes(&b.ks, &b.rand, impi, naf_id),
        ) else {
            return Reply::status(sw::WRONG_DATA);
        };
        self.store_ks_int(naf_id, int);
        Reply::ok(encode_success(&[ext.expose()]).unwrap_or_default())
    }

    fn store_ks_int(&mut self, naf_id: &[u8], key: Secret<32>) {
        self.clock += 1;
        let now = self.clock;
        if let Some(e) = self.ks_int.iter_mut().find(|e| e.naf_id == naf_id) {
            e.key = key;
            e.last_used = now;
            return;
        }
        let entry = KsIntEntry {
            naf_id: naf_id.to_vec(),
            key,
            last_used: now,
        };
        if self.ks_int.len() < KS_INT_NAF_SLOTS {
            self.ks_int.push(entry);
        } else if let Some(lru) = self.ks_int.iter_mut().min_by_key(|e| e.last_used) {
            *lru = entry;
        }
    }
}

impl CardTransport for SoftUsim {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        let reply = match Command::parse(command) {
            Ok(cmd) => self.process(&cmd)?,
            Err(_) => {
                self.pending = None;
                Reply::status(sw::WRONG_LENGTH)
            }
        };
        // Built directly rather than through `Response` so the only copy of key
        // material outside a zeroizing buffer is the one handed to the caller.
        let mut out = Vec::with_capacity(reply.data.len() + 2);
        out.extend_from_slice(&reply.data);
        out.extend_from_slice(&reply.sw.to_be_bytes());
        Ok(out)
    }
}

/// EF_GBABP content without the trailing erased octets (keeps the state file short).
fn trim_erased(content: &[u8]) -> &[u8] {
    let end = content
        .iter()
        .rposition(|&b| b != 0xFF)
        .map_or(0, |i| i + 1);
    content.get(..end).unwrap_or_default()
}

fn read_bounded(path: &Path) -> Result<Zeroizing<String>, CardError> {
    let io_err = |source| CardError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE_LEN as u64 + 1)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    if text.len() > MAX_FILE_LEN {
        return Err(CardError::Config(format!(
            "{}: larger than 64 KiB",
            path.display()
        )));
    }
    Ok(text)
}

/// Replaces `path` with `data` so that a crash leaves either the old or the new content.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // The state holds Ks of a GBA_U card.
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        #[cfg(unix)]
        fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
impi = "user@example.org"
k = "000102030405060708090a0b0c0d0e0f"
opc = "000102030405060708090a0b0c0d0e0f"
"#;

    fn card() -> SoftUsim {
        SoftUsim::from_config(SoftUsimConfig::from_toml_str(CONFIG).unwrap())
    }

    fn send(card: &mut SoftUsim, apdu: &[u8]) -> Response {
        Response::parse(&card.transmit(apdu).unwrap()).unwrap()
    }

    #[test]
    fn defaults() {
        let c = SoftUsimConfig::from_toml_str(CONFIG).unwrap();
        assert_eq!(c.amf, [0x80, 0]);
        assert!(!c.gba_u);
        assert_eq!(c.delta, SqnWindow::DEFAULT_DELTA);
        assert!(c.sqn_window.is_none());
    }

    #[test]
    fn reveal_toml_round_trips() {
        let mut c = SoftUsimConfig::from_toml_str(CONFIG).unwrap();
        c.sqn_window = Some([3; 32]);
        c.gba_u = true;
        let text = c.reveal_toml();
        let back = SoftUsimConfig::from_toml_str(&text).unwrap();
        assert_eq!(back.k, c.k);
        assert_eq!(back.opc, c.opc);
        assert_eq!(back.sqn_window, c.sqn_window);
        assert!(back.gba_u);
    }

    #[test]
    fn status_words_for_unsupported_commands() {
        let mut c = card();
        assert_eq!(
            send(&mut c, &[0x80, 0x88, 0, 0x81]).sw,
            sw::CLA_NOT_SUPPORTED
        );
        assert_eq!(send(&mut c, &[0x00, 0x12, 0, 0]).sw, sw::INS_NOT_SUPPORTED);
        assert_eq!(
            send(&mut c, &[0x00, 0x88, 1, 0x81, 1, 0]).sw,
            sw::INCORRECT_P1_P2
        );
        assert_eq!(
            send(&mut c, &[0x00, 0x88, 0, 0x99, 1, 0]).sw,
            sw::INCORRECT_P1_P2
        );
        assert_eq!(
            send(&mut c, &[0x00, 0x88, 0, 0x81, 1, 0]).sw,
            sw::WRONG_DATA
        );
        // GBA context on a GBA_ME card.
        assert_eq!(
            send(&mut c, &[0x00, 0x88, 0, 0x84, 1, 0xDD]).sw,
            sw::AUTH_CONTEXT_NOT_SUPPORTED
        );
        assert_eq!(send(&mut c, &[0x00]).sw, sw::WRONG_LENGTH);
        assert_eq!(
            send(&mut c, &[0x00, 0xC0, 0, 0, 0x10]).sw,
            sw::CONDITIONS_NOT_SATISFIED
        );
        assert_eq!(
            send(&mut c, &[0x00, 0xB0, 0, 0, 0x10]).sw,
            sw::NO_CURRENT_EF
        );
        // EF_GBABP does not exist on a GBA_ME card; UST is read-only.
        assert_eq!(
            send(&mut c, &[0x00, 0xA4, 0, 0x0C, 2, 0x6F, 0xD6]).sw,
            sw::FILE_NOT_FOUND
        );
        assert_eq!(
            send(&mut c, &[0x00, 0xA4, 0, 0x0C, 2, 0x6F, 0x38]).sw,
            sw::OK
        );
        assert_eq!(
            send(&mut c, &[0x00, 0xD6, 0, 0, 1, 0xFF]).sw,
            sw::SECURITY_STATUS
        );
        assert_eq!(send(&mut c, &[0x00, 0xB0, 0, 17, 1]).sw, sw::WRONG_OFFSET);
        let r = send(&mut c, &[0x00, 0xB0, 0, 10, 0]);
        assert_eq!((r.sw, r.data.len()), (sw::END_OF_FILE, 7));
    }

    #[test]
    fn lru_overwrites_least_recently_used() {
        let mut c = card();
        for i in 0..KS_INT_NAF_SLOTS as u8 {
            c.store_ks_int(&[i; 6], Secret::new([i; 32]));
        }
        // Touch entry 0 so entry 1 becomes the oldest.
        c.store_ks_int(&[0; 6], Secret::new([100; 32]));
        c.store_ks_int(&[200; 6], Secret::new([200; 32]));
        assert_eq!(c.ks_int.len(), KS_INT_NAF_SLOTS);
        assert!(c.ks_int.iter().all(|e| e.naf_id != [1; 6]));
        assert!(c
            .ks_int
            .iter()
            .any(|e| e.naf_id == [0; 6] && e.key == Secret::new([100; 32])));
        assert!(c.ks_int.iter().any(|e| e.naf_id == [200; 6]));
    }

    #[test]
    fn trim() {
        assert_eq!(trim_erased(&[1, 0xFF, 2, 0xFF, 0xFF]), &[1, 0xFF, 2]);
        assert_eq!(trim_erased(&[0xFF; 4]), &[] as &[u8]);
    }
}
