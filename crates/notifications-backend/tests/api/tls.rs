//! `backend.https`: the real binary serves a generated certificate over TLS and, on SIGHUP,
//! serves the certificate its configuration's `$file`s then hold to new connections.

use std::path::Path;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support;

/// A server certificate for 127.0.0.1 and the CA that signed it.
pub struct Issued {
    pub ca: String,
    pub chain: String,
    pub key: String,
}

pub fn issue() -> Issued {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: a server certificate named as its issuer would look self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf = leaf_params.signed_by(&key, &ca).unwrap();
    Issued {
        ca: ca.pem(),
        chain: leaf.pem(),
        key: key.serialize_pem(),
    }
}

fn install(dir: &Path, issued: &Issued) {
    std::fs::write(dir.join("server.crt"), &issued.chain).unwrap();
    std::fs::write(dir.join("server.key"), &issued.key).unwrap();
}

/// A liveness check over a new connection that trusts `ca` (and the system's roots).
async fn live(root: &str, ca: &str) -> Result<u16, reqwest::Error> {
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = client
        .get(format!("{root}/.backstage/health/v1/liveness"))
        .send()
        .await?;
    Ok(res.status().as_u16())
}

/// Sends SIGHUP to the backend and waits until it logged a line containing `outcome`.
async fn hang_up(process: &tokio::process::Child, log: &support::Log, outcome: &str) {
    let seen = |log: &support::Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(outcome))
            .count()
    };
    let before = seen(log);
    let pid = process.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen(log) == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {outcome:?} logged: {:#?}", log.lock().unwrap()));
}

#[tokio::test]
async fn https_serves_the_configured_certificate_and_reloads_it_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = issue();
    install(dir.path(), &first);
    let https = "backend:\n  https:\n    certificate:\n      cert: {$file: server.crt}\n      \
                 key: {$file: server.key}\n";
    let configs = support::config_files_with(dir.path(), "", https);
    let (process, api, log) = support::serve_binary_logged(dir.path(), &configs, &[]).await;
    let root = api.root.replacen("http://", "https://", 1);

    assert_eq!(live(&root, &first.ca).await.unwrap(), 200);
    let second = issue();
    assert!(live(&root, &second.ca).await.is_err(), "not yet trusted");

    install(dir.path(), &second);
    hang_up(&process, &log, "TLS certificate reloaded").await;
    assert_eq!(live(&root, &second.ca).await.unwrap(), 200);
    assert!(
        live(&root, &first.ca).await.is_err(),
        "new connections get the new certificate"
    );

    // A reload that fails (the key of another certificate) keeps the one served.
    std::fs::write(dir.path().join("server.key"), &first.key).unwrap();
    hang_up(&process, &log, "TLS certificate not reloaded").await;
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("backend.https.certificate.key")),
        "the error names the key"
    );
    assert_eq!(live(&root, &second.ca).await.unwrap(), 200);
}

/// Without HTTPS, SIGHUP (`systemctl reload`) is logged and the server goes on: its default
/// action would end the process.
#[tokio::test]
async fn sighup_without_https_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let configs = support::config_files_with(dir.path(), "", "");
    let (mut process, api, log) = support::serve_binary_logged(dir.path(), &configs, &[]).await;
    hang_up(&process, &log, "nothing to reload").await;
    assert!(process.try_wait().unwrap().is_none(), "still running");
    let health = reqwest::get(format!("{}/.backstage/health/v1/liveness", api.root))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
