//! Start-up's credentials step: the keys tokens are signed and checked with, and who may call.

use std::path::Path;
use std::sync::Arc;

use super::StartError;
use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::db::Backend;
use crate::inbox::WebAuth;
use crate::store::Store;

/// The authenticator for this configuration, with keys generated into `data_dir` where none
/// are configured (which is said, and warned about where instances share a database); and the
/// web inbox's sign-in, under the user-token keys.
pub(super) fn authenticator(
    config: &Config,
    data_dir: &Path,
    store: &Store,
) -> Result<(Arc<Authenticator>, Arc<WebAuth>), StartError> {
    let db = store.db();
    let keys = auth::SigningKeys::load(config, data_dir)?;
    let web = WebAuth::new(config, &keys.user, store.clone());
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
        let key_file = auth::key_path(data_dir, which);
        let key_file = std::path::absolute(&key_file).unwrap_or(key_file);
        tracing::info!(path = %key_file.display(), key = ?which, "tokens are signed with the generated key");
        if db.backend() == Backend::Postgres {
            tracing::warn!(
                key = ?which,
                "no key configured (backend.auth.keys for services, \
                 notifications.userTokenKeys for users): instances sharing this PostgreSQL \
                 database each generate their own key and refuse each other's tokens; \
                 configure one"
            );
        }
    }
    let authenticator = Authenticator::new(keys, &config.backend.auth, &config.discovery)
        .map(Arc::new)
        .map_err(StartError::HttpClient)?;
    Ok((authenticator, web))
}
