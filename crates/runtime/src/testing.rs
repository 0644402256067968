//! For tests that need what a machine may lack (PostgreSQL, Kafka, Chromium, promtool):
//! one that cannot run says so where `cargo test` shows it, and fails under `CI=true`,
//! where everything it needs must be there.

use std::io::Write;

/// Whether a test may go on: `found`, or else — under `CI=true` — a panic (the test
/// fails), or — elsewhere — a `SKIPPED <test>: needs <what>` line on the terminal.
pub fn require(found: bool, what: &str) -> bool {
    if !found {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{}: needs {what}, which CI=true requires", test_name());
        skip(&format!("needs {what}"));
    }
    found
}

/// The value of the environment variable `name`, if set and not empty; else as
/// [`require`] says (`what` names what the variable points at).
pub fn require_env(name: &str, what: &str) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    require(value.is_some(), &format!("{what} ({name} is not set)")).then_some(value).flatten()
}

/// Says that the running test does nothing, and why, on the terminal: straight to the
/// process's stderr, which libtest does not capture (it captures only `print!` and
/// `eprint!`), so the line shows even when the test passes.
pub fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {}: {why}", test_name());
}

/// libtest names a test's thread after the test.
fn test_name() -> String {
    std::thread::current().name().unwrap_or("a test").to_owned()
}
