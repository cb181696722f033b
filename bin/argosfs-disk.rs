//! argosfs-disk: see `argosfs::cli::disk`.
fn main() -> std::process::ExitCode {
    argosfs::cli::disk::main()
}
