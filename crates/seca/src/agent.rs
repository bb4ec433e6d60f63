//! The agent: identity module + Ub over HTTP(S) + context persistence.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::ssl::SslConnector;
use seccf_gba::{naf, GbaType, NafId, Secret};
use seccf_uicc::{CardTransport, Usim};

use crate::card::usim_error;
use crate::context::BootstrapContext;
use crate::error::{body_excerpt, SecaError};
use crate::http::{self, HttpResponse, Scheme, Url};
use crate::state::StateDir;
use crate::ub::{self, BootstrappingInfo, ChallengeAnswer};

/// Challenges answered in one bootstrap: the first, plus one after a
/// resynchronisation (or after the BSF replaced an expired nonce).
pub const MAX_ROUNDS: usize = 2;

/// `User-Agent` of a GBA_U agent: the `3gpp-gba-uicc` token tells the BSF that the
/// card runs GBA_U (gba.md §3.1, S17).
pub const USER_AGENT_GBA_U: &str = "seccf-seca/0.1 3gpp-gba-uicc";

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The agent: identity module + Ub over HTTP(S) + context persistence.
///
/// It owns the card. Every card command runs synchronously on the calling task; a
/// command of the software card takes microseconds, a PC/SC card some milliseconds.
///
/// The card sits behind a mutex shared with the [`NafKeyDeriver`]s the agent hands
/// out: PSK-TLS asks for the NAF key from inside OpenSSL's synchronous handshake
/// callback, where `&mut Agent` is out of reach (GBA_U keys come from the card). The
/// lock is only ever held for one card command, never across an `.await`.
pub struct Agent<T: CardTransport> {
    usim: Arc<Mutex<Usim<T>>>,
    impi: String,
    gba_u: bool,
    state: Option<StateDir>,
    ub_ca: Option<PathBuf>,
    current: Option<BootstrapContext>,
}

impl<T: CardTransport> std::fmt::Debug for Agent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("impi", &self.impi)
            .field("gba_u", &self.gba_u)
            .field("state", &self.state)
            .field("ub_ca", &self.ub_ca)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl<T: CardTransport> Agent<T> {
    /// Reads IMPI and GBA_U support from the card.
    pub fn new(mut usim: Usim<T>) -> Result<Self, SecaError> {
        let impi = usim.read_impi().map_err(usim_error)?;
        seccf_gba::impi::validate_impi(&impi)
            .map_err(|e| SecaError::Card(format!("the card's IMPI is not usable: {e}")))?;
        let gba_u = usim.supports_gba_u().map_err(usim_error)?;
        Ok(Agent {
            usim: Arc::new(Mutex::new(usim)),
            impi,
            gba_u,
            state: None,
            ub_ca: None,
            current: None,
        })
    }

    /// With a state directory: the context is persisted sealed (AES-256-GCM, MasterKey from
    /// `<dir>/agent.key`, created 0600 with a random key on first use; AAD binds it to the IMPI)
    /// in `<dir>/context.sealed`, written atomically (temp + fsync + rename).
    pub fn with_state_dir(mut self, dir: PathBuf) -> Result<Self, SecaError> {
        self.state = Some(StateDir::open(dir)?);
        Ok(self)
    }

    /// Optional CA for https:// Ub URLs. Without it, https uses the system trust store.
    /// The file is read at the next [`Agent::bootstrap`].
    pub fn with_ub_tls(mut self, ca_file: PathBuf) -> Self {
        self.ub_ca = Some(ca_file);
        self
    }

    /// The card's IMPI.
    pub fn impi(&self) -> &str {
        &self.impi
    }

    /// GBA_U when the card runs GBA_U, else GBA_ME.
    pub fn gba_type(&self) -> GbaType {
        if self.gba_u {
            GbaType::U
        } else {
            GbaType::Me
        }
    }

    /// The card, for operations the agent does not wrap. Do not hold the guard across
    /// an `.await`: key derivers of this agent wait for it.
    pub fn usim_mut(&mut self) -> MutexGuard<'_, Usim<T>> {
        lock_card(&self.usim)
    }

    fn connector(&self, url: &Url) -> Result<Option<SslConnector>, SecaError> {
        match (url.scheme, &self.ub_ca) {
            (Scheme::Https, Some(ca)) => {
                let cfg = seccf_tls::client::ClientTlsConfig {
                    ca_file: ca.clone(),
                    client_cert_file: None,
                    client_key_file: None,
                };
                seccf_tls::client::build_connector(&cfg)
                    .map(Some)
                    .map_err(|e| SecaError::Tls(e.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// Full Ub run against `ub_url` (http:// or https://; the request URI is the URL's path, default "/").
    /// Handles one resync round (at most 2 rounds, then error), verifies rspauth, stores the context
    /// (GBA_U: also EF_GBABP via write_gbabp). Bounded: response bodies <= 64 KiB, 15 s timeout per request.
    ///
    /// The realm of the initial request is the BSF host name (TS 24.109 A.3).
    pub async fn bootstrap(&mut self, ub_url: &str) -> Result<BootstrapContext, SecaError> {
        let url = Url::parse(ub_url)?;
        let connector = self.connector(&url)?;
        let user_agent = if self.gba_u {
            USER_AGENT_GBA_U
        } else {
            http::USER_AGENT
        };
        let uri = url.path.clone();
        let send = |authorization: String| {
            let url = &url;
            let connector = connector.as_ref();
            async move {
                http::request_url(
                    url,
                    "GET",
                    &[
                        ("authorization", &authorization),
                        ("user-agent", user_agent),
                    ],
                    b"",
                    connector,
                )
                .await
            }
        };

        let mut resp = send(ub::initial_authorization(&self.impi, &url.host, &uri)).await?;
        let mut rounds = 0;
        loop {
            if resp.status != 401 {
                return Err(status_error(&resp));
            }
            if rounds == MAX_ROUNDS {
                return Err(SecaError::TooManyResyncs);
            }
            rounds += 1;
            let challenge = digest_challenge(&resp)?;
            let cnonce = seccf_digest::new_cnonce().map_err(|_| SecaError::Random)?;
            let answer = ub::answer_challenge(
                &mut *lock_card(&self.usim),
                self.gba_u,
                &self.impi,
                &challenge,
                "GET",
                &uri,
                &cnonce,
            )?;
            match answer {
                ChallengeAnswer::Resync { authorization } => {
                    tracing::info!(impi = %self.impi, "card reported SQN out of range; resynchronising");
                    resp = send(authorization).await?;
                }
                ChallengeAnswer::Respond {
                    authorization,
                    pending,
                } => {
                    resp = send(authorization).await?;
                    if resp.status == 200 {
                        let (ctx, info) = ub::finish_detailed(
                            pending,
                            resp.header("authentication-info"),
                            &resp.body,
                            unix_now(),
                        )?;
                        self.install(&ctx, &info)?;
                        tracing::info!(
                            btid = %ctx.btid,
                            gba_type = %ctx.gba_type,
                            expires_at = ctx.expires_at,
                            "bootstrapped"
                        );
                        return Ok(ctx);
                    }
                    // A 401 here is a fresh challenge (the BSF dropped our nonce); the
                    // loop answers it while rounds remain. Anything else is an error.
                }
            }
        }
    }

    /// Makes `ctx` the current context: EF_GBABP for GBA_U, the state dir, memory.
    fn install(
        &mut self,
        ctx: &BootstrapContext,
        info: &BootstrappingInfo,
    ) -> Result<(), SecaError> {
        if ctx.gba_type == GbaType::U {
            // EF_GBABP holds the BSF's lifetime as sent (its clock), in RFC 3339 text.
            let lifetime = ub::format_time(info.lifetime_unix)
                .ok_or_else(|| SecaError::BadResponse("lifetime out of range".into()))?;
            lock_card(&self.usim)
                .write_gbabp(&ctx.rand, &ctx.btid, &lifetime)
                .map_err(usim_error)?;
        }
        if let Some(state) = &self.state {
            state.save(ctx)?;
        }
        self.current = Some(ctx.clone());
        Ok(())
    }

    /// The current context if still valid (memory, else the state dir).
    ///
    /// A GBA_U context is only returned while the card still holds it (EF_GBABP shows
    /// the same RAND and B-TID): Ks lives in the card, and another bootstrap on the
    /// card replaces it.
    pub fn context(&mut self, now_unix: i64) -> Result<Option<BootstrapContext>, SecaError> {
        if let Some(c) = &self.current {
            if c.is_valid(now_unix) {
                return Ok(Some(c.clone()));
            }
            self.current = None;
        }
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let Some(stored) = state.load(&self.impi)? else {
            return Ok(None);
        };
        if !stored.is_valid(now_unix) || stored.gba_type != self.gba_type() {
            return Ok(None);
        }
        if stored.gba_type == GbaType::U && !self.card_holds(&stored)? {
            return Ok(None);
        }
        self.current = Some(stored.clone());
        Ok(Some(stored))
    }

    /// Whether the card's EF_GBABP names this context.
    fn card_holds(&mut self, ctx: &BootstrapContext) -> Result<bool, SecaError> {
        card_holds(&mut lock_card(&self.usim), ctx)
    }

    /// Bootstrap only if there is no valid context.
    pub async fn ensure_bootstrapped(
        &mut self,
        ub_url: &str,
    ) -> Result<BootstrapContext, SecaError> {
        if let Some(ctx) = self.context(unix_now())? {
            return Ok(ctx);
        }
        self.bootstrap(ub_url).await
    }

    /// Forgets the current context (memory and state dir), for example after a NAF
    /// rejected the B-TID; the next [`Agent::ensure_bootstrapped`] bootstraps again.
    pub fn forget_context(&mut self) -> Result<(), SecaError> {
        self.current = None;
        match &self.state {
            Some(s) => s.clear(),
            None => Ok(()),
        }
    }

    /// The ME-side NAF key: Ks_NAF (GBA_ME, derived from Ks) or Ks_ext_NAF (GBA_U, from the card).
    ///
    /// `ctx` must be this agent's context (same IMPI); its expiry is the caller's to
    /// check (take it from [`Agent::context`]). For GBA_U the card must still hold
    /// `ctx`, otherwise the card would derive from another Ks and RAND.
    pub fn naf_key(
        &mut self,
        ctx: &BootstrapContext,
        naf_id: &NafId,
    ) -> Result<Secret<32>, SecaError> {
        if ctx.impi != self.impi {
            return Err(SecaError::NotBootstrapped);
        }
        derive_naf_key(ctx, naf_id, &*self.usim)
    }
}

impl<T: CardTransport + 'static> Agent<T> {
    /// A handle that derives the ME-side NAF keys of `ctx` ([`Agent::naf_key`]) without
    /// `&mut Agent`: it is `Send + Sync + 'static`, so synchronous callbacks (the
    /// PSK-TLS client callback) can call it. For GBA_U it shares the card with the
    /// agent; a later bootstrap on the card makes it fail with
    /// [`SecaError::NotBootstrapped`] rather than derive from another Ks.
    pub fn naf_key_deriver(&self, ctx: &BootstrapContext) -> Result<NafKeyDeriver, SecaError> {
        if ctx.impi != self.impi {
            return Err(SecaError::NotBootstrapped);
        }
        let card: Arc<dyn CardNafKeys> = self.usim.clone();
        Ok(NafKeyDeriver {
            ctx: ctx.clone(),
            card,
        })
    }
}

/// Derives the ME-side NAF keys of one bootstrapping context; see
/// [`Agent::naf_key_deriver`]. Its `Debug` output shows the context with Ks redacted.
#[derive(Clone)]
pub struct NafKeyDeriver {
    ctx: BootstrapContext,
    card: Arc<dyn CardNafKeys>,
}

impl std::fmt::Debug for NafKeyDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NafKeyDeriver")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl NafKeyDeriver {
    /// The context the keys come from.
    pub fn context(&self) -> &BootstrapContext {
        &self.ctx
    }

    /// The context's B-TID.
    pub fn btid(&self) -> &str {
        &self.ctx.btid
    }

    /// Ks_NAF (GBA_ME) or Ks_ext_NAF (GBA_U) for `naf_id`.
    pub fn derive(&self, naf_id: &NafId) -> Result<Secret<32>, SecaError> {
        match self.ctx.gba_type {
            GbaType::Me => derive_naf_key(&self.ctx, naf_id, &NoCard),
            GbaType::U => self.card.ext_naf_key(&self.ctx, naf_id),
        }
    }
}

/// The card side of a [`NafKeyDeriver`], with the card's transport type erased.
trait CardNafKeys: Send + Sync {
    /// Ks_ext_NAF for `naf_id` from the card, if the card still holds `ctx`.
    fn ext_naf_key(&self, ctx: &BootstrapContext, naf_id: &NafId) -> Result<Secret<32>, SecaError>;
}

impl<T: CardTransport> CardNafKeys for Mutex<Usim<T>> {
    fn ext_naf_key(&self, ctx: &BootstrapContext, naf_id: &NafId) -> Result<Secret<32>, SecaError> {
        let mut card = lock_card(self);
        if !card_holds(&mut card, ctx)? {
            return Err(SecaError::NotBootstrapped);
        }
        card.gba_u_naf_derive(naf_id, &ctx.impi).map_err(usim_error)
    }
}

/// Stands in for the card where a GBA_ME key needs none.
struct NoCard;

impl CardNafKeys for NoCard {
    fn ext_naf_key(&self, _: &BootstrapContext, _: &NafId) -> Result<Secret<32>, SecaError> {
        Err(SecaError::NotBootstrapped)
    }
}

fn derive_naf_key(
    ctx: &BootstrapContext,
    naf_id: &NafId,
    card: &dyn CardNafKeys,
) -> Result<Secret<32>, SecaError> {
    match ctx.gba_type {
        GbaType::Me => {
            let ks = ctx.ks.as_ref().ok_or(SecaError::NotBootstrapped)?;
            naf::ks_naf(ks, &ctx.rand, &ctx.impi, naf_id).map_err(|e| SecaError::Kdf(e.to_string()))
        }
        GbaType::U => card.ext_naf_key(ctx, naf_id),
    }
}

/// Locks the card. A panic while the lock was held (a card driver bug) leaves the
/// card in whatever state the command left it; the card answers the next command
/// on its own terms, so the poison flag is not a reason to refuse it.
fn lock_card<U>(card: &Mutex<U>) -> MutexGuard<'_, U> {
    card.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the card's EF_GBABP names this context.
fn card_holds<T: CardTransport>(
    card: &mut Usim<T>,
    ctx: &BootstrapContext,
) -> Result<bool, SecaError> {
    let gbabp = card.read_gbabp().map_err(usim_error)?;
    Ok(gbabp.is_some_and(|g| g.rand == ctx.rand && g.btid == ctx.btid))
}

fn status_error(resp: &HttpResponse) -> SecaError {
    SecaError::Status {
        code: resp.status,
        body: body_excerpt(&resp.body),
    }
}

/// The Digest challenge among the response's `WWW-Authenticate` values.
fn digest_challenge(resp: &HttpResponse) -> Result<String, SecaError> {
    resp.header_values("www-authenticate")
        .find(|v| {
            v.trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
        })
        .map(str::to_owned)
        .ok_or_else(|| SecaError::BadResponse("401 without a Digest WWW-Authenticate".into()))
}
