//! argosfs-scrub: see `argosfs::cli::scrub`.
fn main() -> std::process::ExitCode {
    argosfs::cli::scrub::main()
}
