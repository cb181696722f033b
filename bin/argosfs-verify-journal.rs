//! argosfs-verify-journal: see `argosfs::cli::verify_journal`.
fn main() -> std::process::ExitCode {
    argosfs::cli::verify_journal::main()
}
