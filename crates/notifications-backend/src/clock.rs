//! The time the delivery worker goes by: when deliveries are due, and whether a user's quiet
//! hours or digest window hold one. Tests turn it (`testing::clock::ManualClock`) to cross
//! windows and DST changes without waiting for them.

use std::fmt::Debug;

use time::OffsetDateTime;

pub trait Clock: Debug + Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until set. Deliveries are queued at the system's time, so a
/// manual clock set before it would find nothing due: `set` refuses that. It counts its reads,
/// so that a test can wait for the worker to have looked at the time it set.
#[cfg(feature = "testing")]
#[derive(Debug)]
pub struct ManualClock {
    at: std::sync::Mutex<OffsetDateTime>,
    reads: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "testing")]
impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        let clock = Self {
            at: std::sync::Mutex::new(OffsetDateTime::UNIX_EPOCH),
            reads: std::sync::atomic::AtomicU64::new(0),
        };
        clock.set(at);
        clock
    }

    /// How many times the time was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// # Panics
    /// Before the system's time.
    pub fn set(&self, at: OffsetDateTime) {
        assert!(
            at >= OffsetDateTime::now_utc(),
            "a manual clock runs ahead of the system's: {at} is past"
        );
        *self
            .at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

#[cfg(feature = "testing")]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self
            .at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
