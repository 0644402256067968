//! Consistency checks: each module reports its own, the binary gathers them into
//! `GET /actuator/consistency`, and `boxoffice audit` checks the modules against each
//! other.

use serde::{Deserialize, Serialize};

use crate::outbox::Relay;

/// One check: its name, whether it holds, and what was found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    /// A check that holds when `violations` is zero.
    pub fn count(name: &str, violations: i64, what: &str) -> Check {
        Check {
            name: name.to_owned(),
            ok: violations == 0,
            detail: if violations == 0 { "ok".to_owned() } else { format!("{violations} {what}") },
        }
    }
}

/// Events still unpublished after this long mean the relay is stuck.
pub const OUTBOX_STUCK_MS: i64 = 30_000;

/// The check every module shares: its outbox is being published.
pub async fn outbox_check(relay: &Relay) -> anyhow::Result<Check> {
    let (backlog, oldest_ms) = relay.backlog().await?;
    Ok(Check {
        name: "outbox_published".to_owned(),
        ok: oldest_ms < OUTBOX_STUCK_MS,
        detail: format!("{backlog} unpublished, oldest {oldest_ms} ms"),
    })
}
