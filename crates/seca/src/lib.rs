//! seccf-seca: the SEC_CF security agent library (terminal side).
//!
//! What it does:
//! - [`ub`]: the Ub client steps of GBA bootstrapping (TS 24.109 clause 4, RFC 3310
//!   HTTP Digest AKA) as sans-IO functions: the initial request, answering the BSF's
//!   challenge with the card (GBA_ME: AUTHENTICATE in 3G context; GBA_U: GBA
//!   bootstrapping mode, Ks stays in the card), resynchronisation with `auts`, and
//!   checking the BSF's `rspauth` and BootstrappingInfo before trusting the B-TID.
//! - [`Agent`]: drives a [`seccf_uicc::Usim`] through a whole bootstrap over HTTP or
//!   HTTPS ([`http`], a small bounded hyper client), keeps the resulting
//!   [`BootstrapContext`] in memory and, with a state directory, sealed at rest
//!   (AES-256-GCM, bound to the IMPI), and derives the ME-side NAF key
//!   (Ks_NAF for GBA_ME, Ks_ext_NAF from the card for GBA_U), also through a
//!   [`NafKeyDeriver`] that synchronous TLS callbacks can call.
//! - [`gateway`]: the Ua side towards SEC_CF gateways (SEC-1, TS 33.222): an HTTP(S)
//!   client that bootstraps when needed, offers PSK-TLS and certificate TLS in one
//!   handshake, answers GBA Digest challenges, and bootstraps again once when a gateway
//!   refuses the B-TID; the NAF_Id rules of each case are in [`gateway::ua`].
//! - [`tunnel`]: a local TCP port forwarded over PSK-TLS to a gateway's TCP listener.
//!
//! What it does not do: it is not a BSF or a NAF; it has no TMPI support (the initial
//! request always carries the IMPI), no GBA push, no 2G GBA, GBA_Digest or AKMA, no
//! Ks_int_NAF use (`3GPP-bootstrapping-uicc`), no mutual certificate TLS towards
//! gateways, no DTLS, SIP or HTTP/2, and no PC/SC: the card is whatever implements
//! [`seccf_uicc::CardTransport`].
//!
//! Secrets (RES, CK, IK, Ks, NAF keys, the state key) are held in `seccf_secret`
//! types; no error, log line or `Debug` output contains one.

mod agent;
mod card;
mod context;
mod error;
pub mod gateway;
pub mod http;
mod state;
pub mod tunnel;
pub mod ub;

pub use agent::{Agent, NafKeyDeriver, MAX_ROUNDS, USER_AGENT_GBA_U};
pub use context::{
    BootstrapContext, MAX_BTID_LEN, MAX_IMPI_LEN, MAX_RECORD_LEN, VALIDITY_MARGIN_SECS,
};
pub use error::{SecaError, STATUS_BODY_EXCERPT};
pub use state::{CONTEXT_FILE, KEY_FILE};
