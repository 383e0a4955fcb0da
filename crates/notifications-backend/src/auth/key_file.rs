//! The signing key a fresh installation makes for itself, so tokens can be minted at once.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const KEY_FILE: &str = "auth-key";
const KEY_BYTES: usize = 32;

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Reads the key from `<data_dir>/auth-key`, creating the file (mode 0600) with a random key
/// the first time. The file holds the key in base64, like `backend.auth.keys[].secret`.
pub fn load_or_create_key(data_dir: &Path) -> io::Result<Vec<u8>> {
    let path = key_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => STANDARD.decode(text.trim()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(data_dir)?;
            let mut key = vec![0u8; KEY_BYTES];
            rand::rng().fill_bytes(&mut key);
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(mut file) => {
                    writeln!(file, "{}", STANDARD.encode(&key))?;
                    tracing::info!(path = %path.display(), "generated a signing key for tokens");
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(data_dir),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(dir.path()).unwrap();
        assert_eq!(first.len(), KEY_BYTES);
        assert_eq!(load_or_create_key(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
