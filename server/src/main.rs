//! The `postgres-mcp` binary: the command line lives in the library ([`postgres_mcp::cli`]).

fn main() -> std::process::ExitCode {
    postgres_mcp::cli::run()
}
