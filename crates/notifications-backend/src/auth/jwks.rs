//! Public keys published as JSON Web Key Sets, fetched over HTTP and cached per URL.
//!
//! An unknown key id makes us fetch the set again (the issuer may have rotated its keys), but
//! at most once per [`REFETCH_COOLDOWN`] per URL, so that tokens with made-up key ids cannot
//! make us hammer the issuer. A failed fetch is remembered for [`FAILURE_COOLDOWN`].
//!
//! Configured sources (the `auth` plugin's keys, `externalAccess` JWKS URLs) are registered at
//! start and always kept. Sources that tokens name themselves (a plugin token's `sub`) are
//! bounded: those that never gave keys are evicted first, and their first fetches draw on a
//! shared budget, so that anonymous tokens with invented plugin ids can neither lock real
//! callers out nor make us fetch (and log) without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const REFETCH_COOLDOWN: Duration = Duration::from_secs(30);
const FAILURE_COOLDOWN: Duration = Duration::from_secs(5);
/// Keys older than this are fetched again before use, so that withdrawn keys stop working.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Sources named by tokens kept at most: made-up plugin ids must not grow the cache without
/// bound. Real deployments have a few dozen plugins.
const MAX_SOURCES: usize = 256;
/// Fetches of sources named by tokens that have not given keys yet: a burst, refilled at a
/// steady rate. A fetch that gives keys is given back, so only failures (invented plugin ids,
/// plugins without keys) use it up; a deployment's own plugins starting together fit the burst.
const UNPROVEN_FETCH_BURST: u32 = 32;
const UNPROVEN_FETCH_REFILL: Duration = Duration::from_millis(500);
/// Refused fetches are reported once per this period, not once per token.
const THROTTLE_REPORT_PERIOD: Duration = Duration::from_secs(60);
/// A key set is a few keys; anything much larger is not one.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown signing key")]
    Unknown,
    /// The details (URL, cause) are logged, not told to an unauthenticated caller.
    #[error("the signing keys of the token's issuer are unavailable")]
    Fetch { url: String, reason: String },
    /// Too many fetches of sources that never gave keys: not fetched. Told to the caller as a
    /// failed fetch.
    #[error("the signing keys of the token's issuer are unavailable")]
    Throttled,
    #[error("too many signing key sources")]
    TooManySources,
}

/// One published key, ready to verify with.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The `alg` the set pins the key to, if any.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct Cached {
    keys: Arc<[Key]>,
    fetched_at: Option<Instant>,
    /// No fetch before this instant.
    next_fetch: Option<Instant>,
    /// Why the last fetch failed, until one succeeds.
    error: Option<String>,
}

#[derive(Default)]
struct Source {
    cached: Mutex<Cached>,
    /// Held while fetching, so that concurrent misses make one request.
    fetching: tokio::sync::Mutex<()>,
}

/// A token bucket for the first fetches of sources named by tokens.
struct FetchBudget {
    burst: u32,
    refill: Duration,
    tokens: u32,
    refilled_at: Instant,
    /// Fetches refused since the last report, and when that was.
    refused: u64,
    reported_at: Option<Instant>,
}

/// Keys of the configured JWKS URLs and of those tokens named.
pub struct KeyCache {
    client: reqwest::Client,
    /// Registered at start, outside the bound.
    configured: HashMap<Url, Arc<Source>>,
    /// Named by tokens, at most [`MAX_SOURCES`].
    named: Mutex<HashMap<Url, Arc<Source>>>,
    budget: Mutex<FetchBudget>,
    /// [`REFETCH_COOLDOWN`], shorter in tests of key rotation.
    refetch_cooldown: Duration,
}

impl KeyCache {
    /// `configured`: the key sources of the configuration, always kept. Fails only when the TLS
    /// backend cannot initialise.
    pub fn new(configured: impl IntoIterator<Item = Url>) -> Result<Self, reqwest::Error> {
        let client = crate::outbound_http::client_builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()?;
        Ok(Self {
            client,
            configured: configured
                .into_iter()
                .map(|url| (url, Arc::default()))
                .collect(),
            named: Mutex::default(),
            budget: Mutex::new(FetchBudget::new(
                UNPROVEN_FETCH_BURST,
                UNPROVEN_FETCH_REFILL,
            )),
            refetch_cooldown: REFETCH_COOLDOWN,
        })
    }

    /// The key of `url`'s set that has id `kid` (or, without an id, the only one) and fits
    /// `alg`, fetching the set when it is unknown, stale or lacks the key.
    pub async fn key(
        &self,
        url: &Url,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, KeyError> {
        let configured = self.configured.get(url).cloned();
        let is_configured = configured.is_some();
        let source = match configured {
            Some(source) => source,
            None => self.named_source(url)?,
        };
        if let Some(found) = source.lookup(kid, alg, url, Instant::now())? {
            return Ok(found);
        }
        let _fetching = source.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(found) = source.lookup(kid, alg, url, Instant::now())? {
            return Ok(found);
        }
        // A source named by a token that never gave keys may be invented: its fetch is budgeted.
        let unproven = !is_configured && !source.has_keys();
        if unproven && !self.budget().take(Instant::now()) {
            return Err(KeyError::Throttled);
        }
        let fetched = self.fetch(url).await;
        let now = Instant::now();
        let mut cached = source.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match fetched {
            Ok(keys) => {
                if unproven && !keys.is_empty() {
                    self.budget().give_back();
                }
                *cached = Cached {
                    keys: keys.into(),
                    fetched_at: Some(now),
                    next_fetch: Some(now + self.refetch_cooldown),
                    error: None,
                };
                find(&cached.keys, kid, alg).ok_or(KeyError::Unknown)
            }
            Err(reason) => {
                let url_for_log = crate::config::loggable_url(url);
                // Configured sources and those that gave keys are worth an operator's attention
                // (at most once per cooldown each); a made-up plugin id is not.
                if unproven {
                    tracing::debug!(url = url_for_log, reason, "could not fetch signing keys");
                } else {
                    tracing::warn!(url = url_for_log, reason, "could not fetch signing keys");
                    metrics::counter!(crate::metrics::JWKS_FAILURES).increment(1);
                }
                cached.next_fetch = Some(now + FAILURE_COOLDOWN);
                cached.error = Some(reason.clone());
                Err(KeyError::Fetch {
                    url: url.to_string(),
                    reason,
                })
            }
        }
    }

    /// The cached source of a URL a token named, added if there is room: sources that never
    /// gave keys are evicted first, so only sources with keys can fill the cache.
    fn named_source(&self, url: &Url) -> Result<Arc<Source>, KeyError> {
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = named.get(url) {
            return Ok(Arc::clone(source));
        }
        if named.len() >= MAX_SOURCES {
            named.retain(|_, source| source.has_keys());
            if named.len() >= MAX_SOURCES {
                return Err(KeyError::TooManySources);
            }
        }
        Ok(Arc::clone(named.entry(url.clone()).or_default()))
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, FetchBudget> {
        self.budget.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self, url: &Url) -> Result<Vec<Key>, String> {
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(format!("the key set is larger than {MAX_BODY_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter(|jwk| {
                // Symmetric keys must never be taken from a public document.
                !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
                    && !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
            })
            .filter_map(|jwk| {
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    alg: match jwk.common.key_algorithm {
                        Some(alg) => Some(Algorithm::try_from(alg).ok()?),
                        None => None,
                    },
                    key: DecodingKey::from_jwk(jwk).ok()?,
                })
            })
            .collect())
    }
}

impl FetchBudget {
    fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst,
            refill,
            tokens: burst,
            refilled_at: Instant::now(),
            refused: 0,
            reported_at: None,
        }
    }

    /// Takes one fetch if there is one left; refusals are reported at most once a period.
    fn take(&mut self, now: Instant) -> bool {
        let earned = now.duration_since(self.refilled_at).as_nanos() / self.refill.as_nanos();
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.refilled_at = if self.tokens == self.burst {
                now
            } else {
                self.refilled_at + self.refill * earned
            };
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            return true;
        }
        self.refused += 1;
        if self
            .reported_at
            .is_none_or(|at| now.duration_since(at) >= THROTTLE_REPORT_PERIOD)
        {
            tracing::warn!(
                refused = self.refused,
                "tokens name many signing key sources that give no keys (made-up plugin ids?): \
                 their fetches are limited"
            );
            self.refused = 0;
            self.reported_at = Some(now);
        }
        false
    }

    fn give_back(&mut self) {
        self.tokens = (self.tokens + 1).min(self.burst);
    }
}

impl Source {
    fn has_keys(&self) -> bool {
        !self
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .is_empty()
    }

    /// `Ok(Some)`: a usable key. `Ok(None)`: fetch first. `Err`: no key, and no fetch allowed
    /// yet.
    fn lookup(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        url: &Url,
        now: Instant,
    ) -> Result<Option<DecodingKey>, KeyError> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cached
            .fetched_at
            .is_some_and(|at| now.duration_since(at) < MAX_AGE);
        if fresh && let Some(key) = find(&cached.keys, kid, alg) {
            return Ok(Some(key));
        }
        if cached.next_fetch.is_none_or(|next| now >= next) {
            return Ok(None);
        }
        Err(match &cached.error {
            Some(reason) => KeyError::Fetch {
                url: url.to_string(),
                reason: reason.clone(),
            },
            None => KeyError::Unknown,
        })
    }
}

fn find(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let mut fitting = keys.iter().filter(|key| {
        key.key.family() == alg.family()
            && key.alg.is_none_or(|pinned| pinned == alg)
            && kid.is_none_or(|kid| key.kid.as_deref() == Some(kid))
    });
    let first = fitting.next()?;
    // Without a key id the choice must be unambiguous.
    (kid.is_some() || fitting.next().is_none()).then(|| first.key.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};
    use jsonwebtoken::EncodingKey;
    use jsonwebtoken::jwk::Jwk;
    use p256::pkcs8::EncodePrivateKey;

    use super::*;

    /// Serves `set` (shared, so a test can rotate keys) and counts requests.
    struct Server {
        url: Url,
        set: Arc<Mutex<serde_json::Value>>,
        hits: Arc<AtomicUsize>,
        handle: actix_web::dev::ServerHandle,
    }

    impl Server {
        fn start(status: u16) -> Self {
            let set = Arc::new(Mutex::new(serde_json::json!({"keys": []})));
            let hits = Arc::new(AtomicUsize::new(0));
            let (s, h) = (set.clone(), hits.clone());
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = Url::parse(&format!(
                "http://{}/jwks.json",
                listener.local_addr().unwrap()
            ))
            .unwrap();
            let server = HttpServer::new(move || {
                let (s, h) = (s.clone(), h.clone());
                App::new().default_service(web::to(move || {
                    let (s, h) = (s.clone(), h.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let status = actix_web::http::StatusCode::from_u16(status).unwrap();
                        HttpResponse::build(status).json(&*s.lock().unwrap())
                    }
                }))
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
            let handle = server.handle();
            tokio::spawn(server);
            Self {
                url,
                set,
                hits,
                handle,
            }
        }

        fn publish(&self, jwks: &[&Jwk]) {
            *self.set.lock().unwrap() = serde_json::json!({ "keys": jwks });
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            drop(self.handle.stop(false));
        }
    }

    /// The public JWK of a deterministic P-256 key (32 equal bytes make a valid secret).
    fn jwk(kid: &str, seed: u8) -> Jwk {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let key = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    }

    fn cache(refetch_cooldown: Duration) -> KeyCache {
        KeyCache {
            refetch_cooldown,
            ..KeyCache::new([]).unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_kids_refetch_at_most_once_per_cooldown() {
        let server = Server::start(200);
        let a = jwk("a", 1);
        server.publish(&[&a]);
        let keys = cache(REFETCH_COOLDOWN);
        assert!(
            keys.key(&server.url, Some("a"), Algorithm::ES256)
                .await
                .is_ok()
        );
        assert!(
            keys.key(&server.url, Some("a"), Algorithm::ES256)
                .await
                .is_ok()
        );
        assert_eq!(server.hits(), 1, "cached");
        for _ in 0..5 {
            assert!(matches!(
                keys.key(&server.url, Some("forged"), Algorithm::ES256)
                    .await,
                Err(KeyError::Unknown)
            ));
        }
        assert_eq!(server.hits(), 1, "made-up key ids do not reach the issuer");
        assert!(
            keys.key(&server.url, Some("a"), Algorithm::ES384)
                .await
                .is_err(),
            "a key is only used with its own algorithm family"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotated_keys_are_fetched_once_the_cooldown_allows() {
        let server = Server::start(200);
        let (a, b) = (jwk("a", 1), jwk("b", 2));
        server.publish(&[&a]);
        let keys = cache(Duration::ZERO);
        assert!(
            keys.key(&server.url, Some("a"), Algorithm::ES256)
                .await
                .is_ok()
        );
        server.publish(&[&b]);
        assert!(
            keys.key(&server.url, Some("b"), Algorithm::ES256)
                .await
                .is_ok()
        );
        assert_eq!(server.hits(), 2);
        assert!(
            matches!(
                keys.key(&server.url, Some("a"), Algorithm::ES256).await,
                Err(KeyError::Unknown)
            ),
            "a withdrawn key is gone once the set is fetched again"
        );
    }

    /// A URL on a closed port: every fetch fails at once.
    fn nowhere(i: usize) -> Url {
        static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
        let port = *PORT.get_or_init(|| {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            closed.local_addr().unwrap().port()
        });
        Url::parse(&format!("http://127.0.0.1:{port}/api/p{i}/jwks.json")).unwrap()
    }

    fn with_budget(keys: KeyCache, burst: u32) -> KeyCache {
        KeyCache {
            budget: Mutex::new(FetchBudget::new(burst, Duration::from_secs(3600))),
            ..keys
        }
    }

    /// A log of the current thread's events, for counting warnings.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn warnings(&self) -> usize {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .filter(|l| l.contains("WARN"))
                .count()
        }
    }

    /// Invented plugin ids: a bounded number of fetches, one warning, and no growth.
    #[tokio::test]
    async fn invented_sources_are_fetched_within_a_budget() {
        let log = Log::default();
        let writer = log.clone();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        // Another test's thread may have registered the warning's callsite while no
        // subscriber wanted it, and tracing caches that: ask every callsite again.
        tracing::callsite::rebuild_interest_cache();
        let keys = with_budget(KeyCache::new([]).unwrap(), 4);
        let (mut fetched, mut throttled) = (0, 0);
        for i in 0..MAX_SOURCES + 50 {
            match keys.key(&nowhere(i), Some("a"), Algorithm::ES256).await {
                Err(KeyError::Fetch { .. }) => fetched += 1,
                Err(KeyError::Throttled) => throttled += 1,
                other => panic!("{i}: {:?}", other.err()),
            }
            assert!(keys.named.lock().unwrap().len() <= MAX_SOURCES);
        }
        assert_eq!((fetched, throttled), (4, MAX_SOURCES + 46));
        assert_eq!(log.warnings(), 1, "one report, not one line per token");
        assert_eq!(
            KeyError::Throttled.to_string(),
            "the signing keys of the token's issuer are unavailable",
            "the caller is told no more than for a failed fetch"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn configured_sources_are_kept_outside_the_bound() {
        let server = Server::start(200);
        let a = jwk("a", 1);
        server.publish(&[&a]);
        let configured = server.url.join("/configured/jwks.json").unwrap();
        let keys = KeyCache::new([configured.clone()]).unwrap();
        // Sources that give keys do not use up the budget of fetches.
        for i in 0..MAX_SOURCES {
            let url = server.url.join(&format!("/api/p{i}/jwks.json")).unwrap();
            assert!(
                keys.key(&url, Some("a"), Algorithm::ES256).await.is_ok(),
                "{i}"
            );
        }
        let one_more = server.url.join("/api/more/jwks.json").unwrap();
        assert!(matches!(
            keys.key(&one_more, Some("a"), Algorithm::ES256).await,
            Err(KeyError::TooManySources)
        ));
        assert!(
            keys.key(&configured, Some("a"), Algorithm::ES256)
                .await
                .is_ok()
        );
        assert_eq!(server.hits(), MAX_SOURCES + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_sources_are_evicted_before_a_real_one_is_refused() {
        let server = Server::start(200);
        let a = jwk("a", 1);
        server.publish(&[&a]);
        let keys = with_budget(KeyCache::new([]).unwrap(), 1000);
        for i in 0..MAX_SOURCES {
            assert!(matches!(
                keys.key(&nowhere(i), Some("a"), Algorithm::ES256).await,
                Err(KeyError::Fetch { .. })
            ));
        }
        assert_eq!(keys.named.lock().unwrap().len(), MAX_SOURCES);
        // Their failures are still remembered, yet they make room.
        assert!(
            keys.key(&server.url, Some("a"), Algorithm::ES256)
                .await
                .is_ok()
        );
        assert_eq!(keys.named.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_budget_refills_up_to_its_burst() {
        let mut budget = FetchBudget::new(2, Duration::from_secs(1));
        let start = budget.refilled_at;
        assert!(budget.take(start) && budget.take(start));
        assert!(!budget.take(start));
        assert!(!budget.take(start + Duration::from_millis(999)));
        assert!(budget.take(start + Duration::from_millis(1500)));
        assert!(!budget.take(start + Duration::from_millis(1999)));
        assert!(budget.take(start + Duration::from_secs(2)));
        budget.give_back();
        assert!(budget.take(start + Duration::from_secs(2)));
        let later = start + Duration::from_secs(3600);
        assert!(budget.take(later) && budget.take(later) && !budget.take(later));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_fetches_are_remembered_briefly() {
        let server = Server::start(500);
        let keys = cache(REFETCH_COOLDOWN);
        for _ in 0..3 {
            let err = keys
                .key(&server.url, Some("a"), Algorithm::ES256)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, KeyError::Fetch { url, reason } if *url == server.url.to_string() && reason == "HTTP 500 Internal Server Error"),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "the signing keys of the token's issuer are unavailable",
                "no URL or cause for the caller"
            );
        }
        assert_eq!(server.hits(), 1);
    }

    #[test]
    fn without_a_kid_only_an_unambiguous_key_is_used() {
        let key = |kid: &str, seed: u8| Key {
            kid: Some(kid.to_owned()),
            alg: None,
            key: DecodingKey::from_jwk(&jwk(kid, seed)).unwrap(),
        };
        let one = [key("a", 1)];
        assert!(find(&one, None, Algorithm::ES256).is_some());
        let two = [key("a", 1), key("b", 2)];
        assert!(find(&two, None, Algorithm::ES256).is_none());
        assert!(find(&two, Some("b"), Algorithm::ES256).is_some());
        assert!(find(&two, Some("b"), Algorithm::RS256).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn published_symmetric_keys_are_ignored() {
        let server = Server::start(200);
        *server.set.lock().unwrap() = serde_json::json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]});
        let keys = cache(REFETCH_COOLDOWN);
        assert!(matches!(
            keys.key(&server.url, Some("s"), Algorithm::HS256).await,
            Err(KeyError::Unknown)
        ));
    }
}
