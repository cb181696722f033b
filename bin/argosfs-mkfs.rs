//! argosfs-mkfs: see `argosfs::cli::mkfs`.
fn main() -> std::process::ExitCode {
    argosfs::cli::mkfs::main()
}
