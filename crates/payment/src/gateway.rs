//! The payment gateway: the port, and the simulator the original used for load tests.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use sha2::Digest;

#[async_trait]
pub trait Gateway: Send + Sync + 'static {
    /// Authorizes `amount` under `payment_id`, which the gateway treats as an idempotency
    /// key: asking again for the same id gives the same answer and charges once.
    async fn authorize(&self, payment_id: &str, amount: i64) -> anyhow::Result<bool>;

    /// Refunds the charge made under `payment_id` (idempotent too).
    async fn refund(&self, payment_id: &str) -> anyhow::Result<()>;
}

/// Answers after a random latency in `latency_ms`; approves a `success_rate` share of
/// payments, decided by the payment id so a retry gets the same answer.
pub struct SimulatedGateway {
    pub success_rate: f64,
    pub latency_ms: Range<u64>,
}

impl SimulatedGateway {
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

    /// Where this payment id falls in [0, 1).
    fn draw(payment_id: &str) -> f64 {
        let hash = sha2::Sha256::digest(payment_id.as_bytes());
        let n = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
        (n >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[async_trait]
impl Gateway for SimulatedGateway {
    async fn authorize(&self, payment_id: &str, _amount: i64) -> anyhow::Result<bool> {
        self.delay().await;
        Ok(Self::draw(payment_id) < self.success_rate)
    }

    async fn refund(&self, _payment_id: &str) -> anyhow::Result<()> {
        self.delay().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_payment_gets_the_same_answer_and_the_rate_holds() {
        let gw = SimulatedGateway { success_rate: 0.8, latency_ms: 0..0 };
        let mut approved = 0;
        for i in 0..10_000 {
            let id = format!("p-{i}");
            let first = gw.authorize(&id, 1).await.unwrap();
            assert_eq!(first, gw.authorize(&id, 1).await.unwrap());
            approved += first as u32;
        }
        assert!((7_700..8_300).contains(&approved), "approved {approved} of 10000");
        let never = SimulatedGateway { success_rate: 0.0, latency_ms: 0..0 };
        assert!(!never.authorize("x", 1).await.unwrap());
        let always = SimulatedGateway { success_rate: 1.0, latency_ms: 0..0 };
        assert!(always.authorize("x", 1).await.unwrap());
    }
}
