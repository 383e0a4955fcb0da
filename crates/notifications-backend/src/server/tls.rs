//! Start-up's TLS step (`backend.https`): the server's certificate sits behind a resolver that a
//! reload swaps without touching the listener. Connections opened after a reload get the new
//! certificate; open ones keep theirs.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{Config, ConfigError, HttpsCertificate};

const CERT_KEY: &str = "backend.https.certificate.cert";
const KEY_KEY: &str = "backend.https.certificate.key";

/// Why a certificate cannot be served; the message names the configuration key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: {message}")]
    Certificate { key: &'static str, message: String },
    #[error("cannot set up TLS: {0}")]
    Setup(#[source] rustls::Error),
}

fn invalid(key: &'static str, message: impl std::fmt::Display) -> TlsError {
    TlsError::Certificate {
        key,
        message: message.to_string(),
    }
}

/// The one crypto provider of the workspace's rustls users.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses and checks a certificate chain and its key: both PEM, the key the certificate's.
pub fn certified_key(certificate: &HttpsCertificate) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(certificate.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(CERT_KEY, format!("not a valid PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            CERT_KEY,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.key.as_bytes())
        .map_err(|e| invalid(KEY_KEY, format!("not a valid PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => invalid(
            KEY_KEY,
            format!("the private key does not belong to the certificate in {CERT_KEY}"),
        ),
        rustls::Error::InvalidCertificate(e) => invalid(CERT_KEY, e),
        other => invalid(KEY_KEY, other),
    })
}

/// The certificate served to new connections.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole certificate: replacing it is one assignment.
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reads the configuration again, for a reload.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// The served certificate, and how to replace it.
#[derive(Clone)]
pub struct Certificates {
    current: Arc<Current>,
    source: Option<ConfigSource>,
}

impl Certificates {
    /// Checks the configured certificate; `source` is what a reload reads.
    pub fn new(
        certificate: &HttpsCertificate,
        source: Option<ConfigSource>,
    ) -> Result<Self, TlsError> {
        let key = certified_key(certificate)?;
        Ok(Self {
            current: Arc::new(Current(RwLock::new(Arc::new(key)))),
            source,
        })
    }

    /// The rustls configuration of the listener (HTTP/1.1; ALPN is set by actix).
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        Ok(ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone()))
    }

    /// Reads the configuration again (so `$file`s are read anew) and serves its certificate
    /// from now on. On any error the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let Some(source) = &self.source else {
            return Err("no configuration files to reload the certificate from".into());
        };
        let config = source().map_err(|e| e.to_string())?;
        let Some(certificate) = config.backend.https else {
            return Err("backend.https is no longer configured".into());
        };
        let key = certified_key(&certificate).map_err(|e| e.to_string())?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// Reloads on every SIGHUP, logging the outcome. The handler is installed before this
    /// returns, so a SIGHUP sent once start-up is over cannot end the process.
    /// Without HTTPS there is nothing to reload, but SIGHUP's default action would end the
    /// process (and `systemctl reload` would stop the service): it is logged instead.
    pub fn ignore_sighup() -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload (no backend.https)");
            }
        }))
    }

    pub fn reload_on_sighup(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let certificates = self.clone();
        Ok(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match certificates.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(
                            "TLS certificate not reloaded, still serving the previous one: {e}"
                        );
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> (String, String) {
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (issued.cert.pem(), issued.signing_key.serialize_pem())
    }

    fn error(cert: &str, key: &str) -> String {
        let certificate = HttpsCertificate {
            cert: cert.to_owned(),
            key: key.into(),
        };
        certified_key(&certificate).unwrap_err().to_string()
    }

    #[test]
    fn a_matching_pair_is_accepted() {
        let (cert, key) = generated();
        let certificate = HttpsCertificate {
            cert,
            key: key.into(),
        };
        let certificates = Certificates::new(&certificate, None).unwrap();
        certificates.server_config().unwrap();
        assert!(
            certificates
                .reload()
                .unwrap_err()
                .contains("no configuration")
        );
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let (cert, key) = generated();
        let (_, other_key) = generated();
        assert!(
            error(&cert, &other_key)
                .starts_with("backend.https.certificate.key: the private key does not belong"),
        );
        assert!(error("not pem", &key).starts_with("backend.https.certificate.cert: no PEM"));
        let truncated = cert.replace("-----END CERTIFICATE-----", "");
        assert!(error(&truncated, &key).starts_with("backend.https.certificate.cert: "));
        assert!(error(&cert, "").starts_with("backend.https.certificate.key: not a valid PEM"));
        assert!(error(&cert, &cert).starts_with("backend.https.certificate.key: "));
    }
}
