//! The shard check that needs no metadata: what fsck verifies of an encrypted volume
//! checked without its passphrase, whose metadata it cannot read.
//!
//! Every shard object is read and verified on its own (frame, head and block CRCs,
//! volume, key), and the objects are grouped by the stripe their headers name: a stripe
//! should have all of its k+m shards, agreeing on inode, chunk, layout and length, with
//! parity equal to what the data shards encode to (Reed-Solomon works on the sealed
//! bytes, so no key is needed). Without the tree, a stripe with shards missing may be an
//! unfinished delete rather than damage, so that is a warning; objects that fail to
//! verify and parity that disagrees are errors. Nothing is written.

use super::{Finding, Kind, Report, ShardCheck, shard};
use crate::types::{ShardKey, StripeId};
use std::collections::BTreeMap;

/// What the shards of one stripe said about it.
struct StripeSeen {
    /// (inode, chunk, k, m, payload length) from the first good shard.
    identity: (u64, u64, u8, u8, usize),
    /// Good shards by index: (disk slot, payload).
    payloads: BTreeMap<u8, (usize, Vec<u8>)>,
    /// The shards disagree about the stripe they belong to.
    is_inconsistent: bool,
}

impl ShardCheck<'_> {
    /// Verifies every shard object and every stripe they name, without the metadata.
    pub fn check_structure(&mut self, report: &mut Report) {
        let mut by_stripe: BTreeMap<StripeId, Vec<(usize, ShardKey)>> = BTreeMap::new();
        for (slot, keys) in self.present.iter().enumerate() {
            for key in keys {
                by_stripe.entry(key.stripe).or_default().push((slot, *key));
            }
        }
        let total: usize = by_stripe.values().map(Vec::len).sum();
        self.progress.phase("verifying shard objects", total as u64);
        for (stripe, objects) in by_stripe {
            let seen = self.read_stripe(stripe, &objects, report);
            report.stats.stripes_checked += 1;
            if let Some(seen) = seen {
                self.judge_stripe(stripe, &seen, report);
            }
        }
    }

    /// Reads and verifies the objects of one stripe; `None` when none verifies.
    fn read_stripe(
        &self,
        stripe: StripeId,
        objects: &[(usize, ShardKey)],
        report: &mut Report,
    ) -> Option<StripeSeen> {
        let mut seen: Option<StripeSeen> = None;
        for (slot, key) in objects {
            self.progress.advance(1);
            let disk = self.disks[*slot].disk.as_ref()?;
            let name = format!("{}: shard {key}", crate::store::Disk::describe(disk));
            let bytes = match crate::store::Disk::get_shard(disk, *key) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    report.push(Finding::error(
                        Kind::ShardCorrupt,
                        name,
                        format!("unreadable: {e}"),
                    ));
                    continue;
                }
            };
            report.stats.shards_checked += 1;
            report.disks[*slot].present_bytes += bytes.len() as u64;
            let object = match shard::decode_shard(&name, bytes, None) {
                Ok((_, volume)) if volume != self.volume => {
                    report.push(Finding::warning(
                        Kind::ForeignObject,
                        name,
                        format!("object of volume {volume} in the shard tree"),
                    ));
                    continue;
                }
                Ok((object, _)) if object.header.key() != *key => {
                    report.push(Finding::error(
                        Kind::ShardCorrupt,
                        name,
                        format!("object holds shard {}", object.header.key()),
                    ));
                    continue;
                }
                Ok((object, _)) => object,
                Err(e) => {
                    report.push(Finding::error(Kind::ShardCorrupt, name, e.to_string()));
                    continue;
                }
            };
            let h = object.header;
            let identity = (h.inode.0, h.chunk, h.k, h.m, object.payload().len());
            let entry = seen.get_or_insert_with(|| StripeSeen {
                identity,
                payloads: BTreeMap::new(),
                is_inconsistent: false,
            });
            if entry.identity != identity {
                entry.is_inconsistent = true;
                report.push(Finding::error(
                    Kind::ShardMismatch,
                    name,
                    format!(
                        "header says inode {} chunk {} layout {}+{} with {} payload bytes; another shard of stripe {stripe} says inode {} chunk {} layout {}+{} with {}",
                        identity.0, identity.1, identity.2, identity.3, identity.4,
                        entry.identity.0, entry.identity.1, entry.identity.2, entry.identity.3, entry.identity.4
                    ),
                ));
                continue;
            }
            entry
                .payloads
                .insert(h.index.0, (*slot, object.payload().to_vec()));
        }
        seen
    }

    /// Judges a stripe from its verified shards: all present, parity agreeing.
    fn judge_stripe(&self, stripe: StripeId, seen: &StripeSeen, report: &mut Report) {
        let (inode, chunk, k, m, _) = seen.identity;
        let object = format!("stripe {stripe} (inode {inode} chunk {chunk})");
        if seen.is_inconsistent {
            return; // already reported shard by shard
        }
        let (k, m) = (usize::from(k), usize::from(m));
        let missing: Vec<String> = (0..k + m)
            .filter(|i| !seen.payloads.contains_key(&(*i as u8)))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            let consequence = if seen.payloads.len() < k {
                "fewer than k remain: if the stripe is in use, its data is lost"
            } else {
                "the rest can rebuild them"
            };
            report.push(Finding::warning(
                Kind::ShardMissing,
                object,
                format!(
                    "shard(s) {} of {k}+{m} not found ({consequence}); without the passphrase fsck cannot tell whether the stripe is still in use",
                    missing.join(", ")
                ),
            ));
            return;
        }
        let data: Vec<&[u8]> = (0..k)
            .map(|i| seen.payloads[&(i as u8)].1.as_slice())
            .collect();
        let agrees = match self.erasure.encode(k, m, &data) {
            Ok(parity) => parity
                .iter()
                .enumerate()
                .all(|(j, p)| seen.payloads[&((k + j) as u8)].1 == *p),
            Err(_) => false,
        };
        if !agrees {
            let disks: Vec<String> = seen
                .payloads
                .iter()
                .map(|(i, (slot, _))| format!("{}:{i}", self.disks[*slot].config.id))
                .collect();
            report.push(Finding::error(
                Kind::ShardMismatch,
                format!("{object} [{}]", disks.join(", ")),
                "every shard verifies alone, but the parity disagrees with the data shards: one of them holds wrong bytes; with the passphrase, fsck --repair finds which and rebuilds it",
            ));
        }
    }
}
