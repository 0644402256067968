//! The payment gateway: the port, and the simulator the original used for load tests.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use sha2::Digest;

#[async_trait]
pub trait Gateway: Send + Sync + 'static {
    /// Authorizes `amount` under `payment_id`, which the gateway treats as an idempotency
    /// key: asking again for the same id gives the same answer and charges once. `Ok(false)`
    /// is a decline (final); an error, like no answer in time, says nothing about whether
    /// the charge was made.
    async fn authorize(&self, payment_id: &str, amount: i64) -> anyhow::Result<bool>;

    /// Refunds the charge made under `payment_id`, or voids it if none was made yet, so a
    /// late authorization cannot charge either (idempotent too).
    async fn refund(&self, payment_id: &str) -> anyhow::Result<()>;

    /// What the gateway holds for `payment_id` (charged and not refunded), when the
    /// gateway can tell; the audit compares it with the payment's status.
    fn kept(&self, _payment_id: &str) -> Option<i64> {
        None
    }
}

/// Answers after a random latency in `latency_ms`; approves a `success_rate` share of
/// payments, decided by the payment id so a retry gets the same answer. Faults for
/// testing: an `error_rate` share of calls fail without charging, a `hang_rate` share
/// are carried out but never answered. It keeps the books of what it charged and
/// refunded (in memory, for as long as it runs), so it charges each payment id at most
/// once.
#[derive(Default)]
pub struct SimulatedGateway {
    pub success_rate: f64,
    pub latency_ms: Range<u64>,
    pub error_rate: f64,
    pub hang_rate: f64,
    /// Whether its books are the whole truth: not when replicas each run a simulator of
    /// their own, since one replica may void what another one charged.
    pub books_complete: bool,
    books: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    amount: i64,
    refunded: bool,
}

enum Fault {
    None,
    Error,
    Hang,
}

impl SimulatedGateway {
    pub fn new(success_rate: f64, latency_ms: Range<u64>) -> Self {
        SimulatedGateway { success_rate, latency_ms, books_complete: true, ..Default::default() }
    }

    /// For a replica among others: its books are not reported to the audit.
    pub fn one_of_many(mut self) -> Self {
        self.books_complete = false;
        self
    }

    /// With faults: `error_rate` of calls fail, `hang_rate` never answer.
    pub fn with_faults(mut self, error_rate: f64, hang_rate: f64) -> Self {
        self.error_rate = error_rate;
        self.hang_rate = hang_rate;
        self
    }

    async fn delay(&self) {
        if self.latency_ms.end > 0 {
            let ms = if self.latency_ms.is_empty() {
                self.latency_ms.start
            } else {
                rand::rng().random_range(self.latency_ms.clone())
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    fn fault(&self) -> Fault {
        if self.error_rate <= 0.0 && self.hang_rate <= 0.0 {
            return Fault::None;
        }
        let x: f64 = rand::rng().random();
        if x < self.error_rate {
            Fault::Error
        } else if x < self.error_rate + self.hang_rate {
            Fault::Hang
        } else {
            Fault::None
        }
    }

    /// Where this payment id falls in [0, 1).
    fn draw(payment_id: &str) -> f64 {
        let hash = sha2::Sha256::digest(payment_id.as_bytes());
        let n = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
        (n >> 11) as f64 / (1u64 << 53) as f64
    }

    fn books(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call the gateway carried out and will never answer.
async fn hang() -> ! {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[async_trait]
impl Gateway for SimulatedGateway {
    async fn authorize(&self, payment_id: &str, amount: i64) -> anyhow::Result<bool> {
        self.delay().await;
        let fault = self.fault();
        if let Fault::Error = fault {
            anyhow::bail!("simulated gateway error");
        }
        let approved = {
            let mut books = self.books();
            match books.get(payment_id) {
                // Asked again: the same answer, no second charge; a voided id stays void.
                Some(entry) => entry.amount > 0,
                None => {
                    let approved = Self::draw(payment_id) < self.success_rate;
                    let charged = if approved { amount } else { 0 };
                    books.insert(payment_id.to_owned(), Entry { amount: charged, refunded: false });
                    approved
                }
            }
        };
        if let Fault::Hang = fault {
            hang().await;
        }
        Ok(approved)
    }

    async fn refund(&self, payment_id: &str) -> anyhow::Result<()> {
        self.delay().await;
        let fault = self.fault();
        if let Fault::Error = fault {
            anyhow::bail!("simulated gateway error");
        }
        self.books()
            .entry(payment_id.to_owned())
            .and_modify(|e| e.refunded = true)
            .or_insert(Entry { amount: 0, refunded: true });
        if let Fault::Hang = fault {
            hang().await;
        }
        Ok(())
    }

    /// Unknown for a payment id it never answered (or voided): a simulator that was
    /// restarted has forgotten its books; and unknown for every id in a replica of many.
    fn kept(&self, payment_id: &str) -> Option<i64> {
        if !self.books_complete {
            return None;
        }
        self.books().get(payment_id).map(|e| if e.refunded { 0 } else { e.amount })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_payment_gets_the_same_answer_and_the_rate_holds() {
        let gw = SimulatedGateway::new(0.8, 0..0);
        let mut approved = 0;
        for i in 0..10_000 {
            let id = format!("p-{i}");
            let first = gw.authorize(&id, 1).await.unwrap();
            assert_eq!(first, gw.authorize(&id, 1).await.unwrap());
            approved += first as u32;
        }
        assert!((7_700..8_300).contains(&approved), "approved {approved} of 10000");
        let never = SimulatedGateway::new(0.0, 0..0);
        assert!(!never.authorize("x", 1).await.unwrap());
        let always = SimulatedGateway::new(1.0, 0..0);
        assert!(always.authorize("x", 1).await.unwrap());
    }

    #[tokio::test]
    async fn it_charges_once_per_payment_and_a_void_stops_a_late_charge() {
        let gw = SimulatedGateway::new(1.0, 0..0);
        assert!(gw.authorize("a", 7).await.unwrap());
        assert!(gw.authorize("a", 7).await.unwrap());
        assert_eq!(gw.kept("a"), Some(7));
        gw.refund("a").await.unwrap();
        gw.refund("a").await.unwrap();
        assert_eq!(gw.kept("a"), Some(0));
        // Voided before the authorization arrived: it is refused, nothing is kept.
        gw.refund("b").await.unwrap();
        assert!(!gw.authorize("b", 7).await.unwrap());
        assert_eq!(gw.kept("b"), Some(0));
        // A decline is known too, and keeps nothing.
        let never = SimulatedGateway::new(0.0, 0..0);
        assert!(!never.authorize("c", 7).await.unwrap());
        assert_eq!(never.kept("c"), Some(0));
        assert_eq!(gw.kept("never-seen"), None);
        // A replica among others does not claim to know what the gateway keeps.
        let replica = SimulatedGateway::new(1.0, 0..0).one_of_many();
        assert!(replica.authorize("d", 7).await.unwrap());
        assert_eq!(replica.kept("d"), None);
    }

    #[tokio::test]
    async fn faults_fail_or_hang_calls_and_a_hung_call_still_charges() {
        let failing = SimulatedGateway::new(1.0, 0..0).with_faults(1.0, 0.0);
        assert!(failing.authorize("a", 5).await.is_err());
        assert_eq!(failing.kept("a"), None);
        let hanging = SimulatedGateway::new(1.0, 0..0).with_faults(0.0, 1.0);
        let call = tokio::time::timeout(Duration::from_millis(50), hanging.authorize("a", 5)).await;
        assert!(call.is_err(), "a hung call never answers");
        assert_eq!(hanging.kept("a"), Some(5), "but the gateway took the money");
    }
}
