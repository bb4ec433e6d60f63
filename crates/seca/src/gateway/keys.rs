//! The bootstrapping context behind a gateway client or tunnel: bootstrap when there
//! is none, hand out a key deriver for it, bootstrap again (once per rejection) when
//! a gateway refuses the B-TID.

use std::sync::Arc;

use seccf_uicc::CardTransport;

use crate::agent::{unix_now, Agent, NafKeyDeriver};
use crate::error::SecaError;

/// A usable context: its key deriver, and whether it was bootstrapped just now (a
/// gateway that refuses a fresh B-TID would refuse a newer one too).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) deriver: Arc<NafKeyDeriver>,
    pub(crate) fresh: bool,
}

/// The agent plus where it bootstraps.
pub(crate) struct KeyKeeper<T: CardTransport> {
    agent: Agent<T>,
    ub_url: Option<String>,
    current: Option<Arc<NafKeyDeriver>>,
}

impl<T: CardTransport + 'static> KeyKeeper<T> {
    pub(crate) fn new(agent: Agent<T>, ub_url: Option<String>) -> Self {
        KeyKeeper {
            agent,
            ub_url,
            current: None,
        }
    }

    pub(crate) fn agent_mut(&mut self) -> &mut Agent<T> {
        // The caller may bootstrap or forget behind our back: drop the cached deriver.
        self.current = None;
        &mut self.agent
    }

    /// Whether a fresh bootstrap is possible at all.
    pub(crate) fn can_bootstrap(&self) -> bool {
        self.ub_url.is_some()
    }

    pub(crate) fn into_agent(self) -> Agent<T> {
        self.agent
    }

    /// The valid context (bootstrapping first if there is none and a Ub URL is known).
    pub(crate) async fn ensure(&mut self) -> Result<Keys, SecaError> {
        if let Some(ctx) = self.agent.context(unix_now())? {
            if let Some(d) = self.current.as_ref().filter(|d| d.context() == &ctx) {
                return Ok(Keys {
                    deriver: d.clone(),
                    fresh: false,
                });
            }
            let d = Arc::new(self.agent.naf_key_deriver(&ctx)?);
            self.current = Some(d.clone());
            return Ok(Keys {
                deriver: d,
                fresh: false,
            });
        }
        let Some(ub_url) = self.ub_url.clone() else {
            return Err(SecaError::NotBootstrapped);
        };
        self.bootstrap(&ub_url).await
    }

    /// A new context after a gateway refused `rejected_btid`. If the current context
    /// is already another one (a concurrent connection re-bootstrapped), that one is
    /// returned instead of bootstrapping again.
    pub(crate) async fn rebootstrap(&mut self, rejected_btid: &str) -> Result<Keys, SecaError> {
        if let Some(ctx) = self.agent.context(unix_now())? {
            if ctx.btid != rejected_btid {
                return self.ensure().await;
            }
        }
        let Some(ub_url) = self.ub_url.clone() else {
            return Err(SecaError::Rejected(
                "the gateway refused the B-TID and no Ub URL is configured to bootstrap again"
                    .into(),
            ));
        };
        tracing::info!(
            btid = rejected_btid,
            "gateway refused the B-TID; bootstrapping again"
        );
        self.current = None;
        self.agent.forget_context()?;
        self.bootstrap(&ub_url).await
    }

    async fn bootstrap(&mut self, ub_url: &str) -> Result<Keys, SecaError> {
        let ctx = self.agent.bootstrap(ub_url).await?;
        let d = Arc::new(self.agent.naf_key_deriver(&ctx)?);
        self.current = Some(d.clone());
        Ok(Keys {
            deriver: d,
            fresh: true,
        })
    }
}
