// glibc's allocator was a sixth of a short request's CPU (malloc, free and their
// consolidation across the runtime's threads); mimalloc's per-thread heaps cost a
// fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match roster::cli::run(roster::cli::Cli::parse_args()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", roster::cli::one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
