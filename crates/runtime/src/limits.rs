//! Request rate limits per buyer and per client address: the bots of an on-sale get
//! `429 RATE_LIMITED` with `Retry-After`, while everyone else's requests pass untouched.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::ErrorCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::http::{ApiError, Auth};

/// Requests allowed per second, with bursts of twice as many (0: no limit), on the paths
/// `applies_to` chooses (the binary's: the buyers' API, not the operator's).
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub per_buyer: u32,
    pub per_address: u32,
    pub applies_to: fn(&str) -> bool,
}

pub struct RateLimits {
    per_buyer: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    applies_to: fn(&str) -> bool,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Arc<RateLimits> {
        Arc::new(RateLimits {
            per_buyer: limiter(config.per_buyer),
            per_address: limiter(config.per_address),
            applies_to: config.applies_to,
            clock: DefaultClock::default(),
        })
    }

    /// `Err(wait)` when either the buyer or the address has used up its allowance. The
    /// buyer is only looked up when a per-buyer limit is configured.
    pub fn check(&self, buyer: impl FnOnce() -> Option<String>, address: IpAddr) -> Result<(), Duration> {
        if let Some(limiter) = &self.per_address {
            limiter.check_key(&address).map_err(|no| no.wait_time_from(self.clock.now()))?;
        }
        if let Some(limiter) = &self.per_buyer
            && let Some(buyer) = buyer()
        {
            limiter.check_key(&buyer).map_err(|no| no.wait_time_from(self.clock.now()))?;
        }
        Ok(())
    }

    /// Forgets buyers and addresses that have been quiet, every minute.
    pub async fn run_cleanup(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Some(l) = &self.per_buyer {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &self.per_address {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

/// The middleware: counts each request it applies to against its buyer and its address.
pub async fn rate_limit(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    if !(limits.applies_to)(req.uri().path()) {
        return next.run(req).await;
    }
    let address = crate::http::ClientAddr::of(req.extensions()).ip;
    let buyer = || req.extensions().get::<Arc<Auth>>().and_then(|auth| crate::http::buyer_of(req.headers(), auth));
    match limits.check(buyer, address) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            metrics::counter!(crate::metrics::RATE_LIMITED).increment(1);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response =
                ApiError::new(ErrorCode::RateLimited, format!("too many requests; retry in {secs} s")).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_past_the_burst_waits_and_others_do_not() {
        let limits = RateLimits::new(RateLimitConfig { per_buyer: 5, per_address: 0, applies_to: |_| true });
        let here = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..10 {
            assert!(limits.check(|| Some("user:bot".into()), here).is_ok());
        }
        let wait = limits.check(|| Some("user:bot".into()), here).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
        assert!(limits.check(|| Some("user:fan".into()), here).is_ok());
        assert!(limits.check(|| None, here).is_ok(), "no per-address limit configured");
    }

    #[test]
    fn an_address_is_limited_whoever_it_claims_to_be() {
        let limits = RateLimits::new(RateLimitConfig { per_buyer: 0, per_address: 1, applies_to: |_| true });
        let bot = IpAddr::from([10, 0, 0, 9]);
        assert!(limits.check(|| Some("a".into()), bot).is_ok());
        assert!(limits.check(|| Some("b".into()), bot).is_ok());
        assert!(limits.check(|| Some("c".into()), bot).is_err());
        assert!(limits.check(|| Some("c".into()), IpAddr::from([10, 0, 0, 8])).is_ok());
    }
}
