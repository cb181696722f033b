//! The superblock: a volume's identity, layout, codec, compression, encryption
//! parameters (never the key) and disk list, as a checksummed JSON document in ROOT.

use crate::data::compress::Compression;
use crate::data::crypto::{Cipher, KdfParams, MasterKey};
use crate::error::{Error, Result};
use crate::format::json;
use crate::meta::MetaCodec;
use crate::types::{DiskId, VolumeId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the superblock inside ROOT.
pub const SUPERBLOCK_FILE: &str = "superblock.json";
/// Magic of the superblock document.
pub const SUPERBLOCK_MAGIC: &str = "argosfs-superblock";
/// Newest superblock version this build reads and writes. Version 2: an encrypted
/// volume seals its metadata (snapshots, journal records) as well as its data; stripes
/// may be written degraded (`min_shards`), so stripe references and the table changed;
/// disks record when and why their state changed. Version 1 volumes are refused.
pub const SUPERBLOCK_VERSION: u32 = 3;
/// Largest stripe a volume may use.
pub const MAX_STRIPE_BYTES: u32 = 64 << 20;

/// How data is cut and coded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Data shards per stripe.
    pub k: u8,
    /// Parity shards per stripe.
    pub m: u8,
    /// Plaintext bytes per stripe.
    pub stripe_bytes: u32,
    /// Erasure codec id: parity bytes are part of the format.
    pub codec: String,
    /// Fewest shards a new stripe may be written with when disks are missing (Ceph's
    /// `min_size`): k+1 by default, k only when a person asks for it.
    pub min_shards: u8,
}

impl Layout {
    /// Parses "K+M" (e.g. "4+2").
    pub fn parse_km(text: &str) -> std::result::Result<(u8, u8), String> {
        let (k, m) = text
            .split_once('+')
            .ok_or_else(|| format!("layout {text:?} is not of the form K+M (e.g. 4+2)"))?;
        let k: u8 = k
            .trim()
            .parse()
            .map_err(|_| format!("layout {text:?}: K must be a number from 1 to 32"))?;
        let m: u8 = m
            .trim()
            .parse()
            .map_err(|_| format!("layout {text:?}: M must be a number from 0 to 32"))?;
        if !(1..=32).contains(&k) || m > 32 {
            return Err(format!("layout {text:?}: K must be 1..=32 and M 0..=32"));
        }
        Ok((k, m))
    }

    /// Shards per stripe.
    pub fn width(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// The default `min_shards` of a k+m layout: one shard of redundancy left (k+1), or
    /// k when there is no parity.
    pub fn default_min_shards(k: u8, m: u8) -> u8 {
        k + m.min(1)
    }

    /// Checks a `min_shards` value against the layout.
    pub fn check_min_shards(&self, min_shards: u8) -> std::result::Result<(), String> {
        if min_shards < self.k || usize::from(min_shards) > self.width() {
            return Err(format!(
                "min_shards {min_shards} is outside {}..={} (k..=k+m) for layout {}+{}",
                self.k,
                self.width(),
                self.k,
                self.m
            ));
        }
        Ok(())
    }
}

/// Encryption parameters. The key itself is derived from the passphrase at open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always "xchacha20poly1305".
    pub cipher: String,
    /// Always "argon2id".
    pub kdf: String,
    /// Argon2id salt and costs.
    pub kdf_params: KdfParams,
    /// A value derived from the key that tells a wrong passphrase at open.
    pub key_check: String,
}

/// The ciphers of an unlocked volume.
#[derive(Debug)]
pub struct VolumeKeys {
    /// Seals stripes (encrypted volumes only).
    pub stripe: Option<Cipher>,
    /// Encodes the metadata (sealed on encrypted volumes).
    pub meta: MetaCodec,
}

/// The life-cycle state of a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskState {
    /// Takes new shards and serves reads.
    Active,
    /// Serves reads; its shards are being moved off; takes no new shards.
    Draining,
    /// Known bad: not read, not written.
    Failed,
    /// No longer part of the volume.
    Removed,
}

impl DiskState {
    /// Active or draining: the disk holds shards that are read, so it is opened.
    pub fn is_in_use(self) -> bool {
        matches!(self, DiskState::Active | DiskState::Draining)
    }
}

/// One disk of the volume as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskConfig {
    /// Its id (also in its label).
    pub id: DiskId,
    /// Its directory. In the superblock a relative path is relative to ROOT (see
    /// [`DiskConfig::resolve`]); given to `volume::format`, relative to the current
    /// directory.
    pub path: PathBuf,
    /// Relative placement weight.
    pub weight: f64,
    /// Device class ("ssd", "hdd", ...).
    pub class: String,
    /// Failure domain.
    pub domain: String,
    /// NUMA node hint.
    pub numa: Option<u32>,
    /// State.
    pub state: DiskState,
    /// When the state last changed (Unix seconds; when the disk was added at first).
    #[serde(default)]
    pub state_since_unix: u64,
    /// Why the state last changed ("added by mkfs", "drained", ...).
    #[serde(default)]
    pub state_reason: String,
}

impl DiskConfig {
    /// Parses a `--disk` argument: `PATH[:key=value,...]` with keys weight, class,
    /// domain, numa. The path may not contain ':' followed by a known key.
    pub fn parse(id: DiskId, text: &str) -> std::result::Result<DiskConfig, String> {
        let (path, opts) = Self::split(text);
        if path.is_empty() {
            return Err(format!("--disk {text:?}: empty path"));
        }
        let mut disk = DiskConfig {
            id,
            path: PathBuf::from(path),
            weight: 1.0,
            class: "default".into(),
            domain: format!("disk{}", id.0),
            numa: None,
            state: DiskState::Active,
            state_since_unix: 0,
            state_reason: String::new(),
        };
        for pair in opts.into_iter().flat_map(|o| o.split(',')) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--disk {text:?}: {pair:?} is not key=value"))?;
            match key {
                "weight" => {
                    disk.weight = value
                        .parse()
                        .ok()
                        .filter(|w: &f64| w.is_finite() && *w > 0.0)
                        .ok_or_else(|| {
                            format!("--disk {text:?}: weight must be a positive number")
                        })?
                }
                "class" => disk.class = value.to_string(),
                "domain" => disk.domain = value.to_string(),
                "numa" => {
                    disk.numa = Some(
                        value
                            .parse()
                            .map_err(|_| format!("--disk {text:?}: numa must be a node number"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "--disk {text:?}: unknown option {key:?} (known: weight, class, domain, numa)"
                    ));
                }
            }
        }
        Ok(disk)
    }

    /// `PATH[:OPTS]` split into the path and the options (the last colon followed by
    /// key=value text starts them; a path may hold colons).
    pub fn split(text: &str) -> (&str, Option<&str>) {
        match text.rsplit_once(':') {
            Some((p, o)) if o.contains('=') => (p, Some(o)),
            _ => (text, None),
        }
    }

    /// The disk directory of a disk read from the superblock, resolving a relative path
    /// against ROOT.
    pub fn resolve(&self, root: &Path) -> PathBuf {
        if self.path.is_absolute() {
            self.path.clone()
        } else {
            root.join(&self.path)
        }
    }
}

/// The volume's identity and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Superblock {
    /// Volume UUID.
    pub volume: VolumeId,
    /// Creation time (Unix seconds).
    pub created_unix: u64,
    /// Stripe layout.
    pub layout: Layout,
    /// Compression of new stripes.
    pub compression: Compression,
    /// Encryption, if enabled.
    pub encryption: Option<Encryption>,
    /// Files up to this size are kept inline in the metadata (0 = never).
    pub inline_max_bytes: u32,
    /// The disks.
    pub disks: Vec<DiskConfig>,
}

impl Superblock {
    /// Path of the superblock of the volume at `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(SUPERBLOCK_FILE)
    }

    /// Reads and verifies the superblock of the volume at `root`.
    pub fn load(root: &Path) -> Result<Superblock> {
        let path = Self::path(root);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (sb, version): (Superblock, u32) = json::open(
            &path.display().to_string(),
            &bytes,
            SUPERBLOCK_MAGIC,
            SUPERBLOCK_VERSION,
        )?;
        if version < SUPERBLOCK_VERSION {
            return Err(Error::OldFormat {
                path,
                found: version,
                why: "this build reads format 3 (each disk's shards in segment files with an index, DISK/store/, instead of a file per shard); read the volume with the build that made it (argosfs-export) and import the tree into a volume made by this one",
            });
        }
        sb.validate().map_err(Error::Config)?;
        Ok(sb)
    }

    /// The volume's ciphers for `passphrase`: none for a plain volume;
    /// `PassphraseRequired` when it is encrypted and none is given, `WrongPassphrase`
    /// when it does not match the key-check value.
    pub fn keys(&self, passphrase: Option<&[u8]>) -> Result<VolumeKeys> {
        let Some(enc) = &self.encryption else {
            return Ok(VolumeKeys {
                stripe: None,
                meta: MetaCodec::plain(self.volume),
            });
        };
        let passphrase = passphrase.ok_or(Error::PassphraseRequired)?;
        let key = MasterKey::derive(passphrase, &enc.kdf_params)
            .map_err(|e| Error::Config(format!("key derivation: {e}")))?;
        if !key.matches_key_check(&enc.key_check) {
            return Err(Error::WrongPassphrase);
        }
        Ok(VolumeKeys {
            stripe: Some(key.stripe_cipher()),
            meta: MetaCodec::sealed(self.volume, key.metadata_cipher()),
        })
    }

    /// [`Superblock::keys`], except that an encrypted volume without a passphrase gets
    /// a locked metadata codec (frames and checksums verify, contents stay closed) and
    /// no stripe cipher: what fsck and verify-journal check without the key.
    pub fn keys_or_locked(&self, passphrase: Option<&[u8]>) -> Result<VolumeKeys> {
        match (&self.encryption, passphrase) {
            (Some(_), None) => Ok(VolumeKeys {
                stripe: None,
                meta: MetaCodec::locked(self.volume),
            }),
            _ => self.keys(passphrase),
        }
    }

    /// Writes the superblock atomically and durably.
    pub fn store(&self, root: &Path) -> Result<()> {
        let path = Self::path(root);
        let bytes = json::seal(SUPERBLOCK_MAGIC, SUPERBLOCK_VERSION, self);
        crate::store::write_atomic(&path, &bytes).map_err(|e| Error::io(&path, e))
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let l = &self.layout;
        if l.k == 0 {
            return Err("layout: k must be at least 1".into());
        }
        if l.stripe_bytes == 0 || l.stripe_bytes > MAX_STRIPE_BYTES {
            return Err(format!(
                "stripe size {} is outside 1..={MAX_STRIPE_BYTES}",
                l.stripe_bytes
            ));
        }
        l.check_min_shards(l.min_shards)?;
        if crate::data::erasure::codec_by_id(&l.codec).is_none() {
            return Err(format!(
                "erasure codec {:?} is not known to this build",
                l.codec
            ));
        }
        let usable = self
            .disks
            .iter()
            .filter(|d| matches!(d.state, DiskState::Active | DiskState::Draining))
            .count();
        // mkfs wants k+m disks; later, drained or failed ones may leave fewer (a
        // degraded volume still opens), but fewer than k could not read anything.
        if usable < usize::from(l.k) {
            return Err(format!(
                "layout {}+{} needs at least {} disks that are active or draining, only {usable} are",
                l.k, l.m, l.k
            ));
        }
        let mut ids: Vec<_> = self.disks.iter().map(|d| d.id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != self.disks.len() {
            return Err("duplicate disk ids".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_argument_parsing() {
        let d = DiskConfig::parse(DiskId(3), "/srv/d3:weight=2,class=ssd,domain=shelf1,numa=1")
            .unwrap();
        assert_eq!(d.path, PathBuf::from("/srv/d3"));
        assert_eq!(d.weight, 2.0);
        assert_eq!(d.class, "ssd");
        assert_eq!(d.domain, "shelf1");
        assert_eq!(d.numa, Some(1));
        let plain = DiskConfig::parse(DiskId(0), "/srv/d0").unwrap();
        assert_eq!(plain.weight, 1.0);
        assert_eq!(plain.domain, "disk0");
        assert!(DiskConfig::parse(DiskId(0), "/x:weight=-1").is_err());
        assert!(DiskConfig::parse(DiskId(0), "/x:colour=red").is_err());
        assert!(DiskConfig::parse(DiskId(0), ":weight=1").is_err());
    }

    #[test]
    fn layout_parsing() {
        assert_eq!(Layout::parse_km("4+2"), Ok((4, 2)));
        assert_eq!(Layout::parse_km("1+0"), Ok((1, 0)));
        assert!(Layout::parse_km("0+2").is_err());
        assert!(Layout::parse_km("4").is_err());
        assert!(Layout::parse_km("a+b").is_err());
    }
}
