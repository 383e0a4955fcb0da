//! `backend.rateLimit`: at most `incomingRequestLimit` requests per caller in each `window`,
//! answered 429 with `Retry-After` beyond it. The caller is who the request authenticates as (a
//! user ref, a service subject), else its client address. Health checks and metrics are never
//! limited, nor are clients on the rule's `ipAllowList`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::error::{RequestDetail, error_response};
use super::signals::SIGNALS_MOUNT;
use super::{AppState, PLUGIN_MOUNT};
use crate::auth::Principal;
use crate::config::{RateLimitConfig, RateLimitRule};
use crate::error::Error;
use crate::inbox::{self, WebAuth};

/// Callers remembered per rule. Past it the least used are forgotten (and start afresh), so a
/// flood of addresses cannot grow memory without bound.
const MAX_CALLERS: u64 = 100_000;

/// The limiters in force, shared by every worker.
pub struct RateLimits {
    global: Option<Limiter>,
    /// Per plugin, by mount path.
    plugins: Vec<(&'static str, Limiter)>,
}

impl RateLimits {
    /// `None` when nothing is limited (the default).
    pub fn new(config: &RateLimitConfig) -> Option<Self> {
        let plugins: Vec<_> = config
            .plugins
            .iter()
            .filter_map(|(plugin, rule)| {
                let mount = match plugin.as_str() {
                    "notifications" => PLUGIN_MOUNT,
                    "signals" => SIGNALS_MOUNT,
                    _ => return None,
                };
                Some((mount, Limiter::new(rule.clone())))
            })
            .collect();
        if config.global.is_none() && plugins.is_empty() {
            return None;
        }
        Some(Self {
            global: config.global.clone().map(Limiter::new),
            plugins,
        })
    }

    /// The limiters that count a request to `path` from `peer`.
    fn for_request(&self, path: &str, peer: Option<IpAddr>) -> Vec<&Limiter> {
        let exempt = path.starts_with("/.backstage/health/")
            || path == "/metrics"
            || path.strip_prefix(SIGNALS_MOUNT) == Some("/health");
        if exempt {
            return Vec::new();
        }
        let under = |mount: &str| {
            path.strip_prefix(mount)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        self.global
            .iter()
            .chain(
                self.plugins
                    .iter()
                    .filter(|(mount, _)| under(mount))
                    .map(|(_, limiter)| limiter),
            )
            .filter(|limiter| !peer.is_some_and(|ip| limiter.rule.ip_allow_list.contains(&ip)))
            .collect()
    }
}

/// One rule's counts: a window per caller, from its first request (express-rate-limit's
/// memory store). Entries expire with their window.
struct Limiter {
    rule: RateLimitRule,
    windows: moka::sync::Cache<Arc<str>, Arc<Window>>,
}

struct Window {
    started: Instant,
    count: AtomicU32,
}

impl Limiter {
    fn new(rule: RateLimitRule) -> Self {
        let windows = moka::sync::Cache::builder()
            .max_capacity(MAX_CALLERS)
            .time_to_live(rule.window)
            .build();
        Self { rule, windows }
    }

    /// Counts a request of `caller`: its window, and how long until the window ends when the
    /// request is over the limit.
    fn hit(&self, caller: &Arc<str>) -> (Arc<Window>, Option<Duration>) {
        let window = self.windows.get_with(caller.clone(), || {
            Arc::new(Window {
                started: Instant::now(),
                count: AtomicU32::new(0),
            })
        });
        let count = window
            .count
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let over = (count > self.rule.limit)
            .then(|| self.rule.window.saturating_sub(window.started.elapsed()));
        (window, over)
    }

    /// Whether an answer with `status` is taken back off the count.
    fn skips(&self, status: StatusCode) -> bool {
        if status.as_u16() < 400 {
            self.rule.skip_successful_requests
        } else {
            self.rule.skip_failed_requests
        }
    }
}

/// A principal the limiter authenticated, so that the plugin's routes do not verify the token
/// again.
pub struct Authenticated(pub Principal);

/// Who a request counts against.
async fn caller(req: &ServiceRequest, peer: Option<IpAddr>) -> Arc<str> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let state = req.app_data::<web::Data<AppState>>();
    let principal = match (header, state) {
        (Some(header), Some(state)) => state.auth.authenticate_header(Some(header)).await.ok(),
        _ => None,
    };
    // A browser signed in by cookie or proxy counts as its user, not as the proxy's address
    // that all its users share (the plugin's boundary checks the request itself).
    let signed_in = match (&principal, req.app_data::<web::Data<WebAuth>>()) {
        (None, Some(web)) if !inbox::has_bearer(req.request()) => {
            inbox::ambient_principal(req.request(), web)
        }
        _ => None,
    };
    let caller = match (principal.as_ref().or(signed_in.as_ref()), peer) {
        (Some(Principal::User { user_ref, .. }), _) => format!("user {user_ref}"),
        (Some(Principal::Service { subject }), _) => format!("service {subject}"),
        (None, Some(ip)) => format!("address {}", network(ip)),
        (None, None) => "address unknown".to_owned(),
    };
    if let Some(principal) = principal {
        req.extensions_mut().insert(Authenticated(principal));
    }
    caller.into()
}

/// An anonymous caller's key: its IPv4 address, or its IPv6 /64, which one client usually
/// holds whole (as the signal connection caps count them).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(v6.to_bits() & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The middleware: counts the request against each rule that applies, answers 429 when any is
/// exceeded, and takes back what `skipSuccessfulRequests`/`skipFailedRequests` exclude.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<RateLimits>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    // The path as routing sees it (percent-decoded), so that `/api/%6Eotifications` is counted
    // under the notifications plugin it reaches.
    let limiters = limits.for_request(req.match_info().get_ref().path(), peer);
    if limiters.is_empty() {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let caller = caller(&req, peer).await;
    let hits: Vec<_> = limiters
        .into_iter()
        .map(|limiter| (limiter, limiter.hit(&caller)))
        .collect();
    let retry = hits.iter().filter_map(|(_, (_, over))| *over).max();
    let res = match retry {
        Some(retry) => {
            let mut response = error_response(
                &Error::TooManyRequests("Too many requests, please try again later".into()),
                RequestDetail::of(req.request()),
            );
            // Whole seconds, rounded up: a client that waits that long is counted afresh.
            let seconds = retry.as_millis().div_ceil(1000).max(1);
            if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            req.into_response(response)
        }
        None => next.call(req).await?.map_into_boxed_body(),
    };
    for (limiter, (window, _)) in hits {
        if limiter.skips(res.status()) {
            window.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
    Ok(res)
}
