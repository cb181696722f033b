//! The disks of an open volume as one replaceable set, and changing that set while the
//! volume is open (a disk added or replaced by a mount's control socket).
//!
//! Every operation takes the set current at its start ([`Volume::disk_set`], a shared
//! handle) and uses it throughout, so a stripe write never sees half of a change. A
//! change is made between writes: under the commit lock and the gate held exclusively,
//! after syncing every disk written since its last sync, the new set replaces the old.

use super::{DiskSlot, Superblock, Volume, lock_poisoned, open_disk};
use crate::error::{Error, Result};
use crate::store::DiskRef;
use crate::types::DiskId;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The disks of an open volume, in superblock order, and where each id sits.
pub(super) struct DiskSet {
    slots: Vec<Arc<DiskSlot>>,
    index: HashMap<DiskId, usize>,
}

impl DiskSet {
    pub(super) fn new(slots: Vec<Arc<DiskSlot>>) -> DiskSet {
        let index = slots
            .iter()
            .enumerate()
            .map(|(i, d)| (d.config.id, i))
            .collect();
        DiskSet { slots, index }
    }

    /// Every disk, in superblock order.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, Arc<DiskSlot>> {
        self.slots.iter()
    }

    /// The disk `id`, open or not.
    pub(super) fn slot(&self, id: DiskId) -> Option<&Arc<DiskSlot>> {
        self.index.get(&id).map(|i| &self.slots[*i])
    }

    /// The store of disk `id`, when it is open.
    pub(super) fn disk(&self, id: DiskId) -> Option<&DiskRef> {
        self.slot(id).and_then(|s| s.disk.as_ref())
    }

    /// Where shard `index` of `stripe` is, when it was written and its disk is open: the
    /// disk, its slot and its store.
    pub(super) fn shard_home(
        &self,
        stripe: &crate::meta::StripeRef,
        index: usize,
    ) -> Option<(DiskId, &Arc<DiskSlot>, &DiskRef)> {
        let id = stripe.disk_of(index)?;
        let slot = self.slot(id)?;
        Some((id, slot, slot.disk.as_ref()?))
    }
}

impl Volume {
    /// The disks now (cheap: a shared handle to the current set).
    pub(super) fn disk_set(&self) -> Arc<DiskSet> {
        self.disks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the volume's list of disks while it is open: `change` edits the
    /// superblock as read from ROOT (it may label and fill directories first); the
    /// superblock is validated and stored, then the open volume follows it: disks whose
    /// path and state are unchanged keep their open store, the others are opened anew.
    /// A disk whose directory changed (a replace) has the shards written to its old
    /// directory since `change` looked brought over first, so none is left behind.
    pub fn change_disks<T>(
        &self,
        change: impl FnOnce(&Path, &mut Superblock) -> Result<T>,
    ) -> Result<T> {
        self.meta_writable()?;
        let _superblock = lock_poisoned(&self.superblock_lock);
        let mut sb = Superblock::load(&self.root)?;
        let out = change(&self.root, &mut sb)?;
        sb.validate().map_err(Error::Config)?;
        if sb.layout != self.sb.layout || sb.volume != self.sb.volume {
            return Err(Error::Config(
                "the superblock's layout changed under the open volume".into(),
            ));
        }
        // Between writes: nothing is in flight while the gate is held exclusively.
        let _commit = lock_poisoned(&self.commit_lock);
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let old = self.disk_set();
        self.sync_dirty_disks(&old)?;
        let mut slots = Vec::with_capacity(sb.disks.len());
        for config in &sb.disks {
            let kept = old.slot(config.id).filter(|s| {
                s.config.path == config.path && s.state() == config.state && s.disk.is_some()
            });
            if let Some(slot) = kept {
                slots.push(slot.clone());
                continue;
            }
            let opened = config
                .state
                .is_in_use()
                .then(|| open_disk(&self.root, &sb, config, &self.store_io));
            match &opened {
                Some(Err(e)) => {
                    tracing::warn!(disk = %config.id, error = %e, "disk unavailable after the change; reads reconstruct from the others")
                }
                Some(Ok(new)) => {
                    if let Some(previous) = old.disk(config.id) {
                        bring_over(config.id, previous, new)?;
                    }
                    tracing::info!(disk = %config.id, path = %config.path.display(), "disk opened");
                }
                None => {}
            }
            // A disk that keeps its directory keeps its history; a new directory (a
            // replaced disk) starts afresh.
            let stats = old
                .slot(config.id)
                .filter(|s| s.config.path == config.path)
                .map(|s| s.stats.clone())
                .unwrap_or_else(|| Arc::new(self.records.disk(config.id, &config.path)));
            slots.push(Arc::new(DiskSlot::new(config.clone(), opened, stats)));
        }
        sb.store(&self.root)?;
        *self.disks.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(DiskSet::new(slots));
        Ok(out)
    }
}

/// Copies to `new` every shard object of `previous` it lacks (both the same disk id:
/// the old and the new directory of a replaced disk), then syncs `new`. Objects are
/// copied as they are: heal or scrub verify and rebuild what is bad.
fn bring_over(id: DiskId, previous: &DiskRef, new: &DiskRef) -> Result<()> {
    if Arc::ptr_eq(previous, new) {
        return Ok(());
    }
    let io = |source| Error::DiskIo { disk: id, source };
    let (Ok(old_keys), Ok(new_keys)) = (previous.list_shards(), new.list_shards()) else {
        // The old directory cannot be listed: nothing can be brought from it.
        return Ok(());
    };
    let have: std::collections::HashSet<_> = new_keys.into_iter().collect();
    let mut copied = 0u64;
    for key in old_keys.into_iter().filter(|k| !have.contains(k)) {
        if let Ok(bytes) = previous.get_shard(key) {
            new.put_shard(key, &[&bytes]).map_err(io)?;
            copied += 1;
        }
    }
    if copied > 0 {
        new.sync().map_err(io)?;
        tracing::info!(disk = %id, copied, "shards written to the old directory brought over");
    }
    Ok(())
}
