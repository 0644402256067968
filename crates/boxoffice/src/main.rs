use clap::Parser;

// Every request and event allocates; glibc's malloc and free were about 13% of the server's
// CPU under load, and with mimalloc a purchase costs about 10% less (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Before any file is made: the data directory's secrets and databases, and whatever
    // else this process creates, are its user's alone.
    boxoffice::secure::restrict_umask();
    boxoffice::cli::run(boxoffice::cli::Cli::parse()).await
}
