//! `backend.https`, as Backstage's backend reads it: `certificate.cert` and `certificate.key` as
//! PEM text (usually `{$file: ...}`, which a reload reads again).

use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, parse_at};
use super::secret::Secret;

/// The certificate chain and private key the server presents. Checked (PEM, key matching the
/// certificate) when the server starts and on every reload.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(expecting = "a map with cert and key")]
pub struct HttpsCertificate {
    /// The end-entity certificate first, then its intermediates.
    pub cert: String,
    pub key: Secret<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with certificate")]
struct RawHttps {
    certificate: HttpsCertificate,
}

/// `backend.https` at `key`: `None` for HTTP. Backstage's `true` (a self-signed certificate
/// generated at start) is refused: certificates made up at start-up are for development, and
/// clients would have to be told to trust each new one.
pub(super) fn read(
    value: Option<Value>,
    key: &str,
) -> Result<Option<HttpsCertificate>, ConfigError> {
    match value {
        None | Some(Value::Null | Value::Bool(false)) => Ok(None),
        Some(Value::Bool(true)) => Err(ConfigError::invalid(
            key,
            "`true` (a generated self-signed certificate) is not supported; give \
             certificate.cert and certificate.key as PEM, e.g. {$file: server.crt}",
        )),
        Some(value) => Ok(Some(parse_at::<RawHttps>(value, key)?.certificate)),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn error(yaml: &str) -> String {
        Config::from_yaml_str(yaml).unwrap_err().to_string()
    }

    #[test]
    fn https_forms() {
        let config =
            Config::from_yaml_str("backend: {https: {certificate: {cert: CERT, key: KEY}}}")
                .unwrap();
        let https = config.backend.https.unwrap();
        assert_eq!(https.cert, "CERT");
        assert_eq!(https.key, "KEY".to_owned());
        assert!(!format!("{https:?}").contains("KEY"), "the key is redacted");
        assert_eq!(
            Config::from_yaml_str("backend: {https: false}")
                .unwrap()
                .backend
                .https,
            None
        );
        assert!(error("backend: {https: true}").starts_with(
            "invalid configuration at backend.https: `true` (a generated self-signed certificate) \
             is not supported"
        ));
        assert!(
            error("backend: {https: {}}").contains("backend.https: missing field `certificate`")
        );
        assert!(
            error("backend: {https: {certificate: {cert: C}}}")
                .contains("backend.https.certificate: missing field `key`")
        );
    }
}
