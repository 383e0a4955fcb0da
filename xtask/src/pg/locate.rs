//! Finding the PostgreSQL server binaries.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// When set (and not empty), the only directory searched. Handy for a
/// non-standard install, or to try the "no PostgreSQL" path on a machine
/// that has it.
pub const BIN_DIR_ENV: &str = "NOTIFICATIONS_PG_BIN_DIR";

/// The programs `TempPostgres` runs. They must come from one installation:
/// `initdb` and `pg_ctl` refuse a `postgres` of another version.
const TOOLS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "pg_isready"];

/// Debian and Ubuntu install the server here, one directory per major
/// version, and put only the client programs on PATH.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// A directory holding all of `TOOLS`.
#[derive(Debug, Clone)]
pub struct PgBinDir {
    dir: PathBuf,
}

impl PgBinDir {
    /// `NOTIFICATIONS_PG_BIN_DIR` if set; otherwise PATH, then the newest
    /// `/usr/lib/postgresql/*/bin`. The error says where it looked.
    pub fn locate() -> Result<Self, String> {
        let wanted = TOOLS.join(", ");
        if let Some(dir) = env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            return Self::at(&dir).ok_or_else(|| {
                format!(
                    "PostgreSQL not found: {BIN_DIR_ENV}={} does not contain all of {wanted}",
                    dir.display()
                )
            });
        }
        Self::on_path()
            .or_else(|| Self::newest_under(Path::new(DEBIAN_ROOT)))
            .ok_or_else(|| {
                format!("PostgreSQL not found: no {wanted} on PATH or in {DEBIAN_ROOT}/*/bin")
            })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Full path of one of the programs, e.g. `tool("pg_ctl")`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn at(dir: &Path) -> Option<Self> {
        TOOLS
            .iter()
            .all(|tool| dir.join(tool).is_file())
            .then(|| Self {
                dir: dir.to_path_buf(),
            })
    }

    /// The first PATH entry with an `initdb`, judged by where that `initdb`
    /// really lives: installs often symlink only some programs onto PATH
    /// (e.g. `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`
    /// while `pg_isready` is Debian's version-picking wrapper), and the real
    /// directory has them all, from the same version.
    fn on_path() -> Option<Self> {
        let path = env::var_os("PATH")?;
        env::split_paths(&path).find_map(|entry| {
            let initdb = entry.join("initdb");
            if !initdb.is_file() {
                return None;
            }
            let real_dir = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            real_dir
                .and_then(|dir| Self::at(&dir))
                .or_else(|| Self::at(&entry))
        })
    }

    /// The `<root>/<version>/bin` with the highest version that has all
    /// the programs.
    fn newest_under(root: &Path) -> Option<Self> {
        fs::read_dir(root)
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = parse_version(entry.file_name().to_str()?)?;
                let found = Self::at(&entry.path().join("bin"))?;
                Some((version, found))
            })
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, found)| found)
    }
}

/// "15" -> [15], "9.6" -> [9, 6]; so that 10 sorts above 9.6 (which a string
/// comparison gets wrong). Anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("10") > parse_version("9.6"));
        assert!(parse_version("16") > parse_version("15"));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn newest_complete_version_wins() {
        let root = env::temp_dir().join(format!("xtask-locate-test-{}", std::process::id()));
        let make = |version: &str, tools: &[&str]| {
            let bin = root.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for tool in tools {
                fs::write(bin.join(tool), "").unwrap();
            }
        };
        make("9.6", &TOOLS);
        make("13", &TOOLS);
        // Newest, but incomplete: must be skipped.
        make("17", &["initdb", "pg_ctl"]);
        make("not-a-version", &TOOLS);

        let found = PgBinDir::newest_under(&root).map(|b| b.dir);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(root.join("13").join("bin")));
    }
}
