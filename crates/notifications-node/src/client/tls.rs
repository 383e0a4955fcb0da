//! Which TLS the clients speak for `https://` and `wss://`: the platform's library with the
//! `native-tls` feature (opt-in, so it wins when `rustls` is on too), else rustls with the
//! `rustls` feature, else none.
//!
//! rustls is given its configuration here rather than picking a crypto provider by itself:
//! reqwest's `rustls` feature links aws-lc-rs, a far larger C build than ring's.

#[cfg(feature = "signals")]
pub(super) use backend::WebSocketTls;
#[cfg(feature = "client")]
pub(super) use backend::http;

/// Whether `https://` and `wss://` URLs can be served.
pub(super) const ENABLED: bool = cfg!(any(feature = "rustls", feature = "native-tls"));

/// Why they cannot.
pub(super) const MISSING: &str =
    "TLS needs the `rustls` or `native-tls` feature of notifications-node";

#[cfg(feature = "signals")]
type Connected = (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
);

/// rustls, configured here.
#[cfg(all(feature = "rustls", not(feature = "native-tls")))]
mod backend {
    use std::sync::Arc;

    use rustls::ClientConfig;
    use rustls::crypto::CryptoProvider;
    use rustls_platform_verifier::BuilderVerifierExt;

    /// The provider the program installed as its default, if it did (say, a FIPS one), else
    /// ring; the certificates the platform trusts, as reqwest's own rustls setup does.
    fn config() -> Result<ClientConfig, String> {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|e| e.to_string())?;
        Ok(config.with_no_client_auth())
    }

    /// `builder` set to use rustls.
    #[cfg(feature = "client")]
    pub(in crate::client) fn http(
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        Ok(builder.tls_backend_preconfigured(config()?))
    }

    /// How the signals WebSocket connects, for all the reconnects of a subscriber.
    #[cfg(feature = "signals")]
    pub(in crate::client) struct WebSocketTls(Option<tokio_tungstenite::Connector>);

    #[cfg(feature = "signals")]
    impl WebSocketTls {
        /// For `wss://` only: a `ws://` subscriber does without the platform's certificates.
        pub(in crate::client) fn new(url: &url::Url) -> Result<Self, String> {
            let connector = match url.scheme() {
                "wss" => Some(tokio_tungstenite::Connector::Rustls(Arc::new(config()?))),
                _ => None,
            };
            Ok(Self(connector))
        }

        pub(in crate::client) async fn connect(
            &self,
            request: tokio_tungstenite::tungstenite::handshake::client::Request,
        ) -> Result<super::Connected, tokio_tungstenite::tungstenite::Error> {
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, self.0.clone())
                .await
        }
    }
}

/// native-tls, or no TLS: reqwest and tokio-tungstenite set up either themselves.
#[cfg(not(all(feature = "rustls", not(feature = "native-tls"))))]
mod backend {
    #[cfg(feature = "client")]
    pub(in crate::client) fn http(
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        Ok(builder)
    }

    #[cfg(feature = "signals")]
    pub(in crate::client) struct WebSocketTls;

    #[cfg(feature = "signals")]
    impl WebSocketTls {
        pub(in crate::client) fn new(_url: &url::Url) -> Result<Self, String> {
            Ok(Self)
        }

        pub(in crate::client) async fn connect(
            &self,
            request: tokio_tungstenite::tungstenite::handshake::client::Request,
        ) -> Result<super::Connected, tokio_tungstenite::tungstenite::Error> {
            tokio_tungstenite::connect_async(request).await
        }
    }
}
