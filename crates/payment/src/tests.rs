//! The workers against a scripted gateway: timeouts, errors, late and duplicate answers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::events::{Envelope, OrderCreated};
use runtime::bus::embedded::EmbeddedBus;
use runtime::consumer::Handler;
use runtime::db::Durability;
use sqlx::Row;

use crate::{Gateway, GatewayPolicy, MIGRATIONS, Payments};

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Answers with an error, charging nothing.
    Error,
    /// Charges and never answers.
    Hang,
    /// Charges and answers.
    Approve,
}

/// A gateway that plays `script`, then `then` for every further call. It is a naive one:
/// it charges even after a void, so the worker alone must keep the books right.
struct Scripted {
    script: Mutex<VecDeque<Step>>,
    then: Step,
    refund_errors: AtomicUsize,
    calls: AtomicUsize,
    refunds: AtomicUsize,
    /// Payment ids charged: each at most once, even after a void.
    charged: Mutex<HashSet<String>>,
    /// Money kept per payment id, zeroed by a refund.
    books: Mutex<HashMap<String, i64>>,
}

impl Scripted {
    fn new(script: &[Step], then: Step) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script.iter().copied().collect()),
            then,
            refund_errors: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            refunds: AtomicUsize::new(0),
            charged: Mutex::default(),
            books: Mutex::default(),
        })
    }

    fn kept_total(&self) -> i64 {
        self.books.lock().unwrap().values().sum()
    }
}

#[async_trait]
impl Gateway for Scripted {
    async fn authorize(&self, payment_id: &str, amount: i64) -> anyhow::Result<bool> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = self.script.lock().unwrap().pop_front().unwrap_or(self.then);
        if let Step::Error = step {
            anyhow::bail!("scripted error");
        }
        if self.charged.lock().unwrap().insert(payment_id.to_owned()) {
            self.books.lock().unwrap().insert(payment_id.to_owned(), amount);
        }
        if let Step::Hang = step {
            std::future::pending::<()>().await;
        }
        Ok(true)
    }

    async fn refund(&self, payment_id: &str) -> anyhow::Result<()> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        if self.refund_errors.load(Ordering::SeqCst) > 0 {
            self.refund_errors.fetch_sub(1, Ordering::SeqCst);
            anyhow::bail!("scripted refund error");
        }
        self.books.lock().unwrap().insert(payment_id.to_owned(), 0);
        Ok(())
    }

    fn kept(&self, payment_id: &str) -> Option<i64> {
        Some(self.books.lock().unwrap().get(payment_id).copied().unwrap_or(0))
    }
}

struct Fixture {
    payments: Payments,
    _dir: tempfile::TempDir,
}

fn policy(call_timeout_ms: u64, deadline_ms: u64) -> GatewayPolicy {
    GatewayPolicy {
        call_timeout: Duration::from_millis(call_timeout_ms),
        deadline: Duration::from_millis(deadline_ms),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
    }
}

async fn fixture(gateway: Arc<dyn Gateway>, policy: GatewayPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = runtime::Db::open_sqlite(&dir.path().join("payment.db"), Durability::Normal, &MIGRATIONS).await.unwrap();
    let bus = Arc::new(EmbeddedBus::open(&dir.path().join("bus.db"), Durability::Normal).await.unwrap());
    Fixture { payments: Payments::new(db, bus, gateway).with_policy(policy), _dir: dir }
}

static NEXT_ORDER_NO: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

impl Fixture {
    /// Delivers `OrderCreated` for `order_id` as the consumer would, `times` times.
    async fn order_created(&self, order_id: &str, times: usize) {
        let e = OrderCreated {
            order_id: order_id.into(),
            // Each order its own number, as the order module gives them.
            order_no: Some(NEXT_ORDER_NO.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            event_id: 1,
            seat_ids: vec![1],
            amount: 51_000,
            buyer: "alice".into(),
            created_at: contract::now_millis(),
        };
        let envelope = Envelope::wrap(&e, contract::now_millis(), None);
        let handlers = crate::consume::handlers(self.payments.clone());
        for _ in 0..times {
            let mut tx = self.payments.db.begin().await.unwrap();
            handlers.batch().apply(&mut tx, &envelope).await.unwrap();
            tx.commit().await.unwrap();
        }
    }

    async fn payment(&self, order_id: &str) -> (String, String, bool, i64) {
        let r = sqlx::query("SELECT payment_id, status, void_requested, attempts FROM payments WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(self.payments.db.reader())
            .await
            .unwrap();
        (r.get("payment_id"), r.get("status"), r.get::<i64, _>("void_requested") == 1, r.get("attempts"))
    }

    /// Waits until the payment is final and nothing is left to do at the gateway.
    async fn until_done(&self, order_id: &str, within: Duration) -> (String, String, bool, i64) {
        let start = Instant::now();
        loop {
            let p = self.payment(order_id).await;
            if p.1 != "REQUESTED" && !p.2 && self.payments.pending().await.unwrap() == 0 {
                return p;
            }
            assert!(start.elapsed() < within, "payment of {order_id} not done in {within:?}: {p:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The payment events in the outbox, as `type` or `type:reason`.
    async fn events(&self) -> Vec<String> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
            .fetch_all(self.payments.db.reader())
            .await
            .unwrap();
        rows.iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(e).unwrap();
                match v["payload"]["reason"].as_str() {
                    Some(reason) => format!("{}:{reason}", v["type"].as_str().unwrap()),
                    None => v["type"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_timeouts_are_retried_and_the_payment_succeeds_once() {
    let gateway = Scripted::new(&[Step::Error, Step::Hang, Step::Error], Step::Approve);
    let f = fixture(gateway.clone(), policy(100, 10_000)).await;
    // A duplicate delivery of the order makes no second payment.
    f.order_created("o1", 2).await;
    let workers = tokio::spawn(f.payments.clone().run_workers());
    let (payment_id, status, _, attempts) = f.until_done("o1", Duration::from_secs(10)).await;
    workers.abort();
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(gateway.calls.load(Ordering::SeqCst), 4, "three failures, then the answer");
    assert_eq!(attempts, 4);
    assert_eq!(gateway.kept(&payment_id), Some(51_000), "charged once");
    assert_eq!(gateway.kept_total(), 51_000);
    assert_eq!(f.events().await, ["PaymentSucceeded"]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments").fetch_one(f.payments.db.reader()).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_answers_fails_the_payment_at_the_deadline_and_keeps_no_money() {
    let gateway = Scripted::new(&[], Step::Hang);
    // The first void fails too: it is retried until the gateway confirms it.
    gateway.refund_errors.store(1, Ordering::SeqCst);
    let f = fixture(gateway.clone(), policy(100, 600)).await;
    let started = Instant::now();
    f.order_created("o2", 1).await;
    let workers = tokio::spawn(f.payments.clone().run_workers());
    let (payment_id, status, _, _) = f.until_done("o2", Duration::from_secs(5)).await;
    let took = started.elapsed();
    workers.abort();
    assert_eq!(status, "FAILED");
    assert!(took >= Duration::from_millis(450), "gave up after {took:?}, before the deadline");
    assert!(took < Duration::from_millis(3_000), "gave up after {took:?}");
    assert!(gateway.calls.load(Ordering::SeqCst) >= 3, "retried: {}", gateway.calls.load(Ordering::SeqCst));
    assert_eq!(gateway.refunds.load(Ordering::SeqCst), 2, "the void, retried once");
    assert_eq!(gateway.kept(&payment_id), Some(0), "the charge of the unanswered call was voided");
    assert_eq!(f.events().await, ["PaymentFailed:GATEWAY_TIMEOUT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_after_the_payment_failed_is_voided_and_a_duplicate_answer_changes_nothing() {
    let gateway = Scripted::new(&[], Step::Approve);
    let f = fixture(gateway.clone(), policy(100, 60_000)).await;
    f.order_created("o3", 1).await;
    let claimed = f.payments.claim(10).await.unwrap().pop().unwrap();
    // Another worker (the lease ran out) gave up on the payment at its deadline...
    f.payments.give_up(&claimed).await.unwrap();
    assert_eq!(f.payment("o3").await.1, "FAILED");
    // ...and then the first one's call is answered: approved, and the gateway charged.
    assert!(gateway.authorize(&claimed.payment_id, claimed.amount).await.unwrap());
    assert_eq!(gateway.kept(&claimed.payment_id), Some(51_000));
    f.payments.answer(&claimed, true).await.unwrap();
    f.payments.answer(&claimed, true).await.unwrap();
    let (_, status, void_requested, _) = f.payment("o3").await;
    assert_eq!((status.as_str(), void_requested), ("FAILED", false));
    assert_eq!(gateway.kept(&claimed.payment_id), Some(0), "the late charge was voided");
    assert_eq!(f.events().await, ["PaymentFailed:GATEWAY_TIMEOUT"]);

    // Two answers to one payment (two workers, or a gateway answering twice): one event.
    f.order_created("o4", 1).await;
    let claimed = f.payments.claim(10).await.unwrap().pop().unwrap();
    let (a, b) = tokio::join!(f.payments.process(&claimed), f.payments.process(&claimed));
    a.unwrap();
    b.unwrap();
    f.payments.answer(&claimed, true).await.unwrap();
    assert_eq!(f.payment("o4").await.1, "SUCCEEDED");
    assert_eq!(gateway.kept(&claimed.payment_id), Some(51_000));
    assert_eq!(f.events().await, ["PaymentFailed:GATEWAY_TIMEOUT", "PaymentSucceeded"]);
}

/// Claiming runs every time a worker is free, and the table keeps every payment ever
/// made: SQLite must search the pending payments' index, in its order, not scan and sort
/// the table.
#[tokio::test]
async fn claiming_searches_the_pending_index_instead_of_scanning_every_payment() {
    let f = fixture(Scripted::new(&[], Step::Approve), policy(1_000, 10_000)).await;
    let claim = f.payments.db.sqlite_plan(&crate::worker::claim_sql(runtime::db::Backend::Sqlite)).await.unwrap();
    assert!(claim.iter().any(|step| step.contains("USING INDEX payments_pending")), "{claim:?}");
    assert!(!claim.iter().any(|step| step == "SCAN payments" || step.contains("TEMP B-TREE")), "{claim:?}");
    let count =
        f.payments.db.sqlite_plan(&format!("SELECT COUNT(*) FROM payments WHERE {}", crate::PENDING)).await.unwrap();
    assert!(count.iter().any(|step| step.contains("payments_pending")), "{count:?}");
}
