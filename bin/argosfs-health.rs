//! argosfs-health: see `argosfs::cli::health`.
fn main() -> std::process::ExitCode {
    argosfs::cli::health::main()
}
