//! The signing key a fresh installation makes for itself, so tokens can be minted at once.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const KEY_FILE: &str = "auth-key";
const KEY_BYTES: usize = 32;
/// A key file holding less than this was not written by us (or was truncated): refuse it rather
/// than sign with a guessable key.
const MIN_KEY_BYTES: usize = 16;

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Reads the key from `<data_dir>/auth-key`, creating the file (mode 0600) with a random key
/// the first time. The file holds the key in base64, like `backend.auth.keys[].secret`.
pub fn load_or_create_key(data_dir: &Path) -> io::Result<Vec<u8>> {
    let path = key_path(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => decode(&path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(data_dir, &path),
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
fn create(data_dir: &Path, path: &Path) -> io::Result<Vec<u8>> {
    fs::create_dir_all(data_dir)?;
    let mut key = vec![0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    let temporary = data_dir.join(format!(
        ".{KEY_FILE}.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        writeln!(file, "{}", STANDARD.encode(&key))?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a signing key for tokens");
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(data_dir),
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
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn empty_or_short_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["", "\n", "AQID"] {
            fs::write(key_path(dir.path()), content).unwrap();
            let err = load_or_create_key(dir.path()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{content:?}");
        }
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(dir.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}
