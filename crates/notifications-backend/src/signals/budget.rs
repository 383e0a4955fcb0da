//! How many frames a client may send: a token bucket, so that a client that subscribes as
//! Backstage's does (a few frames when it connects) is never limited, and one that floods is.

use std::time::Instant;

/// Frames per second, in bursts of up to twice that.
pub struct FrameBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl FrameBudget {
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            burst: 2.0 * per_second,
            tokens: 2.0 * per_second,
            refilled: now,
        }
    }

    /// Spends one frame received at `now`; false when the budget is exhausted.
    pub fn spend(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut budget = FrameBudget::new(10, t0);
        for i in 0..20 {
            assert!(budget.spend(t0), "frame {i} of the burst");
        }
        assert!(!budget.spend(t0), "beyond the burst");
        // A tenth of a second buys one frame.
        assert!(budget.spend(t0 + Duration::from_millis(100)));
        assert!(!budget.spend(t0 + Duration::from_millis(100)));
        // A long pause refills up to the burst, no more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..20 {
            assert!(budget.spend(later));
        }
        assert!(!budget.spend(later));
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_refused() {
        let t0 = Instant::now();
        let mut budget = FrameBudget::new(5, t0);
        for i in 0..1000 {
            assert!(budget.spend(t0 + Duration::from_millis(200) * i));
        }
    }
}
