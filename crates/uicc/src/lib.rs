//! The identity module of seccf: a USIM driven with APDUs.
//!
//! A real USIM is only reachable through ISO 7816-4 APDUs, so the security agent talks
//! APDUs to every card, software or hardware, through [`CardTransport`]:
//!
//! - [`apdu`]: short command/response APDUs (bounded, sans-IO parsing and encoding);
//! - [`authenticate`]: the data fields of USIM AUTHENTICATE in the 3G and GBA contexts;
//! - [`ef`]: EF_GBABP, EF_UST and an ISIM-like EF_IMPI, their ids and content codecs;
//! - [`soft`]: [`soft::SoftUsim`], a software USIM (MILENAGE, SQN window persisted across
//!   restarts, GBA_ME and GBA_U with Ks kept inside the card) that processes APDUs;
//! - [`Usim`]: the operations the agent needs (3G AKA, GBA_U bootstrap and NAF
//!   derivation, EF_GBABP, IMPI, GBA_U support), over any transport.
//!
//! What it does not do: no PC/SC transport yet (a reader only needs to implement
//! [`CardTransport`]), no PIN verification, no FCP decoding, no logical channels, no
//! extended-length APDUs, no GSM/MBMS security contexts, no EF_GBANL.
//!
//! GBA_U on the soft card depends on the AUTN* formula of [`seccf_gba::aka::autn_star`],
//! which is UNCONFIRMED; the soft card and the KMC share that one function.

use std::path::PathBuf;

pub mod apdu;
pub mod authenticate;
pub mod ef;
pub mod soft;
mod usim;

pub use ef::Gbabp;
pub use seccf_gba::naf::NafId;
pub use seccf_gba::Secret;
pub use usim::{AkaOutcome, GbaUOutcome, Usim, UsimError};

/// Anything that exchanges APDUs with a card (software card now, PC/SC later).
///
/// `command` is one encoded command APDU; the result is the encoded response
/// (`data || SW1 SW2`). Status words are not errors here: `Err` means the card could not
/// be reached or could not run (reader gone, soft card state not writable).
pub trait CardTransport: Send {
    /// Sends one command APDU and returns the response APDU.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError>;
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit(command)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        (**self).transmit(command)
    }
}

/// Failures below the APDU level, and loading a software card. Messages never contain
/// key material (configuration errors name the line, not the value).
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The transport failed (for a reader: card removed, reader error).
    #[error("card transport failed: {0}")]
    Transport(String),
    /// A file of the software card could not be read or written.
    #[error("soft USIM file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The software card's configuration is invalid.
    #[error("invalid soft USIM configuration: {0}")]
    Config(String),
    /// The software card's state file is invalid (refused rather than reset, so a
    /// damaged file cannot re-open the card to replayed challenges).
    #[error("invalid soft USIM state file {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
