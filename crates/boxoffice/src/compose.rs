//! How each module is built from the command line: the one place that maps `serve`'s
//! flags to a module's own settings.

use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use contract::holds::Holds;
use order::Orders;
use payment::{GatewayPolicy, Payments, SimulatedGateway};
use reservation::{HoldPolicy, Reservation};
use runtime::module::Module;

use crate::modules::Setup;

pub fn catalog(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    let catalog =
        Catalog::new(cx.db, cx.bus).with_open_test_reset(cx.args.allow_test_reset).with_demo(!cx.args.no_demo);
    Ok(Arc::new(catalog))
}

pub fn reservation(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    let args = cx.args;
    let policy = HoldPolicy {
        min_secs: args.hold_seconds.0 as i64,
        max_secs: args.hold_seconds.1 as i64,
        default_secs: args.default_hold_seconds as i64,
        max_seats: args.max_seats_per_hold,
        max_held_per_buyer: args.max_held_seats_per_buyer,
        max_seats_per_buyer_per_event: args.max_seats_per_buyer_per_event,
        max_held_per_address: args.max_held_seats_per_address,
        max_life_secs: args.max_hold_life_seconds.min(i64::MAX as u64) as i64,
        cooldown_secs: args.hold_cooldown_seconds.min(i64::MAX as u64) as i64,
        require_signed_buyers: args.require_signed_buyers,
        pin_lease: Duration::from_secs(args.pin_lease_seconds),
        sweep_interval: Duration::from_millis(args.sweep_interval_ms.max(10)),
    };
    Ok(Arc::new(Reservation::new(cx.db, cx.bus, policy).with_clock(args.clock.clone())))
}

pub fn order(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    let args = cx.args;
    // Pins go to the reservation module: in this process, or over HTTP.
    let in_process = cx.built.iter().find_map(|m| m.as_any().downcast_ref::<Reservation>());
    let holds: Arc<dyn Holds> = match (in_process, &args.reservation_url) {
        (Some(r), _) => Arc::new(r.clone()),
        (None, Some(url)) => Arc::new(crate::remote::HttpHolds::new(url, cx.admin_token)),
        (None, None) => anyhow::bail!("the order module needs --reservation-url when reservation runs elsewhere"),
    };
    let key_ttl = Duration::from_secs(args.idempotency_key_ttl_secs);
    let orders = Orders::new(cx.db, cx.bus, holds, args.max_seats_per_hold, key_ttl).with_clock(args.clock.clone());
    Ok(Arc::new(match args.settle_target_ms {
        0 => orders,
        ms => orders.with_settle_target(Duration::from_millis(ms)),
    }))
}

pub fn payment(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    let args = cx.args;
    let simulator =
        SimulatedGateway::new(args.payment_success_rate, args.payment_latency_ms.0..args.payment_latency_ms.1)
            .with_faults(args.payment_error_rate, args.payment_hang_rate);
    // With --module, payment may run in replicas, each simulating a gateway of its own.
    let gateway = Arc::new(if args.module.is_some() { simulator.one_of_many() } else { simulator });
    let policy = GatewayPolicy {
        call_timeout: Duration::from_millis(args.payment_timeout_ms.max(1)),
        deadline: Duration::from_millis(args.payment_deadline_ms),
        ..GatewayPolicy::default()
    };
    // In one process this is the only payment worker of its database; replicas instead
    // wait for each other's leases to run out.
    let payments = Payments::new(cx.db, cx.bus, gateway).with_policy(policy).as_sole_worker(args.module.is_none());
    Ok(Arc::new(payments))
}

pub fn waitingroom(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    let args = cx.args;
    let policy = waitingroom::Policy {
        grace: Duration::from_secs(args.room_grace_seconds),
        token_window: Duration::from_secs(args.room_token_window_seconds),
        ..waitingroom::Policy::default()
    };
    Ok(Arc::new(waitingroom::WaitingRoom::new(cx.db, cx.bus).with_clock(args.clock.clone()).with_policy(policy)))
}

pub fn tickets(cx: Setup<'_>) -> anyhow::Result<Arc<dyn Module>> {
    Ok(Arc::new(tickets::Tickets::new(cx.db, cx.bus).with_clock(cx.args.clock.clone())))
}
