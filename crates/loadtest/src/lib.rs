//! The load generator: the original's k6 test, built in, measuring both SLAs.
//!
//! Virtual users ramp through stages, as k6 does; each runs purchases — hold a seat,
//! order it, wait for the order's final state — with checks like k6's. Latency is taken
//! from when a request was due, not when it was sent, so a stalled generator or server
//! is not hidden. At the end: per-step latency, throughput, the time from order accepted
//! to its final state (as the server recorded it), how long the system took to drain
//! after the last user stopped, and the cross-module [`audit`]. It talks to boxoffice
//! over HTTP only (the contract's API, the operator's endpoints), so it depends on no
//! part of the server; the binary runs it as `boxoffice load` ([`LoadArgs`], [`run`]).

pub mod best;
mod door;
mod report;
mod room;
mod run;
pub mod stats;
pub mod token;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

pub use report::{Report, Threshold};
pub use room::RoomSummary;
pub use run::BotSummary;

/// The server's histogram of outbox lag (row committed → published), as it names it in
/// `/actuator/prometheus` (`runtime::metrics::OUTBOX_LAG`; a test of the binary's checks
/// that the two agree).
pub const OUTBOX_LAG_METRIC: &str = "outbox_publish_lag_seconds";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// The original's: users fight over one new 100-seat show.
    Original,
    /// Purchases that do not conflict, on a large show created for the run.
    Throughput,
    /// A trivial endpoint, as the ceiling of this machine and this generator.
    Ceiling,
    /// Seat spinning: the users buy as in `original`, while a bot without credentials
    /// (a new anonymous buyer each request, all from this address) holds seats of the
    /// same show as fast as it is answered and holds again what lapses. Reports the most
    /// seats the bot held at once beside the users' holds granted and refused.
    Spinning,
    /// Every user asks for 2–4 best-available seats of a venue (the demo venue, or one
    /// read from `--venue`), orders and pays, until the show sells out. Reports the share
    /// of groups seated together, the single seats left stranded, and when it sold out.
    #[serde(rename = "best-available")]
    BestAvailable,
    /// The door (docs/TICKETS.md): a show of `--tickets` seats is sold out, then
    /// `--scanners` gates check every ticket in at once, with a share of re-scans and
    /// forged codes. Reports check-ins per second, their latency, and that every real
    /// ticket got in exactly once. Needs `--auth-secret` to sign the scanners' tokens.
    Door,
    /// A show's on-sale behind its waiting room: `--visitors` arrive over `--window-secs`,
    /// a share of them (`--before-share`) before the on-sale; each joins the queue, waits,
    /// buys 1–4 best-available seats with its admission token once let through, and
    /// leaves. Reports the time in queue, how far the admission order strays from the
    /// queue order, purchases/s, the sell-out and who got nothing.
    Onsale,
    /// Joins only: `--visitors` (default 100,000) join a show's queue within
    /// `--window-secs` (default 10) and read their place once.
    #[serde(rename = "queue-join")]
    QueueJoin,
}

/// One ramping stage: reach `target` users over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    #[serde(with = "secs")]
    pub duration: Duration,
    pub target: usize,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// The original's k6 stages: 10 s → 50, 20 s → 100, 30 s → 200, 10 s → 400.
pub const ORIGINAL_STAGES: &str = "10s:50,20s:100,30s:200,10s:400";

pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    s.split(',').map(parse_stage).collect()
}

/// `10s:50` — reach 50 users over 10 seconds (`ms`, `s` and `m` units).
pub fn parse_stage(part: &str) -> Result<Stage, String> {
    let (d, t) = part.trim().split_once(':').ok_or_else(|| format!("{part}: expected DURATION:USERS"))?;
    let d = d.trim();
    let duration = if let Some(ms) = d.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|e| format!("{d}: {e}"))?)
    } else if let Some(m) = d.strip_suffix('m') {
        Duration::from_secs(60 * m.parse::<u64>().map_err(|e| format!("{d}: {e}"))?)
    } else {
        Duration::from_secs(d.trim_end_matches('s').parse().map_err(|e| format!("{d}: {e}"))?)
    };
    let target = t.trim().parse().map_err(|e| format!("{t}: {e}"))?;
    Ok(Stage { duration, target })
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the boxoffice to load (embedded or distributed).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Replicas of each module when they run in separate processes: comma-separated base
    /// URLs, users spread over them (default: --url for every module).
    #[arg(long, value_delimiter = ',')]
    pub catalog_url: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub reservation_url: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub order_url: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub payment_url: Vec<String>,
    /// The operator's token: the run creates its show and audits at the end.
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// The server's key of signed bearer tokens (its --auth-secret, or DATA_DIR/auth-secret):
    /// each virtual user gets a token of its own. Without it users send plain names,
    /// which only a server started with --open-bearer takes.
    #[arg(long, env = "BOXOFFICE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,
    #[arg(long, value_enum, default_value_t = Scenario::Original)]
    pub scenario: Scenario,
    /// Ramping stages, `DURATION:USERS,…` (k6's stages).
    #[arg(long, default_value = ORIGINAL_STAGES, value_delimiter = ',', value_parser = parse_stage)]
    pub stages: Vec<Stage>,
    /// `best-available`, `onsale`: the show whose seats the users ask for (default: the
    /// demo venue, 4), unless `--venue` creates one.
    #[arg(long)]
    pub event_id: Option<i64>,
    /// `best-available`: a venue layout (JSON, as docs/VENUES.md shows: the `venue`
    /// object, or a whole show with one) to create a show from for the run.
    #[arg(long, conflicts_with = "event_id")]
    pub venue: Option<PathBuf>,
    /// `best-available`: the seed of the users' group sizes (default: drawn, and
    /// reported).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seat rows × columns of the throughput scenario's show.
    #[arg(long, default_value_t = 300)]
    pub rows: i64,
    #[arg(long, default_value_t = 300)]
    pub cols: i64,
    /// Pause of each user between purchases, in ms (k6's `sleep`); default 1000 for the
    /// original scenario, as its k6 users paced themselves, 0 (flat out) otherwise.
    #[arg(long)]
    pub think_ms: Option<u64>,
    /// Give up waiting for an order's final state after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub final_timeout_secs: u64,
    /// How long to wait for the system to drain after the last user stopped.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout_secs: u64,
    /// Fail when fewer checks than this pass (k6's `checks: rate>…`).
    #[arg(long, default_value_t = 0.99)]
    pub min_check_rate: f64,
    /// Fail when the p99 of holds or orders exceeds this, in milliseconds.
    #[arg(long)]
    pub max_api_p99_ms: Option<f64>,
    /// `spinning`: fail when the bot held more seats than this at once (the server's
    /// --max-held-seats-per-address).
    #[arg(long)]
    pub bot_cap: Option<u64>,
    /// `throughput`, `best-available`, `onsale`: the share of CONFIRMED purchases, from 0
    /// to 1, whose buyer then reads the order's tickets until there is one per seat; the
    /// report's "tickets after CONFIRMED" is how long after the CONFIRMED answer they
    /// were all there (the tickets module's delay in issuing them).
    #[arg(long, default_value_t = 0.0)]
    pub tickets_share: f64,
    /// `door`: the tickets of the show sold out for the run.
    #[arg(long, default_value_t = 2000)]
    pub tickets: i64,
    /// `door`: gates scanning at once.
    #[arg(long, default_value_t = 20)]
    pub scanners: usize,
    /// `door`: scans a second per gate (0: each as soon as the last is answered).
    #[arg(long, default_value_t = 0.0)]
    pub scan_rate: f64,
    /// `door`: the share of tickets scanned again after everyone is in.
    #[arg(long, default_value_t = 0.05)]
    pub rescan_share: f64,
    /// `door`: the share of tickets whose code is also shown forged.
    #[arg(long, default_value_t = 0.02)]
    pub forged_share: f64,
    /// `onsale`, `queue-join`: the visitors (default 20,000; 100,000 for `queue-join`).
    #[arg(long)]
    pub visitors: Option<usize>,
    /// `onsale`, `queue-join`: the seconds over which the visitors arrive (default 60;
    /// 10 for `queue-join`).
    #[arg(long)]
    pub window_secs: Option<f64>,
    /// `onsale`, `queue-join`: the share of the window before the on-sale.
    #[arg(long, default_value_t = 0.3)]
    pub before_share: f64,
    /// `onsale`, `queue-join`: the room's rate, visitors let through a minute, or `auto`.
    #[arg(long, default_value = "auto")]
    pub room_rate: String,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as an HTML page with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// `boxoffice load`: runs, prints and writes the report; exits 0 when every threshold
/// passed, 1 when one failed, 2 when the run could not be made.
pub async fn run(args: LoadArgs) -> ExitCode {
    if args.scenario == Scenario::Door {
        return match door::run(&args).await {
            Ok(report) => {
                print!("{}", report.text());
                if let Some(path) = &args.json
                    && let Err(e) =
                        std::fs::write(path, serde_json::to_string_pretty(&report).expect("report serializes"))
                {
                    eprintln!("could not write {}: {e}", path.display());
                }
                if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(error) => {
                eprintln!("load run failed: {error:#}");
                ExitCode::from(2)
            }
        };
    }
    match run::run(&args).await {
        Ok(report) => {
            print!("{}", report.text());
            if let Some(path) = &args.json
                && let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&report).expect("report serializes"))
            {
                eprintln!("could not write {}: {e}", path.display());
            }
            if let Some(path) = &args.html
                && let Err(e) = std::fs::write(path, report.html())
            {
                eprintln!("could not write {}: {e}", path.display());
            }
            if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("load run failed: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_like_k6() {
        let stages = parse_stages(ORIGINAL_STAGES).unwrap();
        assert_eq!(stages.len(), 4);
        assert_eq!(stages[0], Stage { duration: Duration::from_secs(10), target: 50 });
        assert_eq!(stages[3], Stage { duration: Duration::from_secs(10), target: 400 });
        assert_eq!(parse_stages("500ms:3,1m:7").unwrap()[1], Stage { duration: Duration::from_secs(60), target: 7 });
        assert!(parse_stages("10s").is_err());
        assert!(parse_stages("xs:5").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn the_best_available_flags_parse() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(["load", "--admin-token", "t", "--scenario", "best-available"].iter().chain(extra))
        };
        let args = parse(&["--seed", "22"]).unwrap().load;
        assert_eq!(
            (args.scenario, args.event_id, args.venue, args.seed),
            (Scenario::BestAvailable, None, None, Some(22))
        );
        assert_eq!(parse(&["--event-id", "9"]).unwrap().load.event_id, Some(9));
        assert_eq!(parse(&["--venue", "v.json"]).unwrap().load.venue, Some(PathBuf::from("v.json")));
        assert!(parse(&["--venue", "v.json", "--event-id", "9"]).is_err(), "one show or the other");
    }

    #[test]
    fn the_best_available_scenario_is_named_in_kebab_case() {
        let named = Scenario::from_str("best-available", false).unwrap();
        assert_eq!(named, Scenario::BestAvailable);
        assert_eq!(serde_json::to_value(named).unwrap(), "best-available");
    }
}
