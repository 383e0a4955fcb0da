//! `backend.database.connection.ssl` with certificates inline, as Backstage's app-configs give
//! them to node-postgres: against a PostgreSQL cluster of its own serving TLS with a generated
//! certificate, the binary connects over TLS when `ssl.ca` names the issuer, and refuses to
//! when it names another.

use std::path::Path;

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::support;
use crate::tls::{Issued, issue};

/// The cluster serves `issued`'s certificate from now on (PostgreSQL takes TLS settings on
/// reload). The files go where its OS user can read them and owns the key, as it requires.
fn serve_tls(pg: &xtask::pg::TempPostgres, dir: &Path, issued: &Issued) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert, &issued.chain).unwrap();
    std::fs::write(&key, &issued.key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    if pg.runs_as_other_user() {
        let chown = std::process::Command::new("chown")
            .arg("-R")
            .arg("postgres:")
            .arg(dir)
            .status()
            .unwrap();
        assert!(chown.success());
    }
    let mut admin = PgConnection::establish(&pg.url()).unwrap();
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        diesel::sql_query(statement).execute(&mut admin).unwrap();
    }
}

fn database_yaml(port: u16, database: &str, ca: &str) -> String {
    let ca = ca.replace('\n', "\\n");
    format!(
        "backend:\n  database:\n    client: pg\n    connection:\n      host: 127.0.0.1\n      port: {port}\n      user: postgres\n      database: {database}\n      ssl:\n        ca: \"{ca}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_certificates_verify_the_server() {
    if std::env::var_os("NOTIFICATIONS_TEST_PG_URL").is_none() && !support::in_ci() {
        return;
    }
    let pg = xtask::pg::TempPostgres::start(false).expect("a PostgreSQL cluster for this test");
    let certs = tempfile::tempdir().unwrap();
    let issued = issue();
    serve_tls(&pg, certs.path(), &issued);

    // The right issuer: serves, and its connections are encrypted.
    let dir = tempfile::tempdir().unwrap();
    let configs = support::config_files_with(
        dir.path(),
        &database_yaml(pg.port(), "tls_ok", &issued.ca),
        "",
    );
    let (_process, api) = support::serve_binary(dir.path(), &configs, &[]).await;
    let user = support::user_token("user:default/alice");
    let r = api.get("/status", &user).await;
    assert_eq!(r.status, 200, "{}", r.text);
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = |ssl: bool| {
        let sql = format!(
            "SELECT count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = 'tls_ok' AND s.ssl = {ssl}"
        );
        let mut admin = PgConnection::establish(&pg.url()).unwrap();
        diesel::sql_query(sql)
            .get_result::<Count>(&mut admin)
            .unwrap()
            .n
    };
    assert!(count(true) >= 1, "the service's connections use TLS");
    assert_eq!(count(false), 0, "none without");
    // The PEM went into a private file in the data directory.
    let written = std::fs::read_dir(dir.path().join("data/postgres-tls"))
        .unwrap()
        .count();
    assert_eq!(written, 1);

    // Another issuer: the server's certificate is not trusted, and nothing starts.
    let other = tempfile::tempdir().unwrap();
    let configs = support::config_files_with(
        other.path(),
        &database_yaml(pg.port(), "tls_refused", &issue().ca),
        "",
    );
    let out = support::run_command(&configs, &other.path().join("data"), &["migrate"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // OpenSSL says "certificate verify failed", or, as both test CAs share a name, that the
    // signature does not verify.
    assert!(
        stderr.contains("cannot open the database") && stderr.contains("SSL error"),
        "{stderr}"
    );
}
