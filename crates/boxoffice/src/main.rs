use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    boxoffice::cli::run(boxoffice::cli::Cli::parse()).await
}
