//! Directories and files the service creates for itself (the data directory, the SQLite
//! database, the generated keys) are its user's alone: directories 0700, files 0600, whatever
//! the umask. Directories and files that already exist keep the permissions their owner gave
//! them: an operator may have chosen them (a shared volume, a backup group).

use std::fs;
use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// `path` and its missing parents; only the directories created here get mode 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path)
}

/// Options that create a new file, mode 0600, failing if it exists.
pub fn create_new() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Creates `path` empty (mode 0600) unless it exists. SQLite gives its `-wal`, `-shm` and
/// journal files the mode of the database file, so creating the database file first makes them
/// private too.
pub fn ensure_file(path: &Path) -> io::Result<()> {
    match create_new().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_and_files_are_private_existing_ones_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let nested = root.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(
            mode(root.path()),
            0o755,
            "the operator's directory is theirs"
        );

        let file = nested.join("db.sqlite");
        ensure_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        fs::write(&file, "kept").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        ensure_file(&file).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "kept");
        assert_eq!(mode(&file), 0o640);
    }
}
