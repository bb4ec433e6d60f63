//! The few KMC admin REST calls a load run needs: create and delete test subscribers.

use anyhow::{bail, Context};
use seccf_secret::Secret;
use zeroize::Zeroizing;

use crate::dev::loopback_url;

/// KMC admin API client (`/admin/v1`, bearer token).
pub struct Admin {
    base: String,
    authorization: Zeroizing<String>,
}

impl Admin {
    /// `base` is the admin URL from dev.json (loopback only).
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        loopback_url(base).context("admin URL")?;
        Ok(Admin {
            base: base.trim_end_matches('/').to_string(),
            authorization: Zeroizing::new(format!("Bearer {token}")),
        })
    }

    async fn call(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let resp = seccf_seca::http::request(
            &url,
            method,
            &[
                ("authorization", self.authorization.as_str()),
                ("content-type", "application/json"),
            ],
            body,
            None,
        )
        .await
        .with_context(|| format!("{method} {path}"))?;
        Ok((
            resp.status,
            String::from_utf8_lossy(&resp.body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ))
    }

    /// `POST /admin/v1/subscribers` with K and OPc (GBA_ME, default AMF and SQN).
    pub async fn create_subscriber(
        &self,
        impi: &str,
        k: &Secret<16>,
        opc: &Secret<16>,
    ) -> anyhow::Result<()> {
        let k_hex = k.reveal_hex();
        let opc_hex = opc.reveal_hex();
        // Built by hand into a zeroizing buffer: a serde_json::Value would leave copies
        // of K and OPc behind in ordinary Strings.
        let body = Zeroizing::new(format!(
            "{{\"impi\":{},\"k\":\"{}\",\"opc\":\"{}\"}}",
            serde_json::to_string(impi)?,
            k_hex.as_str(),
            opc_hex.as_str()
        ));
        let (status, text) = self
            .call("POST", "/admin/v1/subscribers", body.as_bytes())
            .await?;
        if status != 201 {
            bail!("creating subscriber {impi}: HTTP {status} {text}");
        }
        Ok(())
    }

    /// `DELETE /admin/v1/subscribers/{impi}`; a subscriber that is already gone is fine.
    pub async fn delete_subscriber(&self, impi: &str) -> anyhow::Result<()> {
        let (status, text) = self
            .call("DELETE", &format!("/admin/v1/subscribers/{impi}"), b"")
            .await?;
        if status != 204 && status != 404 {
            bail!("deleting subscriber {impi}: HTTP {status} {text}");
        }
        Ok(())
    }
}
