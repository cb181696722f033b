//! A tour of the library on an existing volume: write files, read them back, lose two
//! disks' worth of shards, read again (degraded), and print what happened.
//!
//! Usage: library_demo ROOT [verify]   (verify: open read-only and check the data only)

use argosfs::types::InodeId;
use argosfs::volume::{Caller, OpenOptions, Volume};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: library_demo ROOT"))?;
    let root = std::path::PathBuf::from(root);
    let options = OpenOptions {
        passphrase: std::env::var_os("ARGOSFS_PASSPHRASE")
            .map(std::os::unix::ffi::OsStringExt::into_vec),
        ..OpenOptions::default()
    };
    let verify_only = std::env::args().nth(2).as_deref() == Some("verify");
    let data: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let caller = Caller::root();
    if verify_only {
        let vol = Volume::open(
            &root,
            OpenOptions {
                read_only: true,
                ..options
            },
        )?;
        for (disk, why) in vol.unavailable_disks() {
            println!("disk {disk} unavailable: {why}");
        }
        let dir = vol.lookup(&caller, InodeId::ROOT, b"demo")?.ino;
        let file = vol.lookup(&caller, dir, b"big.bin")?.ino;
        let back = vol.read(file, 0, data.len())?;
        anyhow::ensure!(back == data, "read back differs");
        println!("read 32 MiB back, identical; stats: {:?}", vol.stats());
        return Ok(());
    }
    let vol = Volume::open(&root, options.clone())?;
    let sb = vol.superblock();
    println!(
        "volume {} ({}+{}, {} KiB stripes, {} disks)",
        sb.volume,
        sb.layout.k,
        sb.layout.m,
        sb.layout.stripe_bytes / 1024,
        sb.disks.len()
    );
    let dir = match vol.lookup(&caller, InodeId::ROOT, b"demo") {
        Ok(a) => a.ino,
        Err(_) => vol.mkdir(&caller, InodeId::ROOT, b"demo", 0o755)?.ino,
    };
    let started = Instant::now();
    let file = match vol.lookup(&caller, dir, b"big.bin") {
        Ok(a) => a.ino,
        Err(_) => vol.create(&caller, dir, b"big.bin", 0o644)?.ino,
    };
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        vol.write(&caller, file, (i as u64) << 20, piece)?;
    }
    vol.fsync(file)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote 32 MiB and fsynced in {secs:.3}s ({:.0} MB/s)",
        32.0 * 1.048576 / secs
    );
    let note = vol.create(
        &caller,
        dir,
        format!("note-{}.txt", std::process::id()).as_bytes(),
        0o644,
    )?;
    vol.write(&caller, note.ino, 0, b"hello from the ArgosFS library\n")?;
    vol.close()?;

    let vol = Volume::open(&root, options)?;
    let started = Instant::now();
    let back = vol.read(file, 0, data.len())?;
    anyhow::ensure!(back == data, "read back differs");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "read 32 MiB back in {secs:.3}s, identical; stats: {:?}",
        vol.stats()
    );
    println!("statfs: {:?}", vol.statfs());
    let names: Vec<String> = vol
        .readdir(dir, 0, 100)?
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    println!("demo/ holds: {}", names.join(" "));
    vol.close()?;
    Ok(())
}
