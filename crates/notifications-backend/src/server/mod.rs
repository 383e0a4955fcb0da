//! Assembling and running the backend. Start-up is a list of steps, each in its own module:
//! check the certificate (`tls`, with `backend.https`), open the storage (`storage`), load the
//! credentials (`credentials`), build the services (`services`), bind the HTTP app (`app`), and
//! hand what runs beside the server to one owner (`background`), which stops it in order after
//! the server.

mod app;
mod background;
mod credentials;
mod postgres_tls;
mod services;
mod storage;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::web;
use notifications_node::{Processor, RecipientResolver};
use tokio::task::JoinHandle;

use crate::auth;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::http::{self, AppState};
use crate::processors;
use crate::signals::SignalHub;
use crate::store::Store;
use background::Background;
pub use postgres_tls::with_tls_files;
pub use storage::{DEFAULT_SQLITE_FILE, open_database};
pub use tls::TlsError;
use tls::{Certificates, ConfigSource};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot open the database ({what}): {message}")]
    Database { what: String, message: String },
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    #[error(transparent)]
    SigningKey(#[from] auth::SigningKeyError),
    #[error(transparent)]
    Processors(#[from] processors::SetupError),
    #[error("cannot load the catalog: {0}")]
    Catalog(String),
    #[error("cannot set up the HTTP client that fetches signing keys: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("invalid HTTPS configuration: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot watch for SIGHUP (certificate reloads): {0}")]
    Sighup(#[source] io::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: io::Error },
}

/// Builds a backend; a Rust program can install its own recipient resolver before starting.
pub struct BackendBuilder {
    config: Config,
    data_dir: PathBuf,
    /// `None`: the default resolver over the configured catalog.
    resolver: Option<Arc<dyn RecipientResolver>>,
    processors: Vec<Arc<dyn Processor>>,
    workers: Option<usize>,
    handle_signals: bool,
    /// What a certificate reload reads; `None`: reloads fail.
    config_source: Option<ConfigSource>,
    /// What the delivery worker goes by.
    clock: Arc<dyn Clock>,
}

impl BackendBuilder {
    pub fn new(config: Config, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            config,
            data_dir: data_dir.into(),
            resolver: None,
            processors: Vec::new(),
            workers: None,
            handle_signals: true,
            config_source: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces how entity refs become users (upstream's `setNotificationRecipientResolver`).
    pub fn recipient_resolver(mut self, resolver: impl RecipientResolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Adds a processor (upstream's `addProcessor`): its hooks run for every send in the order
    /// processors were added, and its name becomes a channel of users' settings.
    pub fn processor(mut self, processor: impl Processor) -> Self {
        self.processors.push(Arc::new(processor));
        self
    }

    /// HTTP worker threads (default: one per core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Whether SIGINT/SIGTERM stop the server gracefully (default yes; embedders may say no).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// The delivery worker's clock (tests cross quiet hours and digest windows with it).
    #[cfg(feature = "testing")]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How to read the configuration again (e.g. `Config::load` of the same files): with
    /// `backend.https`, SIGHUP (when signals are handled) serves the certificate it then holds.
    pub fn config_source(
        mut self,
        source: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
    ) -> Self {
        self.config_source = Some(std::sync::Arc::new(source));
        self
    }

    /// Starts the backend, one step after the other: storage, credentials, services, the HTTP
    /// server, and the background work that runs beside it.
    pub async fn start(self) -> Result<RunningBackend, StartError> {
        let Self {
            config,
            data_dir,
            resolver,
            processors,
            workers,
            handle_signals,
            config_source,
            clock,
        } = self;
        // Installed before anything counts (the database's writer counts its first commit).
        crate::metrics::handle();
        // First: a bad certificate stops start-up before anything is opened.
        let certificates = match &config.backend.https {
            Some(certificate) => Some(Certificates::new(certificate, config_source)?),
            None => None,
        };
        // Every PostgreSQL connection below (the pool's, LISTEN's) names the files.
        let mut config = config;
        config.backend.database = with_tls_files(&config.backend.database, &data_dir)?;
        let (db, what) = storage::open_storage(&config.backend.database, &data_dir).await?;
        let store = Store::new(db.clone());
        let (authenticator, web_auth) = credentials::authenticator(&config, &data_dir, &store)?;
        let mut background = Background::default();
        let services = services::build(
            &config,
            &store,
            resolver,
            processors,
            clock,
            &mut background,
        )
        .await?;
        let state = web::Data::new(AppState::new(
            services.notifications,
            authenticator,
            db,
            config.notifications.signals.clone(),
            &config.notifications.janus,
            http::metrics::Scrape::new(store.clone(), services.channels),
        ));
        let options = app::Options {
            workers,
            handle_signals,
            tls: certificates
                .as_ref()
                .map(Certificates::server_config)
                .transpose()?,
        };
        let (server, local_addr) = app::bind(
            &config,
            state,
            web::Data::new(services.janus),
            web_auth,
            options,
        )?;
        if handle_signals {
            background.close_live_connections_on_sigterm(services.signals.clone());
            let hangup = match &certificates {
                Some(certificates) => certificates.reload_on_sighup(),
                None => Certificates::ignore_sighup(),
            };
            background.add(hangup.map_err(StartError::Sighup)?);
        }
        background.spawn_upkeep(&store, &config);
        let scheme = if certificates.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(address = %local_addr, scheme, database = %what, "notifications backend listening");
        Ok(RunningBackend {
            local_addr,
            handle: server.handle(),
            server: tokio::spawn(server),
            signals: services.signals,
            background,
        })
    }
}

/// A started backend.
pub struct RunningBackend {
    local_addr: SocketAddr,
    handle: ServerHandle,
    server: JoinHandle<io::Result<()>>,
    signals: SignalHub,
    /// What runs beside the server (deliveries, upkeep, LISTEN); stopped after it.
    background: Background,
}

impl RunningBackend {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn signals(&self) -> &SignalHub {
        &self.signals
    }

    /// Runs until the server stops (a signal, or `stop`).
    pub async fn wait(self) -> io::Result<()> {
        let result = self
            .server
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        self.background.stop().await;
        result
    }

    /// Stops accepting connections and finishes (or, not graceful, drops) requests in flight;
    /// live connections (WebSocket, event streams) are closed first.
    pub async fn stop(self, graceful: bool) -> io::Result<()> {
        self.signals.close_all();
        self.handle.stop(graceful).await;
        self.wait().await
    }

    /// Asks the server to stop without waiting for it (for code that cannot await, like `Drop`).
    pub fn request_stop(&self) {
        // The command is sent on call; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}
