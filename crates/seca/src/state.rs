//! The agent's state directory: the bootstrapping context sealed at rest.
//!
//! - `<dir>/agent.key`: the AES-256-GCM master key, 64 hex digits, created with mode
//!   0600 (and `O_EXCL`, so two agents starting together agree on one key) on first
//!   use. A key file readable by group or others is refused, as ssh does.
//! - `<dir>/context.sealed`: [`BootstrapContext::to_record`] sealed with
//!   [`MasterKey::seal`], the AAD binding it to the IMPI, so a context cannot be
//!   replayed for another identity. Written atomically: a temporary file in the same
//!   directory, fsync, rename, fsync of the directory.
//!
//! One agent per state directory at a time; concurrent writers are not coordinated
//! (the last rename wins, and each file is always complete).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use seccf_secret::{random_array, MasterKey, SealError};

use crate::context::{BootstrapContext, MAX_RECORD_LEN};
use crate::error::SecaError;

/// File name of the master key in the state directory.
pub const KEY_FILE: &str = "agent.key";
/// File name of the sealed context in the state directory.
pub const CONTEXT_FILE: &str = "context.sealed";

/// Largest sealed file read (record + version + nonce + tag, with room to spare).
const MAX_SEALED_LEN: u64 = (MAX_RECORD_LEN + 1024) as u64;
/// Largest key file read.
const MAX_KEY_FILE_LEN: u64 = 1024;

fn aad(impi: &str) -> Vec<u8> {
    let mut v = b"seccf-seca/context/v1\0".to_vec();
    v.extend_from_slice(impi.as_bytes());
    v
}

fn io_err(what: &str, path: &Path, e: io::Error) -> SecaError {
    SecaError::State(format!("{what} {}: {e}", path.display()))
}

/// An opened state directory with its master key.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    key: MasterKey,
}

impl StateDir {
    /// Creates the directory (mode 0700) if needed and loads or creates the key.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, SecaError> {
        create_dir_private(&dir)?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        Ok(StateDir { dir, key })
    }

    /// Seals and stores `ctx`, replacing any previous context.
    pub(crate) fn save(&self, ctx: &BootstrapContext) -> Result<(), SecaError> {
        let record = ctx.to_record()?;
        let sealed = self
            .key
            .seal(&aad(&ctx.impi), &record)
            .map_err(|e| SecaError::State(format!("sealing the context: {e}")))?;
        write_atomic(&self.dir, CONTEXT_FILE, &sealed)
    }

    /// The stored context for `impi`, if any. A context that does not open under this
    /// key and IMPI (another card, another key, damage) is reported as absent with a
    /// warning: it is useless to this identity and the next bootstrap replaces it.
    pub(crate) fn load(&self, impi: &str) -> Result<Option<BootstrapContext>, SecaError> {
        let path = self.dir.join(CONTEXT_FILE);
        let sealed = match read_bounded(&path, MAX_SEALED_LEN) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", &path, e)),
        };
        let record = match self.key.open(&aad(impi), &sealed) {
            Ok(r) => r,
            Err(SealError::Authentication) | Err(SealError::Malformed) => {
                tracing::warn!(
                    path = %path.display(),
                    "stored context does not open for this identity and key; ignoring it"
                );
                return Ok(None);
            }
            Err(e) => return Err(SecaError::State(format!("opening the context: {e}"))),
        };
        match BootstrapContext::from_record(record.expose()) {
            Ok(ctx) if ctx.impi == impi => Ok(Some(ctx)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable stored context");
                Ok(None)
            }
        }
    }

    /// Removes the stored context (a missing file is not an error).
    pub(crate) fn clear(&self) -> Result<(), SecaError> {
        let path = self.dir.join(CONTEXT_FILE);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &path, e)),
        }
    }
}

fn create_dir_private(dir: &Path) -> Result<(), SecaError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| io_err("creating state directory", dir, e))
}

fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(buf)
}

fn load_or_create_key(path: &Path) -> Result<MasterKey, SecaError> {
    match read_key(path) {
        Ok(k) => return Ok(k),
        Err(None) => {}
        Err(Some(e)) => return Err(e),
    }
    let key = MasterKey::generate().map_err(|_| SecaError::Random)?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            let text = key.to_hex();
            f.write_all(text.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_all())
                .map_err(|e| io_err("writing", path, e))?;
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            Ok(key)
        }
        // Another agent created it between our read and our create: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(path).map_err(|e| {
            e.unwrap_or_else(|| io_err("reading", path, io::ErrorKind::NotFound.into()))
        }),
        Err(e) => Err(io_err("creating", path, e)),
    }
}

/// `Err(None)` when the file does not exist.
fn read_key(path: &Path) -> Result<MasterKey, Option<SecaError>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(io_err("reading", path, e))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Some(SecaError::State(format!(
                "{} is accessible by group or others; chmod 600 it",
                path.display()
            ))));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text =
        read_bounded(path, MAX_KEY_FILE_LEN).map_err(|e| Some(io_err("reading", path, e)))?;
    let text = zeroize::Zeroizing::new(text);
    let s = std::str::from_utf8(&text).map_err(|_| {
        Some(SecaError::State(format!(
            "{} is not a key file",
            path.display()
        )))
    })?;
    MasterKey::parse(s).map_err(|_| {
        Some(SecaError::State(format!(
            "{} does not hold a 32-byte key (64 hex digits)",
            path.display()
        )))
    })
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), SecaError> {
    let suffix: [u8; 8] = random_array().map_err(|_| SecaError::Random)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err("writing", &tmp, e))?;
        drop(f);
        let dest = dir.join(name);
        fs::rename(&tmp, &dest).map_err(|e| io_err("renaming into", &dest, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or create durable (the directory entry itself).
fn sync_dir(dir: &Path) -> Result<(), SecaError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("syncing directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_gba::{GbaType, Secret};

    fn ctx(impi: &str) -> BootstrapContext {
        BootstrapContext {
            btid: "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example".into(),
            impi: impi.into(),
            rand: [7; 16],
            expires_at: 2_000_000_000,
            gba_type: GbaType::Me,
            ks: Some(Secret::new([0x5a; 32])),
        }
    }

    #[test]
    fn save_load_round_trip_and_sealing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let s = StateDir::open(dir.clone()).unwrap();
        assert!(s.load("a@b.example").unwrap().is_none());
        let c = ctx("a@b.example");
        s.save(&c).unwrap();
        assert_eq!(s.load("a@b.example").unwrap(), Some(c.clone()));
        // Ks is not in the file in clear.
        let raw = fs::read(dir.join(CONTEXT_FILE)).unwrap();
        assert!(!raw.windows(32).any(|w| w == [0x5a; 32]));
        assert!(!raw.windows(8).any(|w| w == b"bsf.exam"));
        // Another identity cannot open it.
        assert!(s.load("other@b.example").unwrap().is_none());
        // A reopened directory reuses the key file.
        let s2 = StateDir::open(dir.clone()).unwrap();
        assert_eq!(s2.load("a@b.example").unwrap(), Some(c));
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, vec![KEY_FILE.to_string(), CONTEXT_FILE.to_string()]);
        s2.clear().unwrap();
        assert!(s2.load("a@b.example").unwrap().is_none());
        s2.clear().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn key_file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        StateDir::open(dir.clone()).unwrap();
        let key = dir.join(KEY_FILE);
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = StateDir::open(dir.clone()).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn tampered_or_foreign_files_are_ignored_or_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let s = StateDir::open(dir.clone()).unwrap();
        s.save(&ctx("a@b.example")).unwrap();
        let path = dir.join(CONTEXT_FILE);
        let mut raw = fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(s.load("a@b.example").unwrap().is_none());
        fs::write(&path, vec![0u8; MAX_SEALED_LEN as usize + 1]).unwrap();
        assert!(s.load("a@b.example").is_err());
        // A garbage key file is refused with a clear error, not replaced.
        fs::write(dir.join(KEY_FILE), "not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o600)).unwrap();
        }
        let e = StateDir::open(dir).unwrap_err().to_string();
        assert!(e.contains("32-byte key"), "{e}");
    }
}
