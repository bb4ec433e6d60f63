//! Bounded reading of PEM files, shared by the server, client and PKI modules.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use seccf_secret::SecretBytes;

use crate::TlsError;

/// Largest PEM file we read. A certificate chain or key is a few KiB; the cap keeps a
/// misconfigured path (a log file, /dev/zero) from exhausting memory at start-up.
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a whole PEM file, refusing files larger than [`MAX_PEM_FILE_BYTES`].
/// `what` names the setting (for example "cert_file") in error messages.
pub(crate) fn read_pem_file(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    let mut file = open(path, what)?;
    // Sizing the buffer up front also means a key is never copied by a reallocation,
    // which would leave an unzeroized copy behind (see read_secret_pem_file).
    let hint = file
        .metadata()
        .map(|m| m.len().min(MAX_PEM_FILE_BYTES))
        .unwrap_or(0);
    let mut buf = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    file.by_ref()
        .take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| TlsError::Config(format!("{what} {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsError::Config(format!(
            "{what} {}: larger than {MAX_PEM_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Reads a private-key PEM file into a zeroizing buffer. On unix, warns when the file
/// is readable by group or others (the key is still used: refusing would break
/// deployments that protect the directory instead).
pub(crate) fn read_secret_pem_file(path: &Path, what: &str) -> Result<SecretBytes, TlsError> {
    warn_if_exposed(path, what);
    // On error paths the partially read buffer is dropped un-zeroized only if reading
    // failed midway, in which case it holds at most a fragment of base64 text.
    read_pem_file(path, what).map(SecretBytes::new)
}

fn open(path: &Path, what: &str) -> Result<File, TlsError> {
    File::open(path).map_err(|e| TlsError::Config(format!("{what} {}: {e}", path.display())))
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                setting = what,
                mode = format_args!("{:o}", mode & 0o777),
                "private key file is readable by group or others"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path, _what: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn missing_file_names_setting_and_path() {
        let err = read_pem_file(Path::new("/nonexistent/seccf/x.pem"), "cert_file").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cert_file"), "{msg}");
        assert!(msg.contains("/nonexistent/seccf/x.pem"), "{msg}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let chunk = vec![b'A'; 64 * 1024];
        for _ in 0..(MAX_PEM_FILE_BYTES / chunk.len() as u64 + 1) {
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
        let err = read_pem_file(f.path(), "key_file").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn file_at_the_limit_is_read() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'A'; MAX_PEM_FILE_BYTES as usize])
            .unwrap();
        f.flush().unwrap();
        assert_eq!(
            read_pem_file(f.path(), "x").unwrap().len() as u64,
            MAX_PEM_FILE_BYTES
        );
    }
}
