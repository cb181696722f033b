//! argosfs-fsck: see `argosfs::cli::fsck`.
fn main() -> std::process::ExitCode {
    argosfs::cli::fsck::main()
}
