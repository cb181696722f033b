//! Changes to a volume's list of disks: add a disk, put a new directory in a disk's
//! place (replace), forget a drained disk. Each is made offline under the volume lock, or
//! in the open volume of a mount ([`Volume::change_disks`]), by the same code. Each
//! labels what it must and rewrites the superblock atomically as its last step, so an
//! interrupted change leaves the volume as it was.

use crate::error::{Error, Result};
use crate::store::{DirDisk, Disk, DiskLabel};
use crate::types::DiskId;
use crate::volume::{DiskConfig, DiskState, Superblock, Volume};
use std::path::{Path, PathBuf};

/// Where a change to the list of disks is made.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// A volume no process has open: ROOT, changed under the volume lock.
    Offline(&'a Path),
    /// The open volume (of this mount): it follows the change at once.
    Open(&'a Volume),
}

/// Runs `change` on the superblock of `target` (with ROOT made absolute) and stores the
/// result, validated.
fn change_superblock<T>(
    target: Target<'_>,
    change: impl FnOnce(&Path, &mut Superblock) -> Result<T>,
) -> Result<T> {
    let absolute = |root: &Path| absolute_root(root);
    match target {
        Target::Offline(root) => {
            let root = &absolute(root)?;
            let _lock = crate::volume::take_lock(root, true)?;
            let mut sb = Superblock::load(root)?;
            let out = change(root, &mut sb)?;
            sb.validate().map_err(Error::Config)?;
            sb.store(root)?;
            Ok(out)
        }
        Target::Open(vol) => vol.change_disks(|root, sb| change(&absolute(root)?, sb)),
    }
}

/// The position of disk `disk` in the superblock's list.
fn entry_of(sb: &Superblock, disk: DiskId) -> Result<usize> {
    sb.disks
        .iter()
        .position(|d| d.id == disk)
        .ok_or_else(|| Error::Config(format!("no disk {disk} in this volume")))
}

/// Finds a disk by what a person types: its id (`d3` or `3`) or its path.
pub fn find_disk(root: &Path, sb: &Superblock, text: &str) -> Result<DiskId> {
    let root = &absolute_root(root)?;
    let by_id = text
        .strip_prefix('d')
        .unwrap_or(text)
        .parse::<u16>()
        .ok()
        .map(DiskId)
        .filter(|id| sb.disks.iter().any(|d| d.id == *id));
    if let Some(id) = by_id {
        return Ok(id);
    }
    let wanted = std::path::absolute(text).map_err(|e| Error::io(text, e))?;
    sb.disks
        .iter()
        .find(|d| d.resolve(root) == wanted)
        .map(|d| d.id)
        .ok_or_else(|| {
            Error::Config(format!(
                "{text:?} names no disk of this volume (give its id, e.g. d3, or its path; `argosfs disk ROOT list` shows them)"
            ))
        })
}

/// ROOT made absolute, as the paths it is compared with are: disks stored relative to
/// ROOT then resolve to where they are, whatever directory the caller runs in.
fn absolute_root(root: &Path) -> Result<PathBuf> {
    std::path::absolute(root).map_err(|e| Error::io(root, e))
}

/// The path to store for a disk directory the user gave: absolute against the current
/// directory, then relative to ROOT when it lies inside it (as mkfs stores it).
fn stored_path(root: &Path, given: &Path) -> Result<(PathBuf, PathBuf)> {
    let absolute = std::path::absolute(given).map_err(|e| Error::io(given, e))?;
    let stored = match absolute.strip_prefix(root) {
        Ok(inside) => inside.to_path_buf(),
        Err(_) => absolute.clone(),
    };
    Ok((absolute, stored))
}

/// Creates and labels a disk directory for disk `id`; refuses one that already holds an
/// ArgosFS label.
fn label_new_disk(path: &Path, sb: &Superblock, id: DiskId) -> Result<()> {
    if DirDisk::label_at(path).ok().flatten().is_some() {
        return Err(Error::AlreadyFormatted {
            path: path.to_path_buf(),
        });
    }
    let disk = DirDisk::create(path).map_err(|e| Error::io(path, e))?;
    let label = DiskLabel::new(sb.volume, id);
    disk.write_label(&label.encode())
        .map_err(|e| Error::io(path, e))
}

/// Adds a disk (`PATH[:weight=W,class=C,domain=D,numa=N]`, as mkfs takes it; a
/// relative path is taken against the current directory): labels it and appends it to
/// the superblock. New stripes use it at once; existing data moves only by rebalance.
pub fn add(target: Target<'_>, text: &str) -> Result<DiskConfig> {
    change_superblock(target, |root, sb| add_to(root, sb, text))
}

fn add_to(root: &Path, sb: &mut Superblock, text: &str) -> Result<DiskConfig> {
    let id = DiskId(sb.disks.iter().map(|d| d.id.0 + 1).max().unwrap_or(0));
    let mut config = DiskConfig::parse(id, text).map_err(Error::Config)?;
    let (absolute, stored) = stored_path(root, &config.path)?;
    if sb.disks.iter().any(|d| d.resolve(root) == absolute) {
        return Err(Error::Config(format!(
            "{} is already a disk of this volume",
            absolute.display()
        )));
    }
    label_new_disk(&absolute, sb, id)?;
    config.path = stored;
    config.state_since_unix = crate::types::unix_now();
    config.state_reason = "added".into();
    sb.disks.push(config.clone());
    Ok(config)
}

/// What [`replace`] did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Replaced {
    /// The disk whose place was taken.
    pub disk: DiskId,
    /// Its old directory.
    pub old_path: PathBuf,
    /// The new one.
    pub new_path: PathBuf,
    /// Shards copied from the old directory (it was readable).
    pub shards_copied: u64,
    /// Why the old directory could not be copied from, when it could not.
    pub old_unreadable: Option<String>,
}

/// Puts the directory `new` in the place of disk `disk`: it is labelled with the disk's
/// id, so placement and every stripe reference treat it as that disk. When the old
/// directory still reads, its shards are copied over first (each verified by its own
/// checksums as it is read back); whatever is missing afterwards, heal rebuilds. The
/// superblock is switched to the new path last, so until then the old disk stays in use.
pub fn replace(target: Target<'_>, disk: DiskId, new: &Path) -> Result<Replaced> {
    change_superblock(target, |root, sb| replace_in(root, sb, disk, new))
}

fn replace_in(root: &Path, sb: &mut Superblock, disk: DiskId, new: &Path) -> Result<Replaced> {
    let entry = entry_of(sb, disk)?;
    let old_path = sb.disks[entry].resolve(root);
    let (absolute, stored) = stored_path(root, new)?;
    if sb.disks.iter().any(|d| d.resolve(root) == absolute) {
        return Err(Error::Config(format!(
            "{} is already a disk of this volume",
            absolute.display()
        )));
    }
    label_new_disk(&absolute, sb, disk)?;
    let target = DirDisk::open(&absolute).map_err(|e| Error::io(&absolute, e))?;
    let (shards_copied, old_unreadable) = match copy_shards(&old_path, sb, disk, &target) {
        Ok(n) => (n, None),
        Err(why) => (0, Some(why)),
    };
    target.sync().map_err(|e| Error::io(&absolute, e))?;
    let entry = &mut sb.disks[entry];
    entry.path = stored;
    entry.state = DiskState::Active;
    entry.state_since_unix = crate::types::unix_now();
    entry.state_reason = format!("replaced {}", old_path.display());
    Ok(Replaced {
        disk,
        old_path,
        new_path: absolute,
        shards_copied,
        old_unreadable,
    })
}

/// Copies every shard object of the old disk directory that verifies as a shard of this
/// volume; `Err` says why the old directory cannot be read at all.
fn copy_shards(
    old: &Path,
    sb: &Superblock,
    disk: DiskId,
    target: &DirDisk,
) -> std::result::Result<u64, String> {
    let source = DirDisk::open(old).map_err(|e| format!("cannot open {}: {e}", old.display()))?;
    let label = source
        .read_label()
        .ok()
        .flatten()
        .and_then(|b| DiskLabel::decode(&old.display().to_string(), &b).ok())
        .ok_or_else(|| format!("{} has no readable label", old.display()))?;
    if label.volume != sb.volume || label.disk != disk {
        return Err(format!("{} is labelled for another disk", old.display()));
    }
    let keys = source
        .list_shards()
        .map_err(|e| format!("cannot list {}: {e}", old.display()))?;
    let mut copied = 0;
    for key in keys {
        let Ok(bytes) = source.get_shard(key) else {
            continue;
        };
        // Only objects that verify are worth copying; heal rebuilds the rest.
        let Ok((object, volume)) = crate::store::shard::decode_shard("", bytes.clone(), None)
        else {
            continue;
        };
        if volume != sb.volume || object.header.key() != key {
            continue;
        }
        if target.put_shard(key, &[&bytes]).is_ok() {
            copied += 1;
        }
    }
    Ok(copied)
}

/// Sets a disk's state by hand: `Failed` (not read, not written: heal rebuilds its shards
/// elsewhere) or `Active` (back in use: a failed disk is opened again, a draining one
/// takes new shards again). Draining and removed are reached by drain only. Refused
/// when failing the disk would leave a stripe with fewer than k readable shards (its
/// data would be lost), or fewer writable failure domains than `min_shards` (every new
/// write would fail); `vol` is the open volume, so both are checked against it.
pub fn set_state(vol: &Volume, disk: DiskId, state: DiskState, reason: &str) -> Result<()> {
    if !matches!(state, DiskState::Active | DiskState::Failed) {
        return Err(Error::Config(format!(
            "a disk is set {state:?} by drain, not by hand"
        )));
    }
    if state == DiskState::Failed {
        check_can_fail(vol, disk)?;
    }
    let reason = if reason.is_empty() {
        match state {
            DiskState::Failed => "marked failed by hand",
            _ => "marked active by hand",
        }
    } else {
        reason
    };
    vol.change_disks(|_, sb| {
        let entry = entry_of(sb, disk)?;
        let entry = &mut sb.disks[entry];
        if entry.state == DiskState::Removed {
            return Err(Error::Config(format!(
                "disk {disk} was drained and removed: add it again instead"
            )));
        }
        entry.state = state;
        entry.state_since_unix = crate::types::unix_now();
        entry.state_reason = reason.to_string();
        Ok(())
    })
}

/// Refuses to fail `disk` when that would lose data or stop writes.
fn check_can_fail(vol: &Volume, disk: DiskId) -> Result<()> {
    let infos = vol.disk_infos();
    let readable: std::collections::HashSet<DiskId> = infos
        .iter()
        .filter(|i| i.config.id != disk && i.is_readable())
        .map(|i| i.config.id)
        .collect();
    let k = usize::from(vol.superblock().layout.k);
    let lost = vol
        .stripes()
        .iter()
        .filter(|at| at.stripe.uses(disk))
        .filter(|at| {
            at.stripe
                .placed()
                .filter(|(_, d)| readable.contains(d))
                .count()
                < k
        })
        .count();
    if lost > 0 {
        return Err(Error::Config(format!(
            "failing {disk} would leave {lost} stripe(s) with fewer than {k} readable shards (their data would be lost): bring the other missing disks back, or heal first"
        )));
    }
    let mut domains: Vec<&str> = infos
        .iter()
        .filter(|i| i.config.id != disk && i.is_writable())
        .map(|i| i.config.domain.as_str())
        .collect();
    domains.sort_unstable();
    domains.dedup();
    if domains.len() < vol.min_shards() {
        return Err(Error::Config(format!(
            "failing {disk} would leave {} writable failure domain(s), fewer than min_shards {}: every new write would fail; add or replace a disk first",
            domains.len(),
            vol.min_shards()
        )));
    }
    Ok(())
}

/// Forgets a disk that was drained (state removed): no stripe references it any more.
pub fn forget(target: Target<'_>, disk: DiskId) -> Result<()> {
    change_superblock(target, |_, sb| forget_in(sb, disk))
}

fn forget_in(sb: &mut Superblock, disk: DiskId) -> Result<()> {
    let entry = entry_of(sb, disk)?;
    if sb.disks[entry].state != DiskState::Removed {
        return Err(Error::Config(format!(
            "disk {disk} is {:?}, not drained: drain it first (its shards would be lost)",
            sb.disks[entry].state
        )));
    }
    sb.disks.remove(entry);
    Ok(())
}
