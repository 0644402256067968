//! boxoffice: the binary's library — configuration, the application that wires the four
//! modules together, the actuator endpoints, and the cross-module audit.
//!
//! `main` only parses the command line and calls [`cli::run`]; tests build the same
//! [`app::Application`] on port 0.

pub mod actuator;
pub mod app;
pub mod audit;
pub mod cli;
pub mod load;
pub mod proxy;
pub mod remote;
pub mod secure;
pub mod server;
pub mod web;
