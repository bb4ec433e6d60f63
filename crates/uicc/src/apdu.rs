//! ISO/IEC 7816-4 command and response APDUs, short form only, sans-IO.
//!
//! A command is `CLA INS P1 P2 [Lc data] [Le]` (cases 1 to 4); a response is
//! `data SW1 SW2`. Extended lengths (Lc = 00 followed by two octets) are refused: every
//! USIM command seccf sends fits in 255 octets, and a bounded parser is simpler to trust.

use std::fmt;

/// Largest command data field of a short APDU.
pub const MAX_SHORT_DATA: usize = 255;
/// Largest Le of a short APDU (encoded as 00).
pub const MAX_SHORT_LE: u16 = 256;
/// Longest encoded short command: header, Lc, 255 data octets, Le.
pub const MAX_COMMAND_LEN: usize = 4 + 1 + MAX_SHORT_DATA + 1;
/// Largest response data field of a short APDU.
pub const MAX_RESPONSE_DATA: usize = 256;
/// Longest encoded short response: data and the two status octets.
pub const MAX_RESPONSE_LEN: usize = MAX_RESPONSE_DATA + 2;

/// Status words used by seccf (ISO 7816-4, ETSI TS 102 221, 3GPP TS 31.102 §7.3).
pub mod sw {
    /// Normal ending.
    pub const OK: u16 = 0x9000;
    /// Warning: end of file reached before reading Le octets.
    pub const END_OF_FILE: u16 = 0x6282;
    /// Memory problem (the card could not store its state).
    pub const MEMORY_PROBLEM: u16 = 0x6581;
    /// Wrong length (Lc or Le).
    pub const WRONG_LENGTH: u16 = 0x6700;
    /// Security status not satisfied (e.g. writing a read-only file).
    pub const SECURITY_STATUS: u16 = 0x6982;
    /// Conditions of use not satisfied (e.g. NAF derivation without a bootstrap).
    pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
    /// Command not allowed: no current EF.
    pub const NO_CURRENT_EF: u16 = 0x6986;
    /// Incorrect parameters in the data field.
    pub const WRONG_DATA: u16 = 0x6A80;
    /// Function not supported.
    pub const FUNCTION_NOT_SUPPORTED: u16 = 0x6A81;
    /// File or application not found.
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    /// Incorrect P1 or P2.
    pub const INCORRECT_P1_P2: u16 = 0x6A86;
    /// Offset outside the EF.
    pub const WRONG_OFFSET: u16 = 0x6B00;
    /// Instruction not supported.
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    /// AUTHENTICATE: authentication error, incorrect MAC (TS 31.102).
    pub const AUTH_MAC_FAILURE: u16 = 0x9862;
    /// AUTHENTICATE: authentication error, security context not supported (TS 31.102).
    pub const AUTH_CONTEXT_NOT_SUPPORTED: u16 = 0x9864;
    /// SW1 of "response bytes still available" (SW2 = how many; fetch with GET RESPONSE).
    pub const SW1_MORE_DATA: u8 = 0x61;
    /// SW1 of "wrong Le" (SW2 = the exact length to ask for).
    pub const SW1_WRONG_LE: u8 = 0x6C;
}

/// Why an APDU could not be parsed or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// Fewer octets than a header (command) or a status word (response).
    #[error("APDU too short")]
    TooShort,
    /// More octets than the short form allows.
    #[error("APDU longer than the short form allows")]
    TooLong,
    /// Lc = 00 with a body: the extended-length form, which is not supported.
    #[error("extended-length APDUs are not supported")]
    ExtendedLength,
    /// The body length matches neither case 3 (Lc data) nor case 4 (Lc data Le).
    #[error("APDU body length does not match Lc")]
    LengthMismatch,
    /// Command data longer than 255 octets (encoding only).
    #[error("command data longer than 255 octets")]
    DataTooLong,
    /// Le of 0 or above 256 (encoding only; use `None` for "no response data").
    #[error("Le must be 1..=256")]
    BadLe,
}

/// A command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: Vec<u8>,
    /// Maximum response length expected, 1..=256; `None` when no data is expected.
    pub le: Option<u16>,
}

impl fmt::Debug for Command {
    /// Prints the header and the data length only: data may carry a PIN or key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command {{ {:02X} {:02X} {:02X} {:02X}, data: {} octets, le: {:?} }}",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    /// Encodes the short form, or explains why it cannot.
    pub fn try_encode(&self) -> Result<Vec<u8>, ApduError> {
        if self.data.len() > MAX_SHORT_DATA {
            return Err(ApduError::DataTooLong);
        }
        let mut out = Vec::with_capacity(6 + self.data.len());
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            // Fits: checked against MAX_SHORT_DATA above.
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        match self.le {
            None => {}
            Some(MAX_SHORT_LE) => out.push(0),
            Some(n @ 1..=255) => out.push(n as u8),
            Some(_) => return Err(ApduError::BadLe),
        }
        Ok(out)
    }

    /// Encodes the short form. A command that cannot be encoded (data over 255 octets, Le
    /// 0 or over 256) yields an empty vector, which every card and [`Command::parse`]
    /// reject; call [`Command::try_encode`] to learn why.
    pub fn encode(&self) -> Vec<u8> {
        self.try_encode().unwrap_or_default()
    }

    /// Parses a short command APDU (cases 1 to 4).
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        if bytes.len() > MAX_COMMAND_LEN {
            return Err(ApduError::TooLong);
        }
        let (header, body) = bytes.split_at_checked(4).ok_or(ApduError::TooShort)?;
        let &[cla, ins, p1, p2] = header else {
            return Err(ApduError::TooShort);
        };
        let decode_le = |b: u8| if b == 0 { MAX_SHORT_LE } else { u16::from(b) };
        let (data, le) = match body {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(decode_le(*le))),
            [0, ..] => return Err(ApduError::ExtendedLength),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if rest.len() == lc {
                    (rest.to_vec(), None)
                } else if rest.len() == lc + 1 {
                    let (data, le) = rest.split_at(lc);
                    let le = le.first().copied().ok_or(ApduError::LengthMismatch)?;
                    (data.to_vec(), Some(decode_le(le)))
                } else {
                    return Err(ApduError::LengthMismatch);
                }
            }
        };
        Ok(Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }
}

/// A response APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (RES, CK, IK ... for AUTHENTICATE: treat as secret).
    pub data: Vec<u8>,
    /// Status word SW1 SW2.
    pub sw: u16,
}

impl fmt::Debug for Response {
    /// Prints the status word and the data length only: data may be key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response {{ data: {} octets, sw: {:04X} }}",
            self.data.len(),
            self.sw
        )
    }
}

impl Response {
    /// A response with data and status word.
    pub fn new(data: Vec<u8>, sw: u16) -> Self {
        Response { data, sw }
    }

    /// A bare status word.
    pub fn status(sw: u16) -> Self {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    /// SW1.
    pub fn sw1(&self) -> u8 {
        self.sw.to_be_bytes()[0]
    }

    /// SW2.
    pub fn sw2(&self) -> u8 {
        self.sw.to_be_bytes()[1]
    }

    /// `data || SW1 SW2`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }

    /// Parses `data || SW1 SW2` with at most 256 data octets.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        if bytes.len() > MAX_RESPONSE_LEN {
            return Err(ApduError::TooLong);
        }
        let split = bytes.len().checked_sub(2).ok_or(ApduError::TooShort)?;
        let (data, sw) = bytes.split_at(split);
        let &[sw1, sw2] = sw else {
            return Err(ApduError::TooShort);
        };
        Ok(Response {
            data: data.to_vec(),
            sw: u16::from_be_bytes([sw1, sw2]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(data: &[u8], le: Option<u16>) -> Command {
        Command {
            cla: 0x00,
            ins: 0x88,
            p1: 0x00,
            p2: 0x81,
            data: data.to_vec(),
            le,
        }
    }

    #[test]
    fn four_cases_round_trip() {
        let cases = [
            (cmd(&[], None), vec![0x00, 0x88, 0x00, 0x81]),
            (cmd(&[], Some(256)), vec![0x00, 0x88, 0x00, 0x81, 0x00]),
            (cmd(&[], Some(16)), vec![0x00, 0x88, 0x00, 0x81, 0x10]),
            (cmd(&[1, 2], None), vec![0x00, 0x88, 0x00, 0x81, 0x02, 1, 2]),
            (
                cmd(&[1, 2], Some(256)),
                vec![0x00, 0x88, 0x00, 0x81, 0x02, 1, 2, 0x00],
            ),
        ];
        for (c, wire) in cases {
            assert_eq!(c.encode(), wire, "{c:?}");
            assert_eq!(Command::parse(&wire).unwrap(), c);
        }
        let full = cmd(&[0xaa; 255], Some(255));
        assert_eq!(Command::parse(&full.encode()).unwrap(), full);
    }

    #[test]
    fn encode_limits() {
        assert_eq!(
            cmd(&[0; 256], None).try_encode(),
            Err(ApduError::DataTooLong)
        );
        assert!(cmd(&[0; 256], None).encode().is_empty());
        assert_eq!(cmd(&[], Some(0)).try_encode(), Err(ApduError::BadLe));
        assert_eq!(cmd(&[], Some(257)).try_encode(), Err(ApduError::BadLe));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Command::parse(&[0, 0, 0]), Err(ApduError::TooShort));
        assert_eq!(
            Command::parse(&[0, 0, 0, 0, 0, 1, 2]),
            Err(ApduError::ExtendedLength)
        );
        assert_eq!(
            Command::parse(&[0, 0, 0, 0, 3, 1]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            Command::parse(&[0, 0, 0, 0, 1, 1, 2, 3]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(Command::parse(&[0; 262]), Err(ApduError::TooLong));
        assert_eq!(Response::parse(&[0x90]), Err(ApduError::TooShort));
        assert_eq!(Response::parse(&[0; 259]), Err(ApduError::TooLong));
    }

    #[test]
    fn response_round_trip_and_debug() {
        let r = Response::new(vec![0xdb, 0x08, 0x11], 0x9000);
        assert_eq!(r.encode(), [0xdb, 0x08, 0x11, 0x90, 0x00]);
        assert_eq!(Response::parse(&r.encode()).unwrap(), r);
        assert_eq!(
            Response::parse(&[0x98, 0x62]).unwrap(),
            Response::status(0x9862)
        );
        assert_eq!((r.sw1(), r.sw2()), (0x90, 0x00));
        let d = format!("{r:?}");
        assert!(d.contains("3 octets") && !d.contains("11"), "{d}");
    }
}
