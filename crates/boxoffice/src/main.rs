//! `boxoffice`: parses the command line ([`boxoffice::cli`]) and runs the command — the
//! server ([`boxoffice::app`]), or the audit and the load generator, crates of their own.

use std::process::ExitCode;

use boxoffice::cli::{Cli, Command, ServeArgs};
use clap::Parser;

// Every request and event allocates; glibc's malloc and free were about 13% of the server's
// CPU under load, and with mimalloc a purchase costs about 10% less (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Before any file is made: the data directory's secrets and databases, and whatever
    // else this process creates, are its user's alone.
    boxoffice::secure::restrict_umask();
    run(Cli::parse()).await
}

async fn run(cli: Cli) -> ExitCode {
    let _telemetry = runtime::telemetry::init("boxoffice");
    let command = cli.command.unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    let result = match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => boxoffice::app::migrate(&args).await.map(|done| {
            for database in done {
                println!("migrated {database}");
            }
        }),
        Command::Replay(args) => boxoffice::app::replay(&args).await.map(|done| {
            for (group, topic, messages) in done {
                println!("{group} <- {topic}: rewound, {messages} messages to read again");
            }
        }),
        Command::Audit(args) => return audit::run(args).await,
        Command::Load(args) => return loadtest::run(args).await,
        Command::Token(args) => boxoffice::app::token(&args).map(|token| println!("{token}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "boxoffice failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = boxoffice::app::Application::build(args).await?;
    tracing::info!(addr = %app.addr(), "boxoffice listening");
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
