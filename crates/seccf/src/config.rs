//! The seccf TOML configuration: parsing (pure), environment overrides, loading.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use seccf_secret::MasterKey;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Persistent state of the KMC (required when `[kmc]` is present).
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// Key management centre; absent = not run.
    #[serde(default)]
    pub kmc: Option<seccf_kmc::KmcConfig>,
    /// Security gateway; absent = not run.
    #[serde(default)]
    pub osg: Option<seccf_osg::OsgConfig>,
}

/// `[log]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (default) or `text`.
    pub format: String,
    /// tracing filter, e.g. `info` or `seccf_kmc=debug`.
    pub level: String,
    /// Append-only file receiving the audit trail (one JSON object per line).
    pub audit_file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "json".into(),
            level: "info".into(),
            audit_file: None,
        }
    }
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file.
    pub path: PathBuf,
    /// File holding the master key (64 hex digits or base64 of 32 bytes).
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// Name of an environment variable holding the master key.
    #[serde(default)]
    pub master_key_env: Option<String>,
}

impl StoreConfig {
    /// Reads the master key from the file or environment variable named in the config.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        match (&self.master_key_file, &self.master_key_env) {
            (Some(path), None) => {
                let text = zeroize::Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading master key file {}", path.display()))?,
                );
                MasterKey::parse(&text)
                    .with_context(|| format!("master key file {}", path.display()))
            }
            (None, Some(var)) => {
                let text = zeroize::Zeroizing::new(std::env::var(var).with_context(|| {
                    format!("environment variable {var} (store.master_key_env) is not set")
                })?);
                MasterKey::parse(&text).with_context(|| format!("master key in ${var}"))
            }
            _ => bail!("[store] needs exactly one of master_key_file or master_key_env"),
        }
    }
}

/// Environment overrides: `SECCF__KMC__UB__LISTEN=0.0.0.0:80` sets `kmc.ub.listen`.
/// Values that parse as TOML scalars (numbers, booleans) keep that type; anything else
/// is a string.
pub fn apply_env_overrides(
    value: &mut toml::Value,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("SECCF__") else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
        if keys.iter().any(|k| k.is_empty()) {
            bail!("bad override variable {name}: empty key segment");
        }
        let parsed = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table())
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut cur = &mut *value;
        for (i, k) in keys.iter().enumerate() {
            let table = cur
                .as_table_mut()
                .with_context(|| format!("override {name}: {k} is not inside a table"))?;
            if i + 1 == keys.len() {
                table.insert(k.clone(), parsed.clone());
                break;
            }
            cur = table
                .entry(k.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
    }
    Ok(())
}

impl Config {
    /// The `[store]` table, or an error naming what needs it.
    pub fn store(&self) -> anyhow::Result<&StoreConfig> {
        self.store.as_ref().context(
            "the configuration has no [store] table (the KMC and the admin commands need one)",
        )
    }

    /// Parses TOML text with overrides applied (pure: no file or socket touched).
    pub fn from_str_with_env(
        text: &str,
        vars: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut value: toml::Value =
            toml::from_str(text).context("configuration is not valid TOML")?;
        apply_env_overrides(&mut value, vars)?;
        let cfg: Config = value.try_into().context("invalid configuration")?;
        if let Some(k) = &cfg.kmc {
            k.validate()?;
            cfg.store()?;
        }
        if let Some(o) = &cfg.osg {
            o.validate()?;
        }
        Ok(cfg)
    }

    /// Reads and parses a file, applying `SECCF__*` environment overrides.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        Self::from_str_with_env(&text, std::env::vars())
            .with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[store]
path = "/tmp/x.sqlite"
master_key_env = "MK"
"#;

    #[test]
    fn env_overrides_types_and_nesting() {
        let mut v: toml::Value = toml::from_str(MIN).unwrap();
        apply_env_overrides(
            &mut v,
            vec![
                ("SECCF__LOG__LEVEL".to_string(), "debug".to_string()),
                (
                    "SECCF__KMC__KEY_LIFETIME_SECS".to_string(),
                    "600".to_string(),
                ),
                ("OTHER".to_string(), "x".to_string()),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(v["log"]["level"].as_str(), Some("debug"));
        assert_eq!(v["kmc"]["key_lifetime_secs"].as_integer(), Some(600));
    }

    #[test]
    fn unknown_fields_rejected() {
        let bad = format!("{MIN}\n[log]\nformat = \"json\"\nlevle = \"x\"\n");
        let err = Config::from_str_with_env(&bad, std::iter::empty()).unwrap_err();
        assert!(format!("{err:#}").contains("levle"), "{err:#}");
    }

    #[test]
    fn master_key_from_env() {
        let cfg = Config::from_str_with_env(MIN, std::iter::empty()).unwrap();
        assert!(
            cfg.store().unwrap().master_key().is_err(),
            "MK unset must fail"
        );
    }
}
