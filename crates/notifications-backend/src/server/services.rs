//! Start-up's service step: the catalog, recipients, processors, signals and deliveries, and
//! the two services (upstream's and janus's) over the store.

use std::sync::Arc;

use notifications_node::{CatalogResolver, Processor, RecipientResolver};

use super::StartError;
use super::background::Background;
use crate::clock::Clock;
use crate::config::{Config, DatabaseConfig};
use crate::db::listen::listen;
use crate::delivery::{DeliveryWorker, Scheduling};
use crate::service::janus::JanusService;
use crate::service::{NotificationsService, ServiceParts};
use crate::signals::{Limits, Publisher, SignalHub};
use crate::store::{DELIVERY_CHANNEL, Store};
use crate::{catalog, processors};

pub(super) struct Services {
    pub notifications: NotificationsService,
    pub janus: JanusService,
    /// The live connections of this instance.
    pub signals: SignalHub,
    /// The installed processors' names: the delivery queue's channels.
    pub channels: Vec<String>,
}

/// Builds the services; what runs beside them (catalog reloads, the delivery worker, the
/// LISTEN connections) goes to `background`.
pub(super) async fn build(
    config: &Config,
    store: &Store,
    resolver: Option<Arc<dyn RecipientResolver>>,
    added_processors: Vec<Arc<dyn Processor>>,
    clock: Arc<dyn Clock>,
    background: &mut Background,
) -> Result<Services, StartError> {
    let (catalog, watcher) = catalog::open(config).await.map_err(StartError::Catalog)?;
    if let Some(watcher) = watcher {
        background.add(watcher);
    }
    let resolver = resolver.unwrap_or_else(|| Arc::new(CatalogResolver::new(catalog.clone())));
    let processors::Configured {
        mut processors,
        email,
    } = processors::from_config(config, &catalog, store)?;
    processors.extend(added_processors);
    check_channel_names(&processors)?;
    let limits = &config.notifications.signals;
    let signals = SignalHub::new(Limits {
        queue_size: limits.queue_size,
        per_ip: limits.max_connections_per_ip,
        per_user: limits.max_connections_per_user,
    });
    let listen_failed = |e: std::io::Error| StartError::Database {
        what: "LISTEN".into(),
        message: e.to_string(),
    };
    // Other instances' signals reach this one's connections through PostgreSQL.
    let publisher = match &config.backend.database {
        DatabaseConfig::Postgres(pg) => {
            let (publisher, relay) =
                Publisher::relayed(signals.clone(), store.clone(), pg.url.clone())
                    .map_err(listen_failed)?;
            background.relay = Some(relay);
            publisher
        }
        DatabaseConfig::Sqlite { .. } => Publisher::local(signals.clone()),
    };
    let channels = processors.iter().map(|p| p.name().to_owned()).collect();
    let deliveries_queued = Arc::new(tokio::sync::Notify::new());
    background.worker = DeliveryWorker::new(
        store.clone(),
        &processors,
        config.notifications.delivery.clone(),
        deliveries_queued.clone(),
    )
    .with_scheduling(Scheduling {
        config: config.notifications.preferences.clone(),
        default_settings: config.notifications.default_settings.clone(),
        mailer: email,
        clock,
    })
    .spawn();
    // Other instances' deliveries wake this one's worker through PostgreSQL.
    if let (Some(_), DatabaseConfig::Postgres(pg)) = (&background.worker, &config.backend.database)
    {
        let wake = deliveries_queued.clone();
        let listener = listen(pg.url.clone(), DELIVERY_CHANNEL, move |_| wake.notify_one())
            .map_err(listen_failed)?;
        background.listener = Some(listener);
    }
    let notifications = NotificationsService::new(ServiceParts {
        store: store.clone(),
        resolver,
        processors,
        signals: publisher,
        defaults: config.notifications.default_settings.clone(),
        app_base_url: config.app.base_url.clone(),
        deliveries_queued,
        preferences: config.notifications.preferences.clone(),
    });
    let janus = JanusService::new(
        store.clone(),
        catalog,
        config.notifications.janus.clone(),
        config.app.base_url.clone(),
    );
    Ok(Services {
        notifications,
        janus,
        signals,
        channels,
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
