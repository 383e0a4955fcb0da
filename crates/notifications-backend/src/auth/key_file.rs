//! The signing keys a fresh installation makes for itself, so tokens can be minted at once: one
//! for service tokens (`auth-key`), one for user tokens (`user-key`). They are separate files so
//! that a sender given the service key cannot sign a user token.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Which generated key: each has its own file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFile {
    /// Signs service tokens, as `backend.auth.keys` would; senders may be given it.
    Service,
    /// Signs user tokens only; never handed to senders.
    User,
}

impl KeyFile {
    fn name(self) -> &'static str {
        match self {
            Self::Service => "auth-key",
            Self::User => "user-key",
        }
    }
}

const KEY_BYTES: usize = 32;
/// A key file holding less than this was not written by us (or was truncated): refuse it rather
/// than sign with a guessable key.
const MIN_KEY_BYTES: usize = 16;

pub fn key_path(data_dir: &Path, which: KeyFile) -> PathBuf {
    data_dir.join(which.name())
}

/// Reads the key from its file in `data_dir`, creating the file (mode 0600) with a random key
/// the first time. The file holds the key in base64, like `backend.auth.keys[].secret`.
pub fn load_or_create_key(data_dir: &Path, which: KeyFile) -> io::Result<Vec<u8>> {
    let path = key_path(data_dir, which);
    match fs::read_to_string(&path) {
        Ok(text) => decode(&path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(data_dir, which, &path),
        Err(e) => Err(e),
    }
}

fn decode(path: &Path, text: &str) -> io::Result<Vec<u8>> {
    let invalid = |message: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {message}", path.display()),
        )
    };
    let key = STANDARD
        .decode(text.trim())
        .map_err(|e| invalid(e.to_string()))?;
    if key.len() < MIN_KEY_BYTES {
        return Err(invalid(format!(
            "the key is {} bytes, at least {MIN_KEY_BYTES} are needed (remove the file to generate a new key)",
            key.len()
        )));
    }
    Ok(key)
}

/// Writes the key to a private temporary file and links it into place: nobody ever reads a
/// half-written key, and processes starting together end up with the one that was linked first.
fn create(data_dir: &Path, which: KeyFile, path: &Path) -> io::Result<Vec<u8>> {
    crate::private_files::create_dir_all(data_dir)?;
    let mut key = vec![0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    let temporary = data_dir.join(format!(
        ".{}.{}.{:016x}",
        which.name(),
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = crate::private_files::create_new()
        .open(&temporary)
        .and_then(|mut file| {
            writeln!(file, "{}", STANDARD.encode(&key))?;
            file.sync_all()
        });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), key = ?which, "generated a signing key for tokens");
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(data_dir, which),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(dir.path(), KeyFile::Service).unwrap();
        assert_eq!(first.len(), KEY_BYTES);
        assert_eq!(
            load_or_create_key(dir.path(), KeyFile::Service).unwrap(),
            first
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key_path(dir.path(), KeyFile::Service))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn empty_or_short_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["", "\n", "AQID"] {
            fs::write(key_path(dir.path(), KeyFile::User), content).unwrap();
            let err = load_or_create_key(dir.path(), KeyFile::User).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{content:?}");
        }
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(dir.path(), KeyFile::User).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn service_and_user_keys_are_different_files_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let service = load_or_create_key(dir.path(), KeyFile::Service).unwrap();
        let user = load_or_create_key(dir.path(), KeyFile::User).unwrap();
        assert_ne!(service, user);
        assert!(key_path(dir.path(), KeyFile::User).exists());
        assert_ne!(
            key_path(dir.path(), KeyFile::User),
            key_path(dir.path(), KeyFile::Service)
        );
    }
}
