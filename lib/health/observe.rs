//! Gathering what health judges: the superblock, each disk's availability and space,
//! the data plane's records, the survey of stripes, and SMART.
//!
//! Three ways in, tried in this order: a mount answering on the volume's control socket
//! (the survey comes from it, the records from what it saved under ROOT); the volume
//! opened read-only by this process; or, when another process holds the volume and
//! answers no socket (an import, fsck, an offline argosfs-disk), the files under ROOT
//! alone: the superblock, the saved records and each disk directory's label, with no
//! survey of stripes. Whatever could not be looked at is said in the notes.

use super::device;
use super::smart::SmartOverride;
use super::{DiskObservation, SmartReport, SmartSource, Source};
use crate::control::{Answer, Ask, Client};
use crate::error::{Error, Result};
use crate::maint::Survey;
use crate::maint::action::{Outcome, Request};
use crate::store::{DirDisk, Disk, DiskLabel};
use crate::types::unix_now;
use crate::volume::{DiskConfig, DiskRecord, OpenOptions, Records, Superblock, Volume};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How to observe.
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// Passphrase of an encrypted volume (needed to survey its stripes offline).
    pub passphrase: Option<Vec<u8>>,
    /// SMART values that supply or replace smartctl's.
    pub smart_override: Option<SmartOverride>,
    /// Run smartctl for disks the override does not replace.
    pub run_smartctl: bool,
}

/// Everything health judges, as gathered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// The superblock (disk states as stored now).
    pub superblock: Superblock,
    /// Every disk, in superblock order.
    pub disks: Vec<DiskObservation>,
    /// The survey of stripes, when one could be made.
    pub survey: Option<Survey>,
    /// Where it came from.
    pub survey_source: Source,
    /// The data plane's records, when there are any.
    pub records: Option<Records>,
    /// Where they came from.
    pub records_source: Source,
    /// Why the volume could not be opened, when that is a fault of the volume (damaged
    /// metadata, say), not of the circumstances (held by another process, no key).
    pub open_error: Option<String>,
    /// What could not be looked at, in words.
    pub notes: Vec<String>,
    /// When (Unix seconds).
    pub checked_unix: u64,
}

/// Observes the volume at `root`. Fails only when there is nothing to judge: no
/// readable superblock, or a wrong passphrase.
pub fn observe(root: &Path, options: &ObserveOptions) -> Result<Observation> {
    let sb = Superblock::load(root)?;
    if let Some(mount) = Client::find(root, sb.volume) {
        return Ok(through_mount(root, sb, &mount, options));
    }
    let open = OpenOptions {
        passphrase: options.passphrase.clone(),
        read_only: true,
        ..OpenOptions::default()
    };
    let mut notes = Vec::new();
    let mut open_error = None;
    match Volume::open(root, open) {
        Ok(vol) => {
            let survey = match crate::maint::survey(&vol) {
                Ok(survey) => Some(survey),
                Err(e) => {
                    notes.push(format!("stripes not surveyed: {e}"));
                    None
                }
            };
            let mut observation = observe_open(&vol, survey, options);
            observation.notes.extend(notes);
            return Ok(observation);
        }
        Err(e @ Error::WrongPassphrase) => return Err(e),
        Err(Error::Locked { .. }) => notes.push(
            "stripes not surveyed: another process holds the volume and answers no control socket (an import, fsck or offline argosfs-disk run); disks and records read from the files under ROOT".into(),
        ),
        Err(Error::PassphraseRequired) => notes.push(
            "stripes not surveyed: the volume is encrypted; give --passphrase-file or ARGOSFS_PASSPHRASE to survey them".into(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the volume does not open");
            open_error = Some(e.to_string());
        }
    }
    let (records, records_source) = saved_records(root, &sb, Source::Files, &mut notes);
    let disks = sb
        .disks
        .iter()
        .map(|config| {
            let probe = probe_disk(root, &sb, config);
            disk_observation(root, config, probe, records.as_ref(), None, options)
        })
        .collect();
    Ok(Observation {
        superblock: sb,
        disks,
        survey: None,
        survey_source: Source::None,
        records,
        records_source,
        open_error,
        notes,
        checked_unix: unix_now(),
    })
}

/// Observes a volume this process has open (the mount can build its metrics from this):
/// its live records, the disks as it sees them, and `survey` if the caller made one.
pub fn observe_open(vol: &Volume, survey: Option<Survey>, options: &ObserveOptions) -> Observation {
    let root = vol.root_path();
    let records = vol.records();
    let mut sb = vol.superblock().clone();
    let by_id: HashMap<_, &DiskRecord> = records.disks.iter().map(|r| (r.id, r)).collect();
    for config in &mut sb.disks {
        if let Some(record) = by_id.get(&config.id) {
            config.state = record.state;
        }
    }
    let per_disk = survey_by_disk(survey.as_ref());
    let disks = sb
        .disks
        .iter()
        .map(|config| {
            let probe = match by_id.get(&config.id) {
                Some(r) => Probe {
                    unavailable: r.unavailable.clone(),
                    has_failed_write: r.has_failed_write,
                    total_bytes: r.total_bytes,
                    free_bytes: r.free_bytes,
                },
                None => probe_disk(root, &sb, config),
            };
            disk_observation(
                root,
                config,
                probe,
                Some(&records),
                per_disk.get(&config.id).copied(),
                options,
            )
        })
        .collect();
    Observation {
        superblock: sb,
        disks,
        survey_source: if survey.is_some() {
            Source::Opened
        } else {
            Source::None
        },
        survey,
        records: Some(records),
        records_source: Source::Opened,
        open_error: None,
        notes: Vec::new(),
        checked_unix: unix_now(),
    }
}

/// Observes a mounted volume: the survey asked of the mount, the records it saved.
fn through_mount(
    root: &Path,
    mut sb: Superblock,
    mount: &Client,
    options: &ObserveOptions,
) -> Observation {
    let mut notes = Vec::new();
    let survey = match mount.ask(&Ask::Perform(Request::List)) {
        Ok(Answer::Done(Outcome::Survey(survey))) => Some(survey),
        Ok(Answer::Failed(why)) => {
            notes.push(format!("stripes not surveyed: the mount answered: {why}"));
            None
        }
        Ok(_) => {
            notes.push("stripes not surveyed: the mount answered something else".into());
            None
        }
        Err(e) => {
            notes.push(format!(
                "stripes not surveyed: asking the mount failed: {e}"
            ));
            None
        }
    };
    let (records, records_source) = saved_records(root, &sb, Source::Mount, &mut notes);
    if records.is_some() {
        notes.push("I/O records as the mount last saved them (every 10 s at most)".into());
    }
    let per_disk = survey_by_disk(survey.as_ref());
    let infos: HashMap<_, _> = survey
        .iter()
        .flat_map(|s| &s.disks)
        .map(|d| (d.info.config.id, &d.info))
        .collect();
    for config in &mut sb.disks {
        if let Some(info) = infos.get(&config.id) {
            *config = info.config.clone();
        }
    }
    let disks = sb
        .disks
        .iter()
        .map(|config| {
            let probe = match infos.get(&config.id) {
                Some(info) => Probe {
                    unavailable: info.unavailable.clone(),
                    has_failed_write: info.has_failed_write,
                    total_bytes: info.total_bytes,
                    free_bytes: info.free_bytes,
                },
                None => probe_disk(root, &sb, config),
            };
            disk_observation(
                root,
                config,
                probe,
                records.as_ref(),
                per_disk.get(&config.id).copied(),
                options,
            )
        })
        .collect();
    Observation {
        superblock: sb,
        disks,
        survey_source: if survey.is_some() {
            Source::Mount
        } else {
            Source::None
        },
        survey,
        records,
        records_source,
        open_error: None,
        notes,
        checked_unix: unix_now(),
    }
}

/// The records saved under ROOT, when they are this volume's.
fn saved_records(
    root: &Path,
    sb: &Superblock,
    source: Source,
    notes: &mut Vec<String>,
) -> (Option<Records>, Source) {
    match Records::load(root) {
        Ok(Some(records)) if records.volume == sb.volume => (Some(records), source),
        Ok(Some(_)) => {
            notes.push("the saved disk records belong to another volume: ignored".into());
            (None, Source::None)
        }
        Ok(None) => {
            notes.push("no disk records saved yet (no I/O history)".into());
            (None, Source::None)
        }
        Err(e) => {
            notes.push(format!("the saved disk records are unreadable: {e}"));
            (None, Source::None)
        }
    }
}

fn survey_by_disk(survey: Option<&Survey>) -> HashMap<crate::types::DiskId, (u64, u64)> {
    survey
        .iter()
        .flat_map(|s| &s.disks)
        .map(|d| (d.info.config.id, (d.shards, d.degraded_stripes)))
        .collect()
}

/// A disk's availability and space.
struct Probe {
    unavailable: Option<String>,
    has_failed_write: bool,
    total_bytes: u64,
    free_bytes: u64,
}

/// Looks at a disk directory as `Volume::open` would (it opens, its label names this
/// volume and this disk), without opening the volume; reads its space.
fn probe_disk(root: &Path, sb: &Superblock, config: &DiskConfig) -> Probe {
    let mut probe = Probe {
        unavailable: None,
        has_failed_write: false,
        total_bytes: 0,
        free_bytes: 0,
    };
    if !config.state.is_in_use() {
        probe.unavailable = Some(format!("{:?}", config.state).to_lowercase());
        return probe;
    }
    let path = config.resolve(root);
    let checked = (|| -> std::result::Result<DirDisk, String> {
        let disk = DirDisk::open(&path).map_err(|e| format!("cannot open: {e}"))?;
        DiskLabel::verify(&path, disk.read_label(), sb.volume, config.id)?;
        Ok(disk)
    })();
    match checked {
        Ok(disk) => {
            let space = disk.space().unwrap_or_default();
            probe.total_bytes = space.total_bytes;
            probe.free_bytes = space.free_bytes;
        }
        Err(why) => probe.unavailable = Some(format!("{}: {why}", path.display())),
    }
    probe
}

fn disk_observation(
    root: &Path,
    config: &DiskConfig,
    probe: Probe,
    records: Option<&Records>,
    survey: Option<(u64, u64)>,
    options: &ObserveOptions,
) -> DiskObservation {
    let path = config.resolve(root);
    let configured = config.path.to_string_lossy();
    let record = records
        .and_then(|r| {
            r.disks
                .iter()
                .find(|d| d.id == config.id && d.path == configured)
        })
        .cloned();
    let smart = if config.state == crate::volume::DiskState::Removed {
        SmartReport::none("removed from the volume")
    } else {
        smart_of(config, &path, options)
    };
    DiskObservation {
        config: config.clone(),
        path: std::path::absolute(&path)
            .unwrap_or_else(|_| path.clone())
            .to_string_lossy()
            .into_owned(),
        unavailable: probe.unavailable,
        has_failed_write: probe.has_failed_write,
        total_bytes: probe.total_bytes,
        free_bytes: probe.free_bytes,
        record,
        survey,
        smart,
    }
}

/// SMART of a disk: smartctl on its block device, the override file, or both.
pub fn smart_of(config: &DiskConfig, path: &Path, options: &ObserveOptions) -> SmartReport {
    let entry = options
        .smart_override
        .as_ref()
        .and_then(|o| o.entry_for(config.id, &[config.path.as_path(), path]));
    if let Some(entry) = entry.filter(|e| e.replace) {
        return SmartReport {
            source: SmartSource::Override,
            device: None,
            unavailable: None,
            data: Some(entry.data.clone()),
        };
    }
    let (device, measured) = if options.run_smartctl {
        match device::block_device(path) {
            Ok(dev) => {
                let read = device::read_smart(&dev);
                (Some(dev), read)
            }
            Err(why) => (None, Err(why)),
        }
    } else {
        (None, Err("smartctl not run".to_string()))
    };
    let device = device.map(|d: PathBuf| d.display().to_string());
    match (measured, entry) {
        (Ok(mut data), Some(entry)) => {
            data.overlay(&entry.data);
            SmartReport {
                source: SmartSource::SmartctlAndOverride,
                device,
                unavailable: None,
                data: Some(data),
            }
        }
        (Ok(data), None) => SmartReport {
            source: SmartSource::Smartctl,
            device,
            unavailable: None,
            data: Some(data),
        },
        (Err(why), Some(entry)) => SmartReport {
            source: SmartSource::Override,
            device,
            unavailable: Some(why),
            data: Some(entry.data.clone()),
        },
        (Err(why), None) => SmartReport {
            source: SmartSource::None,
            device,
            unavailable: Some(why),
            data: None,
        },
    }
}
