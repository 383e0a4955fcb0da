//! Start-up's HTTP step: the app (middleware and routes) over the shared state, bound to the
//! configured address.

use std::io;
use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use super::StartError;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::inbox::{self, WebAuth};
use crate::service::janus::JanusService;

/// How the HTTP server runs, as the builder set it.
pub(super) struct Options {
    /// Worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// Whether SIGINT/SIGTERM stop it gracefully.
    pub handle_signals: bool,
    /// HTTPS (`backend.https`); `None` serves plain HTTP.
    pub tls: Option<rustls::ServerConfig>,
}

/// The server, bound and ready to run, and the address it got.
pub(super) fn bind(
    config: &Config,
    state: web::Data<AppState>,
    janus: web::Data<JanusService>,
    web_auth: std::sync::Arc<WebAuth>,
    options: Options,
) -> Result<(Server, SocketAddr), StartError> {
    let web_auth = web::Data::from(web_auth);
    let address = format!(
        "{}:{}",
        config.backend.listen.host, config.backend.listen.port
    );
    let janus_config = config.notifications.janus.clone();
    let cors = config.backend.cors.clone();
    let metrics = config.notifications.metrics;
    // One set of counts for all workers.
    let rate_limits =
        http::rate_limit::RateLimits::new(&config.backend.rate_limit).map(web::Data::new);
    let mut server = HttpServer::new(move || {
        let app = App::new()
            // Before routing: decides which API answers a request on the shared mount.
            .wrap(from_fn(http::janus::dispatch))
            // Inside CORS, so that a 429 carries its headers too.
            .wrap(Condition::new(
                rate_limits.is_some(),
                from_fn(http::rate_limit::limit),
            ))
            // Outside the plugin's authentication: preflights are answered without a token,
            // and every answer (errors included) carries the CORS headers.
            .wrap(http::cors_layer(cors.as_ref()))
            .wrap(from_fn(http::log_request))
            .app_data(state.clone())
            .app_data(janus.clone())
            .app_data(web_auth.clone());
        let app = match &rate_limits {
            Some(limits) => app.app_data(limits.clone()),
            None => app,
        };
        let app = if metrics {
            app.route("/metrics", web::get().to(http::metrics::metrics))
        } else {
            app
        };
        app.configure(|cfg| http::janus::configure(cfg, &janus_config))
            .configure(http::configure)
            .configure(inbox::configure)
    });
    if let Some(workers) = options.workers {
        server = server.workers(workers);
    }
    if !options.handle_signals {
        server = server.disable_signals();
    }
    let server = match options.tls {
        Some(tls) => server.bind_rustls_0_23(&address, tls),
        None => server.bind(&address),
    }
    .map_err(|source| StartError::Listen {
        address: address.clone(),
        source,
    })?;
    let local_addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Listen {
            address: address.clone(),
            source: io::Error::other("no address bound"),
        })?;
    Ok((server.run(), local_addr))
}
