//! Where the service's own HTTP clients start (JWKS, the remote catalog, Slack, webhooks).
//!
//! They speak TLS over rustls with ring, so the build links no OpenSSL. reqwest's
//! `rustls-no-provider` (its `rustls` feature would link aws-lc-rs, a far larger C build) uses the
//! process's default crypto provider: ring is installed unless the program chose one already,
//! the same rule lettre (e-mail) and the notifications-node clients follow.

pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which then stays: nothing to handle.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
