//! r2d2's pool, counting who waits for a connection (r2d2 does not say): for the pool's metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ConnectionManager, DbError};

pub type Pooled = r2d2::PooledConnection<ConnectionManager>;

#[derive(Clone)]
pub struct Pool {
    inner: r2d2::Pool<ConnectionManager>,
    /// Callers inside `get` now: one atomic add and subtract per checkout, no lock.
    waiting: Arc<AtomicUsize>,
}

/// The pool's figures at one instant.
#[derive(Clone, Copy, Debug)]
pub struct PoolStats {
    pub max: u32,
    pub idle: u32,
    pub in_use: u32,
    pub waiting: usize,
}

impl Pool {
    pub fn new(inner: r2d2::Pool<ConnectionManager>) -> Self {
        Self {
            inner,
            waiting: Arc::default(),
        }
    }

    /// A connection within the pool's timeout; a timeout is counted.
    pub fn get(&self) -> Result<Pooled, DbError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let got = self.inner.get();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        got.map_err(|e| {
            metrics::counter!(crate::metrics::POOL_TIMEOUTS).increment(1);
            DbError::from(e)
        })
    }

    pub fn max_size(&self) -> u32 {
        self.inner.max_size()
    }

    /// Takes the pool's lock briefly: for scrapes, not for requests.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.state();
        PoolStats {
            max: self.inner.max_size(),
            idle: state.idle_connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}
