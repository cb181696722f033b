//! argosfs-export: see `argosfs::cli::export`.
fn main() -> std::process::ExitCode {
    argosfs::cli::export::main()
}
