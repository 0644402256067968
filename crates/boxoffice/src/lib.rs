//! boxoffice: the binary's library — configuration, the list of modules ([`modules`]) and
//! how each is built from it ([`compose`]), the application that runs them together, and
//! the actuator endpoints. The cross-module audit and the load
//! generator are crates of their own (`audit`, `loadtest`).
//!
//! `main` only parses the command line ([`cli::Cli`]) and runs the command; tests build
//! the same [`app::Application`] on port 0.

pub mod actuator;
pub mod app;
pub mod cli;
pub mod compose;
pub mod modules;
pub mod proxy;
pub mod remote;
pub mod secure;
pub mod server;
pub mod web;
