//! The `lab` command line.
fn main() -> std::process::ExitCode {
    lab::cli::main()
}
