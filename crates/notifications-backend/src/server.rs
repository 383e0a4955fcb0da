//! Assembling and running the backend: database, migrations, credentials, service, HTTP server.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use notifications_node::{CatalogResolver, Processor, RecipientResolver};
use tokio::task::JoinHandle;

use crate::auth::{self, Authenticator};
use crate::cleaner;
use crate::config::{Config, DatabaseConfig, PostgresConfig, SqliteLocation};
use crate::db::listen::{Listener, listen};
use crate::db::{Db, PoolOptions, Target};
use crate::delivery::{DeliveryWorker, RunningWorker};
use crate::http::{self, AppState};
use crate::service::janus::JanusService;
use crate::service::{NotificationsService, ServiceParts};
use crate::signals::{Limits, Publisher, Relay, SignalHub};
use crate::store::DELIVERY_CHANNEL;
use crate::store::Store;
use crate::{catalog, private_files, processors};

/// The SQLite file used when the configuration names no database.
pub const DEFAULT_SQLITE_FILE: &str = "notifications.sqlite";

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

    /// Opens and migrates the database, then starts serving.
    pub async fn start(self) -> Result<RunningBackend, StartError> {
        let config = self.config;
        let (db, what) = open_database(&config.backend.database, &self.data_dir, None).await?;
        let applied = db
            .migrate()
            .await
            .map_err(|e| StartError::Migration(e.to_string()))?;
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "applied database migrations");
        }
        let keys = auth::SigningKeys::load(&config, &self.data_dir)?;
        for (configured, which) in [
            (!config.backend.auth.keys.is_empty(), auth::KeyFile::Service),
            (
                !config.notifications.user_token_keys.is_empty(),
                auth::KeyFile::User,
            ),
        ] {
            if configured {
                continue;
            }
            let key_file = auth::key_path(&self.data_dir, which);
            let key_file = std::path::absolute(&key_file).unwrap_or(key_file);
            tracing::info!(path = %key_file.display(), key = ?which, "tokens are signed with the generated key");
            if db.backend() == crate::db::Backend::Postgres {
                tracing::warn!(
                    key = ?which,
                    "no key configured (backend.auth.keys for services, \
                     notifications.userTokenKeys for users): instances sharing this PostgreSQL \
                     database each generate their own key and refuse each other's tokens; \
                     configure one"
                );
            }
        }
        let authenticator = Arc::new(
            Authenticator::new(keys, &config.backend.auth, &config.discovery)
                .map_err(StartError::HttpClient)?,
        );
        let mut tasks = Vec::new();
        let (catalog, watcher) = catalog::open(&config).await.map_err(StartError::Catalog)?;
        tasks.extend(watcher);
        let resolver = self
            .resolver
            .unwrap_or_else(|| Arc::new(CatalogResolver::new(catalog.clone())));
        // Installed before anything counts.
        crate::metrics::handle();
        let store = Store::new(db.clone());
        let mut processors = processors::from_config(&config, &catalog, &store)?;
        processors.extend(self.processors);
        check_channel_names(&processors)?;
        let limits = &config.notifications.signals;
        let signals = SignalHub::new(Limits {
            queue_size: limits.queue_size,
            per_ip: limits.max_connections_per_ip,
            per_user: limits.max_connections_per_user,
        });
        // Other instances' signals reach this one's connections through PostgreSQL.
        let (publisher, relay) = match &config.backend.database {
            DatabaseConfig::Postgres(pg) => {
                let (publisher, relay) =
                    Publisher::relayed(signals.clone(), store.clone(), pg.url.clone()).map_err(
                        |e| StartError::Database {
                            what: "LISTEN".into(),
                            message: e.to_string(),
                        },
                    )?;
                (publisher, Some(relay))
            }
            DatabaseConfig::Sqlite { .. } => (Publisher::local(signals.clone()), None),
        };
        let deliveries_queued = Arc::new(tokio::sync::Notify::new());
        let worker = DeliveryWorker::new(
            store.clone(),
            &processors,
            config.notifications.delivery.clone(),
            deliveries_queued.clone(),
        )
        .spawn();
        // Other instances' deliveries wake this one's worker through PostgreSQL.
        let listener = match (&worker, &config.backend.database) {
            (Some(_), DatabaseConfig::Postgres(pg)) => {
                let wake = deliveries_queued.clone();
                let listener = listen(pg.url.clone(), DELIVERY_CHANNEL, move |_| wake.notify_one())
                    .map_err(|e| StartError::Database {
                        what: "LISTEN".into(),
                        message: e.to_string(),
                    })?;
                Some(listener)
            }
            _ => None,
        };
        let service = NotificationsService::new(ServiceParts {
            store: store.clone(),
            resolver,
            processors,
            signals: publisher,
            defaults: config.notifications.default_settings.clone(),
            app_base_url: config.app.base_url.clone(),
            deliveries_queued,
        });
        let janus_config = config.notifications.janus.clone();
        let state = web::Data::new(AppState::new(
            service,
            authenticator,
            db,
            config.notifications.signals.clone(),
            &janus_config,
        ));
        let janus = web::Data::new(JanusService::new(
            store.clone(),
            catalog.clone(),
            janus_config.clone(),
            config.app.base_url.clone(),
        ));
        let address = format!(
            "{}:{}",
            config.backend.listen.host, config.backend.listen.port
        );
        let cors = config.backend.cors.clone();
        let metrics = config.notifications.metrics;
        let mut server = HttpServer::new(move || {
            let app = App::new()
                // Before routing: decides which API answers a request on the shared mount.
                .wrap(from_fn(http::janus::dispatch))
                // Outside the plugin's authentication: preflights are answered without a token,
                // and every answer (errors included) carries the CORS headers.
                .wrap(http::cors_layer(cors.as_ref()))
                .wrap(from_fn(http::log_request))
                .app_data(state.clone())
                .app_data(janus.clone());
            let app = if metrics {
                app.route("/metrics", web::get().to(http::metrics::metrics))
            } else {
                app
            };
            app.configure(|cfg| http::janus::configure(cfg, &janus_config))
                .configure(http::configure)
        });
        if let Some(workers) = self.workers {
            server = server.workers(workers);
        }
        if self.handle_signals {
            // actix stops gracefully on SIGTERM, waiting for open connections: the live ones
            // (WebSocket, event streams) are told to go first.
            tasks.push(close_live_connections_on_sigterm(signals.clone()));
        } else {
            server = server.disable_signals();
        }
        let server = server.bind(&address).map_err(|source| StartError::Listen {
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
        let server = server.run();
        let handle = server.handle();
        tasks.push(crate::signals::spawn_pruning(
            store.clone(),
            config.notifications.signals.replay_window,
        ));
        tasks.push(cleaner::spawn_key_sweeper(store.clone()));
        if store.db().backend() == crate::db::Backend::Postgres {
            tasks.push(cleaner::spawn_count_folder(store.clone()));
        }
        tasks.extend(cleaner::spawn(
            store,
            config.notifications.retention.clone(),
        ));
        tracing::info!(address = %local_addr, database = %what, "notifications backend listening");
        Ok(RunningBackend {
            local_addr,
            handle,
            server: tokio::spawn(server),
            signals,
            tasks,
            worker,
            _listener: listener,
            _relay: relay,
        })
    }
}

/// A started backend.
pub struct RunningBackend {
    local_addr: SocketAddr,
    handle: ServerHandle,
    server: JoinHandle<io::Result<()>>,
    signals: SignalHub,
    /// Background work (retention, catalog reloads, deliveries) that ends with the server.
    tasks: Vec<JoinHandle<()>>,
    /// Stopped gracefully, after the server: deliveries in progress finish.
    worker: Option<RunningWorker>,
    _listener: Option<Listener>,
    _relay: Option<Relay>,
}

impl RunningBackend {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn signals(&self) -> &SignalHub {
        &self.signals
    }

    /// Runs until the server stops (a signal, or `stop`).
    pub async fn wait(mut self) -> io::Result<()> {
        let result = (&mut self.server)
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
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

fn close_live_connections_on_sigterm(signals: SignalHub) -> JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
                signals.close_all();
            }
            Err(e) => tracing::warn!("cannot watch for SIGTERM: {e}"),
        }
    })
}

/// Processors' names are channels of users' settings, next to `Web`: each must be its own.
fn check_channel_names(processors: &[Arc<dyn Processor>]) -> Result<(), StartError> {
    let mut names = std::collections::HashSet::new();
    for p in processors {
        if p.name()
            .eq_ignore_ascii_case(notifications_common::WEB_CHANNEL)
            || !names.insert(p.name().to_lowercase())
        {
            return Err(StartError::Processors(processors::SetupError(format!(
                "two channels are named {:?}: processor names must be unique and not Web",
                p.name()
            ))));
        }
    }
    Ok(())
}

/// Where the configured database lives, and a description of it for logs (never a password).
fn database_target(
    config: &DatabaseConfig,
    data_dir: &Path,
) -> Result<(Target, String), StartError> {
    let ensure_dir = |dir: &Path| {
        private_files::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.to_owned(),
            source,
        })
    };
    // Created here, before SQLite would create it with its own default mode (0644).
    let ensure_file = |file: &Path| {
        private_files::ensure_file(file).map_err(|e| StartError::Database {
            what: format!("SQLite {}", file.display()),
            message: e.to_string(),
        })
    };
    Ok(match config {
        DatabaseConfig::Sqlite { location: None } => {
            ensure_dir(data_dir)?;
            let path = data_dir.join(DEFAULT_SQLITE_FILE);
            ensure_file(&path)?;
            (
                Target::Sqlite(path.to_string_lossy().into_owned()),
                format!("SQLite {}", path.display()),
            )
        }
        DatabaseConfig::Sqlite {
            location: Some(SqliteLocation::Memory),
        } => (Target::Sqlite(":memory:".into()), "SQLite in memory".into()),
        DatabaseConfig::Sqlite {
            location: Some(SqliteLocation::File(path)),
        } => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_dir(parent)?;
            }
            ensure_file(path)?;
            (
                Target::Sqlite(path.to_string_lossy().into_owned()),
                format!("SQLite {}", path.display()),
            )
        }
        DatabaseConfig::Postgres(pg) => (
            Target::Postgres(pg.url.clone()),
            format!("PostgreSQL database {}", pg.database),
        ),
    })
}

/// Opens (creating it if needed) the configured database, as `serve` and `migrate` both do.
/// `max_connections` caps the pool (a one-off command needs one). Returns the pool and a
/// description of the database for logs (never a password).
pub async fn open_database(
    config: &DatabaseConfig,
    data_dir: &Path,
    max_connections: Option<u32>,
) -> Result<(Db, String), StartError> {
    let (target, what) = database_target(config, data_dir)?;
    let mut options = PoolOptions::for_target(&target);
    if let DatabaseConfig::Postgres(pg) = config {
        if let Some(max) = pg.pool_max {
            options.max_size = max.max(1);
        }
        if pg.pool_min.is_some() {
            options.min_idle = pg.pool_min;
        }
        create_postgres_database_if_missing(pg).await?;
    }
    if let Some(max) = max_connections {
        options.max_size = options.max_size.min(max);
        options.min_idle = options.min_idle.map(|m| m.min(max));
    }
    let failed = |message: String| StartError::Database {
        what: what.clone(),
        message,
    };
    let db = tokio::task::spawn_blocking(move || Db::open(target, &options))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    Ok((db, what))
}

/// Backstage creates a plugin's database when it is missing; so do we (when the role may).
async fn create_postgres_database_if_missing(pg: &PostgresConfig) -> Result<(), StartError> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;

    let pg = pg.clone();
    tokio::task::spawn_blocking(move || {
        let failed = |message: String| StartError::Database {
            what: format!("PostgreSQL database {}", pg.database),
            message,
        };
        match PgConnection::establish(&pg.url) {
            Ok(_) => return Ok(()),
            Err(e) if !e.to_string().contains("does not exist") => {
                return Err(failed(e.to_string()));
            }
            Err(_) => {}
        }
        let mut maintenance_url = url::Url::parse(&pg.url).map_err(|e| failed(e.to_string()))?;
        maintenance_url.set_path("/postgres");
        let mut conn =
            PgConnection::establish(maintenance_url.as_str()).map_err(|e| failed(e.to_string()))?;
        let name = pg.database.replace('"', "\"\"");
        match conn.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
            Ok(()) => {
                tracing::info!(database = %pg.database, "created the PostgreSQL database");
                Ok(())
            }
            // Another instance created it at the same moment.
            Err(e) if e.to_string().contains("already exists") => Ok(()),
            Err(e) => Err(failed(format!(
                "it does not exist and cannot be created: {e}"
            ))),
        }
    })
    .await
    .map_err(|e| StartError::Database {
        what: "PostgreSQL".into(),
        message: e.to_string(),
    })?
}
