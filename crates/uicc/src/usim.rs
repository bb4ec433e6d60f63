//! USIM operations over any [`CardTransport`]: what the security agent uses.

use seccf_gba::impi::validate_impi;
use seccf_gba::naf::NafId;
use seccf_gba::Secret;
use zeroize::Zeroizing;

use crate::apdu::{sw, ApduError, Command, Response, MAX_SHORT_DATA, MAX_SHORT_LE};
use crate::authenticate::{
    encode_3g, encode_gba_bootstrap, encode_naf_derivation, parse_response, AuthFormatError,
    AuthResponse, INS_AUTHENTICATE, P2_3G, P2_GBA,
};
use crate::ef::{
    parse_impi, ust_has_service, EfError, Gbabp, FID_GBABP, FID_IMPI, FID_UST, MAX_EF_LEN,
    UST_SERVICE_GBA,
};
use crate::{CardError, CardTransport};

const CLA: u8 = 0x00;
pub(crate) const INS_SELECT: u8 = 0xA4;
pub(crate) const INS_READ_BINARY: u8 = 0xB0;
pub(crate) const INS_UPDATE_BINARY: u8 = 0xD6;
pub(crate) const INS_GET_RESPONSE: u8 = 0xC0;
/// SELECT P1: by file identifier.
pub(crate) const SELECT_BY_FID: u8 = 0x00;
/// SELECT P1: by DF name (application identifier).
pub(crate) const SELECT_BY_AID: u8 = 0x04;
/// SELECT P2: no response data.
const SELECT_NO_DATA: u8 = 0x0C;

/// Bounds on a T=0 style response assembled from GET RESPONSE rounds.
const MAX_GET_RESPONSE_ROUNDS: usize = 16;
const MAX_EXCHANGE_DATA: usize = 4096;
/// Highest offset READ/UPDATE BINARY can address without SFI (15 bits).
const MAX_OFFSET: usize = 0x7FFF;

/// Result of a 3G AUTHENTICATE whose MAC verified.
#[derive(Debug)]
pub enum AkaOutcome {
    /// The challenge was fresh: RES for the network, CK and IK for Ks.
    Success {
        /// RES (8 octets with MILENAGE).
        res: Secret<8>,
        /// Cipher key.
        ck: Secret<16>,
        /// Integrity key.
        ik: Secret<16>,
    },
    /// The SQN was not fresh: send AUTS to the network to resynchronise.
    SyncFailure {
        /// AUTS = (SQN_MS ^ AK*) || MAC-S.
        auts: [u8; 14],
    },
}

/// Result of a GBA_U bootstrap whose MAC verified. Ks stays in the card.
#[derive(Debug)]
pub enum GbaUOutcome {
    /// The challenge was fresh: RES for the BSF; the card now holds Ks and RAND.
    Success {
        /// RES.
        res: Secret<8>,
    },
    /// The SQN was not fresh: send AUTS to the BSF.
    SyncFailure {
        /// AUTS.
        auts: [u8; 14],
    },
}

/// Errors of the USIM operations.
#[derive(Debug, thiserror::Error)]
pub enum UsimError {
    /// The transport failed.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A command could not be encoded or a response was not an APDU.
    #[error("APDU error: {0}")]
    Apdu(#[from] ApduError),
    /// The card refused AUTN: MAC failure (SW 9862). The challenge did not come from the
    /// home network; do not answer it.
    #[error("the card rejected the network authentication token (MAC failure)")]
    MacFailure,
    /// The card does not support the requested security context (for P2 = 0x84: it is
    /// not a GBA_U card).
    #[error("the card does not support this security context (status {sw:04X})")]
    ContextNotSupported {
        /// The status word returned.
        sw: u16,
    },
    /// NAF derivation asked before any GBA_U bootstrap (the card holds no Ks).
    #[error("the card holds no GBA_U bootstrapping context")]
    NoBootstrap,
    /// The card has no such file (e.g. EF_GBABP on a card without GBA support).
    #[error("the card has no file {fid:04X}")]
    FileNotFound {
        /// The file identifier.
        fid: u16,
    },
    /// Any other status word.
    #[error("the card answered status {sw:04X}")]
    Status {
        /// The status word.
        sw: u16,
    },
    /// The response data did not have the expected structure.
    #[error("malformed card response: {0}")]
    BadResponse(&'static str),
    /// An input does not fit the card command.
    #[error("input too long for the card command: {0}")]
    InputTooLong(&'static str),
    /// An input is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// File content could not be encoded or parsed.
    #[error("file content: {0}")]
    File(#[from] EfError),
}

/// High-level USIM operations over any transport (what the security agent uses).
///
/// Every method is a short APDU exchange. Responses announced with `61xx` are fetched
/// with GET RESPONSE and `6Cxx` is retried with the right Le (except for AUTHENTICATE,
/// which must never run twice for one challenge), so T=0 readers work too.
pub struct Usim<T: CardTransport> {
    transport: T,
}

impl<T: CardTransport> std::fmt::Debug for Usim<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Usim { .. }")
    }
}

impl<T: CardTransport> Usim<T> {
    /// Wraps a transport. For a hardware card, select the USIM application first
    /// ([`Usim::select_aid`]); the software card has only one application.
    pub fn new(transport: T) -> Self {
        Usim { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// SELECT an application by AID (P1 = 04, no response data).
    pub fn select_aid(&mut self, aid: &[u8]) -> Result<(), UsimError> {
        if aid.is_empty() || aid.len() > 16 {
            return Err(UsimError::InvalidInput("AID must be 1 to 16 octets"));
        }
        let cmd = command(
            INS_SELECT,
            SELECT_BY_AID,
            SELECT_NO_DATA,
            aid.to_vec(),
            None,
        );
        match self.exchange(&cmd)?.1 {
            sw::OK => Ok(()),
            sw => Err(UsimError::Status { sw }),
        }
    }

    /// AUTHENTICATE P2=0x81 (3G context, GBA_ME): Ok(Success{res, ck, ik}) |
    /// Ok(SyncFailure{auts}) | Err(MacFailure...).
    pub fn authenticate_3g(
        &mut self,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<AkaOutcome, UsimError> {
        let cmd = command(
            INS_AUTHENTICATE,
            0,
            P2_3G,
            encode_3g(rand, autn),
            Some(MAX_SHORT_LE),
        );
        let data = self.authenticate(&cmd)?;
        match parse_response(&data).map_err(bad_auth)? {
            AuthResponse::SyncFailure(auts) => Ok(AkaOutcome::SyncFailure { auts }),
            AuthResponse::Success(fields) => {
                // RES, CK, IK and possibly Kc (ignored).
                let (res, ck, ik) = match fields.as_slice() {
                    [res, ck, ik] | [res, ck, ik, _] => (res, ck, ik),
                    _ => return Err(UsimError::BadResponse("3G response needs RES, CK, IK")),
                };
                Ok(AkaOutcome::Success {
                    res: Secret::from_slice(res)
                        .ok_or(UsimError::BadResponse("RES is not 8 octets"))?,
                    ck: Secret::from_slice(ck)
                        .ok_or(UsimError::BadResponse("CK is not 16 octets"))?,
                    ik: Secret::from_slice(ik)
                        .ok_or(UsimError::BadResponse("IK is not 16 octets"))?,
                })
            }
        }
    }

    /// AUTHENTICATE P2=0x84 bootstrapping mode (GBA_U): card keeps Ks and RAND, returns
    /// only RES (or AUTS). `autn` is what the BSF sent (AUTN* for a GBA_U subscriber).
    pub fn gba_u_bootstrap(
        &mut self,
        rand: &[u8; 16],
        autn: &[u8; 16],
    ) -> Result<GbaUOutcome, UsimError> {
        let cmd = command(
            INS_AUTHENTICATE,
            0,
            P2_GBA,
            encode_gba_bootstrap(rand, autn),
            Some(MAX_SHORT_LE),
        );
        let data = self.authenticate(&cmd)?;
        match parse_response(&data).map_err(bad_auth)? {
            AuthResponse::SyncFailure(auts) => Ok(GbaUOutcome::SyncFailure { auts }),
            AuthResponse::Success(fields) => match fields.as_slice() {
                [res] => Ok(GbaUOutcome::Success {
                    res: Secret::from_slice(res)
                        .ok_or(UsimError::BadResponse("RES is not 8 octets"))?,
                }),
                _ => Err(UsimError::BadResponse(
                    "GBA bootstrap response needs RES only",
                )),
            },
        }
    }

    /// AUTHENTICATE P2=0x84 NAF derivation mode: returns Ks_ext_NAF; the card keeps
    /// Ks_int_NAF.
    ///
    /// NAF_Id and IMPI travel with one-octet lengths in one short APDU, so together they
    /// must stay within 252 octets.
    pub fn gba_u_naf_derive(
        &mut self,
        naf_id: &NafId,
        impi: &str,
    ) -> Result<Secret<32>, UsimError> {
        if !impi.is_ascii() {
            // The KDF needs NFKC text; ASCII is the only form seccf produces.
            return Err(UsimError::InvalidInput("IMPI must be ASCII"));
        }
        let data =
            encode_naf_derivation(&naf_id.to_bytes(), impi.as_bytes()).map_err(|e| match e {
                AuthFormatError::TooLong => UsimError::InputTooLong("NAF_Id and IMPI"),
                _ => UsimError::InvalidInput("NAF_Id and IMPI must not be empty"),
            })?;
        let cmd = command(INS_AUTHENTICATE, 0, P2_GBA, data, Some(MAX_SHORT_LE));
        let data = self.authenticate(&cmd)?;
        match parse_response(&data).map_err(bad_auth)? {
            AuthResponse::Success(fields) => match fields.as_slice() {
                [ks_ext] => Secret::from_slice(ks_ext)
                    .ok_or(UsimError::BadResponse("Ks_ext_NAF is not 32 octets")),
                _ => Err(UsimError::BadResponse(
                    "NAF derivation response needs one key",
                )),
            },
            AuthResponse::SyncFailure(_) => {
                Err(UsimError::BadResponse("sync failure in NAF derivation"))
            }
        }
    }

    /// Write B-TID and lifetime to EF_GBABP (UPDATE BINARY after SELECT 6FD6), read back
    /// with [`Usim::read_gbabp`]. Cards without GBA support have no EF_GBABP
    /// ([`UsimError::FileNotFound`]).
    pub fn write_gbabp(
        &mut self,
        rand: &[u8; 16],
        btid: &str,
        lifetime: &str,
    ) -> Result<(), UsimError> {
        let content = Gbabp {
            rand: *rand,
            btid: btid.to_owned(),
            lifetime: lifetime.to_owned(),
        }
        .encode()?;
        self.select_ef(FID_GBABP)?;
        for (i, chunk) in content.chunks(MAX_SHORT_DATA).enumerate() {
            let offset = i * MAX_SHORT_DATA;
            let [p1, p2] = offset_p1p2(offset)?;
            let cmd = command(INS_UPDATE_BINARY, p1, p2, chunk.to_vec(), None);
            match self.exchange(&cmd)?.1 {
                sw::OK => {}
                sw => return Err(UsimError::Status { sw }),
            }
        }
        Ok(())
    }

    /// Reads EF_GBABP; `None` when it was never written.
    pub fn read_gbabp(&mut self) -> Result<Option<Gbabp>, UsimError> {
        self.select_ef(FID_GBABP)?;
        let content = self.read_transparent()?;
        Ok(Gbabp::parse(&content)?)
    }

    /// Read the IMPI. The software card keeps it in an ISIM-like EF '6F02' (TLV '80' NAI,
    /// as ISIM EF_IMPI) inside its one application; on a hardware card this needs the ISIM
    /// selected (a USIM alone has no IMPI: derive it from the IMSI instead, TS 23.003).
    pub fn read_impi(&mut self) -> Result<String, UsimError> {
        self.select_ef(FID_IMPI)?;
        let content = self.read_transparent()?;
        let impi = parse_impi(&content)?;
        validate_impi(&impi)
            .map_err(|_| UsimError::BadResponse("IMPI on the card is not a valid NAI"))?;
        Ok(impi)
    }

    /// Whether the card runs GBA_U: USIM service n°68 (GBA) is available in EF_UST. The
    /// software card sets that service iff its configuration says `gba_u = true`. A card
    /// without EF_UST is reported as not GBA_U.
    pub fn supports_gba_u(&mut self) -> Result<bool, UsimError> {
        match self.select_ef(FID_UST) {
            Ok(()) => {}
            Err(UsimError::FileNotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        let ust = self.read_transparent()?;
        Ok(ust_has_service(&ust, UST_SERVICE_GBA))
    }

    fn select_ef(&mut self, fid: u16) -> Result<(), UsimError> {
        let cmd = command(
            INS_SELECT,
            SELECT_BY_FID,
            SELECT_NO_DATA,
            fid.to_be_bytes().to_vec(),
            None,
        );
        match self.exchange(&cmd)?.1 {
            sw::OK => Ok(()),
            sw::FILE_NOT_FOUND => Err(UsimError::FileNotFound { fid }),
            sw => Err(UsimError::Status { sw }),
        }
    }

    /// Reads the current transparent EF from offset 0 until its end (bounded).
    fn read_transparent(&mut self) -> Result<Vec<u8>, UsimError> {
        let mut content = Vec::new();
        loop {
            let [p1, p2] = offset_p1p2(content.len())?;
            let cmd = command(INS_READ_BINARY, p1, p2, Vec::new(), Some(MAX_SHORT_LE));
            let (data, sw) = self.exchange(&cmd)?;
            match sw {
                sw::OK if !data.is_empty() => content.extend_from_slice(&data),
                // Empty success or a short final read: the end of the file.
                sw::OK => break,
                sw::END_OF_FILE => {
                    content.extend_from_slice(&data);
                    break;
                }
                sw::WRONG_OFFSET if !content.is_empty() => break,
                sw => return Err(UsimError::Status { sw }),
            }
            if content.len() > MAX_EF_LEN {
                return Err(UsimError::BadResponse("file longer than expected"));
            }
            if data.len() < usize::from(MAX_SHORT_LE) {
                break;
            }
        }
        Ok(content)
    }

    /// AUTHENTICATE exchange with the status words shared by all modes.
    fn authenticate(&mut self, cmd: &Command) -> Result<Zeroizing<Vec<u8>>, UsimError> {
        let (data, status) = self.exchange(cmd)?;
        match status {
            sw::OK => Ok(data),
            sw::AUTH_MAC_FAILURE => Err(UsimError::MacFailure),
            sw::AUTH_CONTEXT_NOT_SUPPORTED | sw::INCORRECT_P1_P2 | sw::INS_NOT_SUPPORTED => {
                Err(UsimError::ContextNotSupported { sw: status })
            }
            sw::CONDITIONS_NOT_SATISFIED => Err(UsimError::NoBootstrap),
            sw => Err(UsimError::Status { sw }),
        }
    }

    /// One logical exchange: 6Cxx retried once with the right Le (not for AUTHENTICATE),
    /// 61xx followed by GET RESPONSE rounds. The data is returned in a zeroizing buffer
    /// because it may hold RES, CK, IK or Ks_ext_NAF.
    fn exchange(&mut self, cmd: &Command) -> Result<(Zeroizing<Vec<u8>>, u16), UsimError> {
        let (mut data, mut status) = self.transmit_once(cmd)?;
        if sw1(status) == sw::SW1_WRONG_LE && cmd.ins != INS_AUTHENTICATE {
            let mut retry = cmd.clone();
            retry.le = Some(le_from_sw2(status));
            (data, status) = self.transmit_once(&retry)?;
        }
        let mut rounds = 0;
        while sw1(status) == sw::SW1_MORE_DATA {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(UsimError::BadResponse("too many GET RESPONSE rounds"));
            }
            let get = command(
                INS_GET_RESPONSE,
                0,
                0,
                Vec::new(),
                Some(le_from_sw2(status)),
            );
            let (more, next) = self.transmit_once(&get)?;
            if data.len() + more.len() > MAX_EXCHANGE_DATA {
                return Err(UsimError::BadResponse("response longer than expected"));
            }
            data.extend_from_slice(&more);
            status = next;
        }
        Ok((data, status))
    }

    fn transmit_once(&mut self, cmd: &Command) -> Result<(Zeroizing<Vec<u8>>, u16), UsimError> {
        let wire = cmd.try_encode()?;
        let raw = Zeroizing::new(self.transport.transmit(&wire)?);
        let Response { data, sw } = Response::parse(&raw)?;
        Ok((Zeroizing::new(data), sw))
    }
}

fn command(ins: u8, p1: u8, p2: u8, data: Vec<u8>, le: Option<u16>) -> Command {
    Command {
        cla: CLA,
        ins,
        p1,
        p2,
        data,
        le,
    }
}

fn sw1(status: u16) -> u8 {
    status.to_be_bytes()[0]
}

/// Le announced in SW2 of 61xx / 6Cxx (00 means 256).
fn le_from_sw2(status: u16) -> u16 {
    match status.to_be_bytes()[1] {
        0 => MAX_SHORT_LE,
        n => u16::from(n),
    }
}

fn offset_p1p2(offset: usize) -> Result<[u8; 2], UsimError> {
    if offset > MAX_OFFSET {
        return Err(UsimError::InputTooLong("file offset beyond 32767"));
    }
    // Below 0x8000, so it fits in 16 bits with the SFI bit clear.
    Ok((offset as u16).to_be_bytes())
}

fn bad_auth(_: AuthFormatError) -> UsimError {
    UsimError::BadResponse("AUTHENTICATE response data is malformed")
}
