//! argosfs-mount: see `argosfs::cli::mount`.
fn main() -> std::process::ExitCode {
    argosfs::cli::mount::main()
}
