//! argosfs-import: see `argosfs::cli::import`.
fn main() -> std::process::ExitCode {
    argosfs::cli::import::main()
}
