//! argosfs-autopilot: see `argosfs::cli::autopilot`.
fn main() -> std::process::ExitCode {
    argosfs::cli::autopilot::main()
}
