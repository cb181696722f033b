//! Packaging: the `argosfs` front command against the single programs, the generated man
//! pages and shell completions (stale when they differ from the clap definitions;
//! `ARGOSFS_BLESS=1 cargo test cli_packaging` rewrites them), every binary accounted for,
//! and the systemd units in contrib/ checked by `systemd-analyze verify`.

use crate::common::{self, Spec};
use argosfs::cli::front::{PROGRAMS, Program};
use clap_complete::Shell;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FRONT: &str = env!("CARGO_BIN_EXE_argosfs");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The date in the man pages' title line: the last change worth a reader's notice.
const MAN_DATE: &str = "2026-11-27";

fn is_blessing() -> bool {
    std::env::var_os("ARGOSFS_BLESS").is_some_and(|v| v == "1")
}

/// Compares generated files with the checked-in ones (or rewrites them when blessing) and
/// fails naming every stale file.
fn check_generated(files: &[(PathBuf, Vec<u8>)]) {
    let mut stale = Vec::new();
    for (path, want) in files {
        if is_blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, want).unwrap();
        } else if std::fs::read(path).ok().as_ref() != Some(want) {
            stale.push(path.strip_prefix(repo()).unwrap().display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing generated files: {}\nthe clap definitions changed: run `ARGOSFS_BLESS=1 cargo test cli_packaging` and commit the result",
        stale.join(", ")
    );
}

/// A program's man page: clap_mangen's sections, then EXAMPLES, EXIT STATUS and SEE ALSO
/// from the tables in lib/cli.
fn man_page(program: &Program) -> Vec<u8> {
    // No `help` subcommand in the page: it has no page of its own to point to.
    let command = (program.command)().disable_help_subcommand(true);
    let has_subcommands = command.has_subcommands();
    // The front command's subcommands are the programs, each with its page; another
    // program's subcommands are its own actions, described in its page.
    let actions =
        (has_subcommands && program.name != "argosfs").then(|| actions_section(program, &command));
    let man = clap_mangen::Man::new(command)
        .section("8")
        .date(MAN_DATE)
        .manual("ArgosFS Manual")
        .source(format!("ArgosFS {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    match actions {
        Some(actions) => actions.to_writer(&mut out).unwrap(),
        None if has_subcommands => man.render_subcommands_section(&mut out).unwrap(),
        None => {}
    }
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in program.examples {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in program.exit_status {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<String> = PROGRAMS
        .iter()
        .filter(|p| p.name != program.name)
        .map(|p| format!("{}(8)", p.name))
        .collect();
    see_also.push("argosfs(5)".into());
    if program.name == "argosfs-mount" {
        see_also.extend(["mount(8)", "fstab(5)", "systemd.mount(5)"].map(String::from));
    }
    roff.text([roman(see_also.join(", "))]);
    roff.to_writer(&mut out).unwrap();
    man.render_version_section(&mut out).unwrap();
    // Each part opens with the same two-line roff preamble: keep the first only.
    let text = String::from_utf8(out).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let preamble = [lines[0], lines[1]];
    let mut i = 2;
    while i + 1 < lines.len() {
        if [lines[i], lines[i + 1]] == preamble {
            lines.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// How an argument is written in a synopsis or an option list: `--max-bytes`, `<DISK>`.
fn arg_words(arg: &clap::Arg) -> (Vec<Inline>, String) {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    match arg.get_long() {
        None => (vec![italic(format!("<{value}>"))], format!("<{value}>")),
        Some(long) if takes_value => (
            vec![
                bold(format!("--{long}")),
                roman(" "),
                italic(format!("<{value}>")),
            ],
            format!("[--{long} {value}]"),
        ),
        Some(long) => (vec![bold(format!("--{long}"))], format!("[--{long}]")),
    }
}

/// The COMMANDS section of a program whose subcommands are its own actions
/// (`argosfs-disk ROOT list`): each with its synopsis, description and arguments.
/// clap_mangen would instead point each to a page of its own.
fn actions_section(program: &Program, command: &clap::Command) -> Roff {
    let mut command = command.clone();
    command.build();
    let before: Vec<String> = command.get_positionals().map(|a| arg_words(a).1).collect();
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for action in command.get_subcommands() {
        let own: Vec<&clap::Arg> = action
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help")
            .collect();
        let mut synopsis = vec![program.name.to_string()];
        synopsis.extend(before.iter().cloned());
        synopsis.push(action.get_name().to_string());
        synopsis.extend(
            own.iter()
                .filter(|a| a.is_positional())
                .map(|a| arg_words(a).1),
        );
        synopsis.extend(
            own.iter()
                .filter(|a| !a.is_positional())
                .map(|a| arg_words(a).1),
        );
        roff.control("SS", [action.get_name()]);
        roff.text([bold(synopsis.join(" "))]);
        let about = action
            .get_long_about()
            .or(action.get_about())
            .map(|t| t.to_string())
            .unwrap_or_default();
        for paragraph in about.split("\n\n") {
            roff.control("PP", []);
            roff.text([roman(paragraph.trim())]);
        }
        for arg in own {
            roff.control("TP", []);
            roff.text(arg_words(arg).0);
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|t| t.to_string())
                .unwrap_or_default();
            roff.text([roman(help)]);
        }
    }
    roff
}

fn completion(program: &Program, shell: Shell) -> (PathBuf, Vec<u8>) {
    let mut command = (program.command)();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, program.name, &mut out);
    let dir = repo().join("completions");
    let path = match shell {
        Shell::Bash => dir.join("bash").join(program.name),
        Shell::Zsh => dir.join("zsh").join(format!("_{}", program.name)),
        Shell::Fish => dir.join("fish").join(format!("{}.fish", program.name)),
        other => unreachable!("{other} completions are not shipped"),
    };
    (path, out)
}

#[test]
fn man_pages_are_generated_from_the_clap_definitions() {
    let files: Vec<(PathBuf, Vec<u8>)> = PROGRAMS
        .iter()
        .map(|p| {
            (
                repo().join("man").join(format!("{}.8", p.name)),
                man_page(p),
            )
        })
        .collect();
    check_generated(&files);
    let fsck = String::from_utf8(man_page(&PROGRAMS[3])).unwrap();
    assert!(fsck.contains(".SH \"EXIT STATUS\""), "{fsck}");
    assert!(fsck.contains("argosfs\\-fsck /srv/argosfs \\-n"), "{fsck}");
}

#[test]
fn shell_completions_are_generated_from_the_clap_definitions() {
    let files: Vec<(PathBuf, Vec<u8>)> = PROGRAMS
        .iter()
        .flat_map(|p| [Shell::Bash, Shell::Zsh, Shell::Fish].map(|s| completion(p, s)))
        .collect();
    check_generated(&files);
}

/// The `name = "..."` of every `[[bin]]` in Cargo.toml.
fn cargo_bins() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let mut bins = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            let name = value
                .trim()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            bins.push(name.to_string());
        }
    }
    bins
}

#[test]
fn every_binary_has_a_man_page_completions_and_a_front_subcommand() {
    let bins = cargo_bins();
    assert!(bins.len() >= 7, "{bins:?}");
    let front = <argosfs::cli::front::FrontArgs as clap::CommandFactory>::command();
    let mut listed: Vec<&str> = PROGRAMS.iter().map(|p| p.name).collect();
    for bin in &bins {
        assert!(
            listed.contains(&bin.as_str()),
            "{bin} is not in argosfs::cli::front::PROGRAMS"
        );
        assert!(
            repo().join("man").join(format!("{bin}.8")).exists(),
            "man/{bin}.8 is missing"
        );
        assert!(
            repo().join("completions/bash").join(bin).exists(),
            "completions/bash/{bin} is missing"
        );
        if let Some(sub) = bin.strip_prefix("argosfs-") {
            assert!(
                front.find_subcommand(sub).is_some(),
                "`argosfs {sub}` does not run {bin}"
            );
        }
        // Each program's clap definition names it, so its usage and version say so.
        let program = PROGRAMS.iter().find(|p| p.name == bin).unwrap();
        assert_eq!((program.command)().get_name(), bin);
    }
    listed.retain(|name| !bins.iter().any(|b| b == name));
    assert!(listed.is_empty(), "PROGRAMS names no binary: {listed:?}");
    assert!(repo().join("man/argosfs.5").exists(), "man/argosfs.5");
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ARGOSFS_PASSPHRASE")
        .output()
        .unwrap()
}

fn bin(name: &str) -> PathBuf {
    // Every program is built next to the front command.
    Path::new(FRONT).with_file_name(name)
}

/// Runs `argosfs-NAME ARGS` and `argosfs NAME ARGS`.
fn both(name: &str, args: &[&str]) -> (Output, Output) {
    let single = run(bin(&format!("argosfs-{name}")).to_str().unwrap(), args);
    let mut front_args = vec![name];
    front_args.extend_from_slice(args);
    (single, run(FRONT, &front_args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn front_command_and_single_programs_agree_on_fsck_and_verify_journal() {
    let tv = common::make(&Spec::default());
    let vol = tv.open();
    common::put_file(&vol, b"f", &common::pattern(300_000, 7));
    vol.close().unwrap();
    let root = tv.root.to_str().unwrap();

    for args in [&[root, "-n", "--json"][..], &[root, "--repair", "--json"]] {
        let (single, front) = both("fsck", args);
        assert_eq!(single.status.code(), Some(0), "{}", text(&single.stderr));
        assert_eq!(front.status.code(), single.status.code());
        assert_eq!(text(&front.stdout), text(&single.stdout));
    }
    let (single, front) = both("verify-journal", &[root, "--json"]);
    assert_eq!(single.status.code(), Some(0), "{}", text(&single.stderr));
    assert_eq!(front.status.code(), Some(0));
    assert_eq!(text(&front.stdout), text(&single.stdout));

    // A lost shard: exit 4 from both, the same findings; then both repair it.
    tv.shard_files(0)[0].remove();
    let (single, front) = both("fsck", &[root, "--json"]);
    assert_eq!(single.status.code(), Some(4), "{}", text(&single.stdout));
    assert_eq!(front.status.code(), Some(4));
    assert_eq!(text(&front.stdout), text(&single.stdout));
    let front = run(FRONT, &["fsck", root, "--repair"]);
    assert_eq!(front.status.code(), Some(1), "{}", text(&front.stdout));
    assert_eq!(run(FRONT, &["fsck", root, "-q"]).status.code(), Some(0));

    // Not a volume: 8 from fsck, 1 from verify-journal, with the same JSON error.
    let empty = tempfile::tempdir().unwrap();
    let nowhere = empty.path().to_str().unwrap();
    let (single, front) = both("fsck", &[nowhere, "--json"]);
    assert_eq!(single.status.code(), Some(8));
    assert_eq!(front.status.code(), Some(8));
    assert_eq!(text(&front.stdout), text(&single.stdout));
    assert_eq!(text(&front.stderr), text(&single.stderr));
    let summary: Value = serde_json::from_str(text(&front.stdout).trim()).unwrap();
    assert!(summary["data"]["error"].as_str().unwrap().contains(nowhere));
    let (single, front) = both("verify-journal", &[nowhere, "--json"]);
    assert_eq!(single.status.code(), Some(1));
    assert_eq!(front.status.code(), Some(1));
    assert_eq!(text(&front.stdout), text(&single.stdout));
    let report: Value = serde_json::from_slice(&front.stdout).unwrap();
    assert_eq!(
        (report["schema"].clone(), report["ok"].clone()),
        (1.into(), false.into())
    );

    // Usage errors: 16 from fsck (as fsck(8)), 2 from the others, either way.
    for args in [&["--bogus"][..], &[]] {
        let (single, front) = both("fsck", args);
        assert_eq!(single.status.code(), Some(16));
        assert_eq!(front.status.code(), Some(16));
        let (single, front) = both("verify-journal", args);
        assert_eq!(single.status.code(), Some(2));
        assert_eq!(front.status.code(), Some(2));
    }
}

#[test]
fn front_command_and_mkfs_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for via_front in [false, true] {
        let base = dir.path().join(if via_front { "front" } else { "single" });
        let mut args = vec![base.join("root").display().to_string()];
        for i in 0..3 {
            args.push("--disk".into());
            args.push(base.join(format!("d{i}")).display().to_string());
        }
        args.extend(["--json", "--compression", "zstd:3"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = if via_front {
            run(FRONT, &[&["mkfs"][..], &args].concat())
        } else {
            run(bin("argosfs-mkfs").to_str().unwrap(), &args)
        };
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Paths and the UUID differ by construction; everything else must not.
        assert!(report["root"].as_str().unwrap().ends_with("/root"));
        report["root"] = Value::Null;
        report["volume"] = Value::Null;
        for disk in report["disks"].as_array_mut().unwrap() {
            disk["path"] = Value::Null;
        }
        reports.push(report);
        // The other entry point ran on the same directories: an existing volume.
        let again = if via_front {
            run(bin("argosfs-mkfs").to_str().unwrap(), &args)
        } else {
            run(FRONT, &[&["mkfs"][..], &args].concat())
        };
        assert_eq!(again.status.code(), Some(1));
        assert!(
            text(&again.stderr).contains("--force"),
            "{}",
            text(&again.stderr)
        );
    }
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0]["layout"], "2+1");
    for args in [
        &["/tmp/x"][..],
        &["/tmp/x", "--disk", "/tmp/d", "--layout", "four"],
    ] {
        let (single, front) = both("mkfs", args);
        assert_eq!(single.status.code(), Some(2));
        assert_eq!(front.status.code(), Some(2));
    }
}

#[test]
fn front_command_help_and_version() {
    let out = run(FRONT, &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("argosfs {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(FRONT, &["help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for name in PROGRAMS
        .iter()
        .filter_map(|p| p.name.strip_prefix("argosfs-"))
    {
        assert!(help.contains(&format!("  {name} ")), "{name}: {help}");
    }
    let out = run(FRONT, &["help", "fsck"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--repair"));
    assert!(text(&out.stdout).contains("Exit status:"));
    // No subcommand, or an unknown one: usage, exit 2.
    assert_eq!(run(FRONT, &[]).status.code(), Some(2));
    let out = run(FRONT, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("frobnicate"));
    // Every program's --help ends with its examples and exit status.
    for program in PROGRAMS {
        let out = run(bin(program.name).to_str().unwrap(), &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{}", program.name);
        let help = text(&out.stdout);
        assert!(help.contains("Exit status:"), "{}: {help}", program.name);
        for (code, _) in program.exit_status {
            assert!(
                help.contains(&format!("\n  {code} ")),
                "{}: {help}",
                program.name
            );
        }
    }
}

#[test]
fn front_command_mounts_in_the_background_and_unmounts() {
    if let Some(why) = crate::mount_util::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let tv = common::make(&Spec::default());
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = run(
        FRONT,
        &[
            "mount",
            tv.root.to_str().unwrap(),
            mnt.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["read_only"], false);
    let pid = report["pid"].as_i64().unwrap();
    // The server runs as argosfs-mount, whichever program started it.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"argosfs-mount\0mount\0"),
        "{cmdline:?}"
    );
    std::fs::write(mnt.join("f"), b"through argosfs mount").unwrap();
    let umount = Command::new("umount").arg(&mnt).status().unwrap();
    assert!(umount.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let vol = tv.open();
    let f = vol
        .lookup(&common::root(), argosfs::types::InodeId::ROOT, b"f")
        .unwrap();
    assert_eq!(
        common::read_all(&vol, f.ino).unwrap(),
        b"through argosfs mount"
    );
}

/// Copies the unit files to a temporary directory with the installed binary paths
/// replaced by the freshly built ones (verify wants ExecStart to exist).
fn units_for_verify(dir: &Path) -> Vec<PathBuf> {
    let source = repo().join("contrib/systemd");
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if ![".service", ".mount", ".timer"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            continue;
        }
        let mut unit = std::fs::read_to_string(&path).unwrap();
        for program in ["argosfs-mount", "argosfs-scrub", "argosfs-autopilot"] {
            unit = unit.replace(
                &format!("/usr/local/bin/{program}"),
                bin(program).to_str().unwrap(),
            );
        }
        std::fs::write(dir.join(&name), unit).unwrap();
        // A template is verified through an instance of it.
        units.push(dir.join(name.replace("@.", "@mnt-data.")));
    }
    units.sort();
    units
}

#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = units_for_verify(dir.path());
    assert!(units.len() >= 2, "{units:?}");
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    // Complaints about other units on this machine are not ours.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(dir.path().to_str().unwrap()) || l.contains("argosfs"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {units:?}:\n{stderr}"
    );
}
