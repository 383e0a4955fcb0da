use std::time::Duration;

/// When a call is tried again: after no answer (connection refused or closed, timeout), a 429
/// or a 5xx; never after another status. The delay doubles from `initial_delay` up to
/// `max_delay`, with jitter; a `Retry-After` from the backend is waited out as given, and one
/// longer than `max_delay` ends the retries.
///
/// Sends are safe to retry: each carries an idempotency key, the same on every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub fn never() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first), or `None` when no retry is
    /// left. `retry_after` is what the backend asked for.
    pub(super) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        if let Some(asked) = retry_after {
            return (asked <= self.max_delay).then_some(asked);
        }
        let exponential = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        // "Equal jitter": half of the delay is kept, the other half is random, so that clients
        // failing together do not come back together.
        let half = exponential / 2;
        Some(half + half.mul_f64(unit_random()))
    }
}

/// Uniform in [0, 1): the top 53 bits of a random u64, an f64's precision. 0.5 when the system
/// has no randomness to give: jitter is not worth failing a call over.
fn unit_random() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// 429 and 5xx may pass on a later attempt; other statuses will not.
pub(super) fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// A `Retry-After` value: seconds, or an HTTP date (a date in the past is now). The signals
/// handshake has no use for it.
#[cfg(feature = "client")]
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc2822;

    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    Some(
        (at - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_maximum() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for (retry, full) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (9, 1000)] {
            let d = policy.delay(retry, None).unwrap();
            let full = Duration::from_millis(full);
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
        }
        assert_eq!(policy.delay(10, None), None, "no retry left");
        assert_eq!(RetryPolicy::never().delay(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_or_ends_the_retries() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.delay(0, Some(Duration::from_secs(60))), None);
        assert!(is_retryable_status(429) && is_retryable_status(503));
        assert!(!is_retryable_status(400) && !is_retryable_status(409));
    }

    #[cfg(feature = "client")]
    #[test]
    fn retry_after_is_seconds_or_a_date() {
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc2822;

        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO),
            "a past date"
        );
        let soon = OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let d = parse_retry_after(&soon.format(&Rfc2822).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
