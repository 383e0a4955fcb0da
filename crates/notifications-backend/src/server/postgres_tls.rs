//! libpq reads TLS certificates and keys from files only, while Backstage's configuration gives
//! them inline (`ssl.ca`, `ssl.cert`, `ssl.key`, as node-postgres takes them). They are written
//! under `<data-dir>/postgres-tls/`, private (0600, which libpq demands of a key), each named by
//! its content's hash, so that a changed certificate is a new file and an unchanged one is
//! written once; the connection URL then names them.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::StartError;
use crate::config::{DatabaseConfig, PgTlsMaterial, PostgresConfig, libpq_encode};
use crate::private_files;

const DIR: &str = "postgres-tls";

/// `config` with its inline TLS material written to files and named in its URL (unchanged
/// for SQLite, or with none).
pub fn with_tls_files(
    config: &DatabaseConfig,
    data_dir: &Path,
) -> Result<DatabaseConfig, StartError> {
    let DatabaseConfig::Postgres(pg) = config else {
        return Ok(config.clone());
    };
    if pg.tls.is_empty() {
        return Ok(config.clone());
    }
    let PgTlsMaterial { ca, cert, key } = &pg.tls;
    let mut url = pg.url.clone();
    for (parameter, pem) in [
        ("sslrootcert", ca.as_deref()),
        ("sslcert", cert.as_deref()),
        ("sslkey", key.as_ref().map(|key| key.expose().as_str())),
    ] {
        let Some(pem) = pem else { continue };
        let path = write(&data_dir.join(DIR), pem)?;
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(parameter);
        url.push('=');
        url.push_str(&libpq_encode(&path.to_string_lossy()));
    }
    Ok(DatabaseConfig::Postgres(PostgresConfig {
        url,
        tls: PgTlsMaterial::default(),
        ..pg.clone()
    }))
}

/// Writes `pem` into `dir` unless a file of that content is there; returns its path. Written
/// aside and renamed, so that a file of that name is always whole (a crash or a full disk
/// mid-write leaves only a temporary file, and another process starting at the same moment
/// never reads half of one).
fn write(dir: &Path, pem: &str) -> Result<PathBuf, StartError> {
    let failed = |path: &Path, source| StartError::DataDir {
        path: path.to_owned(),
        source,
    };
    private_files::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    let hash = Sha256::digest(pem.as_bytes());
    let name: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{name}.pem"));
    if path.exists() {
        return Ok(path);
    }
    let aside = dir.join(format!("{name}.pem.{}.tmp", std::process::id()));
    let written = private_files::create_new()
        .open(&aside)
        .and_then(|mut file| {
            file.write_all(pem.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&aside, &path));
    if let Err(e) = written {
        // Best effort: what is left of it is not used.
        let _ = std::fs::remove_file(&aside);
        return Err(failed(&path, e));
    }
    Ok(path)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Secret;

    fn postgres(url: &str, tls: PgTlsMaterial) -> DatabaseConfig {
        DatabaseConfig::Postgres(PostgresConfig {
            url: url.to_owned(),
            database: None,
            schema: None,
            create_database: false,
            create_schema: false,
            role: None,
            pool_max: None,
            pool_min: None,
            tls,
        })
    }

    #[test]
    fn inline_material_becomes_private_files_the_url_names() {
        let root = tempfile::tempdir().unwrap();
        // libpq decodes %20, not the form encoding's `+`.
        let dir = root.path().join("data dir");
        let ca = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";
        let config = postgres(
            "postgres://h:5432/db?sslmode=verify-full",
            PgTlsMaterial {
                ca: Some(ca.into()),
                cert: Some("-----BEGIN CERTIFICATE-----\ncert\n".into()),
                key: Some(Secret::new(key.to_owned())),
            },
        );
        let DatabaseConfig::Postgres(pg) = with_tls_files(&config, &dir).unwrap() else {
            panic!("still PostgreSQL");
        };
        assert!(pg.tls.is_empty());
        assert!(
            pg.url.contains("data%20dir") && !pg.url.contains('+'),
            "{}",
            pg.url
        );
        let url = url::Url::parse(&pg.url).unwrap();
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["sslmode", "sslrootcert", "sslcert", "sslkey"]);
        let file = |name: &str| PathBuf::from(&params.iter().find(|(k, _)| k == name).unwrap().1);
        assert_eq!(std::fs::read_to_string(file("sslrootcert")).unwrap(), ca);
        assert_eq!(std::fs::read_to_string(file("sslkey")).unwrap(), key);
        let mode = std::fs::metadata(file("sslkey"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(file("sslkey").starts_with(dir.join(DIR)));

        // Again: the same files, nothing written twice.
        let DatabaseConfig::Postgres(again) = with_tls_files(&config, &dir).unwrap() else {
            panic!("still PostgreSQL");
        };
        assert_eq!(again.url, pg.url);
        assert_eq!(std::fs::read_dir(dir.join(DIR)).unwrap().count(), 3);
    }

    #[test]
    fn without_material_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = postgres("postgres://h/db", PgTlsMaterial::default());
        assert_eq!(with_tls_files(&config, dir.path()).unwrap(), config);
        assert!(!dir.path().join(DIR).exists());
    }
}
