//! Public keys published as JSON Web Key Sets, fetched over HTTP and cached per URL.
//!
//! An unknown key id makes us fetch the set again (the issuer may have rotated its keys), but
//! at most once per [`REFETCH_COOLDOWN`] per URL, so that tokens with made-up key ids cannot
//! make us hammer the issuer. A failed fetch is remembered for [`FAILURE_COOLDOWN`].

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
/// Key sources kept at most: plugin tokens name their own source (a plugin id), so made-up ids
/// must not grow the cache without bound. Real deployments have a few dozen plugins.
const MAX_SOURCES: usize = 256;
/// A key set is a few keys; anything much larger is not one.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown signing key")]
    Unknown,
    /// The details (URL, cause) are logged, not told to an unauthenticated caller.
    #[error("the signing keys of the token's issuer are unavailable")]
    Fetch { url: String, reason: String },
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

/// Keys of every JWKS URL seen so far.
pub struct KeyCache {
    client: reqwest::Client,
    sources: Mutex<HashMap<Url, Arc<Source>>>,
    /// [`REFETCH_COOLDOWN`], shorter in tests of key rotation.
    refetch_cooldown: Duration,
}

impl KeyCache {
    /// Fails only when the TLS backend cannot initialise.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .build()?;
        Ok(Self {
            client,
            sources: Mutex::default(),
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
        let source = {
            let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            if !sources.contains_key(url) && sources.len() >= MAX_SOURCES {
                // Sources that never gave keys go (made-up plugin ids, dead issuers), unless a
                // fetch is under way or their failure is still remembered.
                let now = Instant::now();
                sources.retain(|_, s| !s.evictable(now));
                if sources.len() >= MAX_SOURCES {
                    return Err(KeyError::TooManySources);
                }
            }
            Arc::clone(sources.entry(url.clone()).or_default())
        };
        if let Some(found) = source.lookup(kid, alg, url, Instant::now())? {
            return Ok(found);
        }
        let _fetching = source.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(found) = source.lookup(kid, alg, url, Instant::now())? {
            return Ok(found);
        }
        let fetched = self.fetch(url).await;
        let now = Instant::now();
        let mut cached = source.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match fetched {
            Ok(keys) => {
                *cached = Cached {
                    keys: keys.into(),
                    fetched_at: Some(now),
                    next_fetch: Some(now + self.refetch_cooldown),
                    error: None,
                };
                find(&cached.keys, kid, alg).ok_or(KeyError::Unknown)
            }
            Err(reason) => {
                tracing::warn!(
                    url = crate::config::loggable_url(url),
                    reason,
                    "could not fetch signing keys"
                );
                cached.next_fetch = Some(now + FAILURE_COOLDOWN);
                cached.error = Some(reason.clone());
                Err(KeyError::Fetch {
                    url: url.to_string(),
                    reason,
                })
            }
        }
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

impl Source {
    fn evictable(&self, now: Instant) -> bool {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached.keys.is_empty()
            && cached.next_fetch.is_none_or(|next| now >= next)
            && self.fetching.try_lock().is_ok()
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
            ..KeyCache::new().unwrap()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn made_up_sources_do_not_grow_the_cache_without_bound() {
        // A closed port: every fetch fails at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let keys = cache(REFETCH_COOLDOWN);
        for i in 0..MAX_SOURCES + 10 {
            let url = Url::parse(&format!("http://127.0.0.1:{port}/api/p{i}/jwks.json")).unwrap();
            let err = keys
                .key(&url, Some("a"), Algorithm::ES256)
                .await
                .unwrap_err();
            // Remembered failures are kept for their cooldown: past the bound, new sources wait.
            let expected = if i < MAX_SOURCES {
                matches!(err, KeyError::Fetch { .. })
            } else {
                matches!(err, KeyError::TooManySources)
            };
            assert!(expected, "{i}: {err:?}");
            assert!(keys.sources.lock().unwrap().len() <= MAX_SOURCES);
        }
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
