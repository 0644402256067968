//! The time that decides holds, their expiry, idempotency keys and bearer tokens.
//!
//! Production reads the system clock. Tests take a [`Clock::manual`] one and
//! [`Clock::advance`] it past a hold's expiry or a key's life at once, instead of
//! sleeping until then. Event timestamps, metrics and log timing stay on the system
//! clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use contract::Millis;

/// Reading it costs what reading the system clock does, plus an atomic load for a
/// manual clock.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// The system's wall clock moved on by the milliseconds held (what
    /// [`Clock::advance`] added): it never goes back, keeps time as the system's does,
    /// and jumps when a test says.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn system() -> Clock {
        Clock::System
    }

    /// A clock for tests: the system's time until [`Clock::advance`]d.
    pub fn manual() -> Clock {
        Clock::Manual(Arc::default())
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> Millis {
        match self {
            Clock::System => contract::now_millis(),
            Clock::Manual(ahead) => contract::now_millis() + ahead.load(Ordering::Relaxed),
        }
    }

    /// Seconds since the Unix epoch (what a bearer token's `exp` counts).
    pub fn now_secs(&self) -> u64 {
        (self.now_millis().max(0) / 1000) as u64
    }

    /// Moves a manual clock on by `by`; every copy of it sees the new time.
    ///
    /// # Panics
    /// On the system clock, which only time moves.
    pub fn advance(&self, by: Duration) {
        match self {
            Clock::System => panic!("the system clock cannot be advanced; use Clock::manual()"),
            Clock::Manual(ahead) => {
                ahead.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_on_for_every_copy() {
        let clock = Clock::manual();
        let copy = clock.clone();
        let before = copy.now_millis();
        clock.advance(Duration::from_secs(60));
        let after = copy.now_millis();
        assert!((60_000..65_000).contains(&(after - before)), "{before} -> {after}");
        assert!(Clock::system().now_millis() < after - 50_000);
    }

    #[test]
    #[should_panic(expected = "cannot be advanced")]
    fn the_system_clock_is_not_advanced() {
        Clock::system().advance(Duration::from_secs(1));
    }
}
