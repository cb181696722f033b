//! argosfs: the front command (`argosfs fsck ROOT` runs argosfs-fsck); see
//! `argosfs::cli::front`.
fn main() -> std::process::ExitCode {
    argosfs::cli::front::main()
}
