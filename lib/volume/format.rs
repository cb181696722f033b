//! Creating a volume (what argosfs-mkfs does): disk labels, superblock, root directory,
//! first metadata snapshot, empty journal, lock file. All of it private (directories
//! 0700, files 0600), ROOT and disk directories that already existed included.

use super::superblock::{DiskConfig, Encryption, Layout, Superblock};
use super::{LOCK_FILE, META_DIR};
use crate::data::compress::Compression;
use crate::data::crypto::{KdfParams, MasterKey};
use crate::data::erasure::DEFAULT_CODEC_ID;
use crate::error::{Error, Result};
use crate::meta::{FileKind, Inode, MetaCodec, MetaStore};
use crate::store::{
    DirDisk, Disk, DiskLabel, PRIVATE_FILE_MODE, create_private_dir, create_private_dir_all,
    make_dir_private,
};
use crate::types::VolumeId;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How expensive the passphrase key derivation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KdfStrength {
    /// Argon2id's recommended defaults.
    #[default]
    Default,
    /// The cheapest parameters (tests only: weak against guessing).
    Cheap,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// The disks, in id order. A relative `path` is relative to the current directory,
    /// as for any path a program is given (not to `root`). A disk that lies inside
    /// `root` is recorded in the superblock relative to it, so that ROOT can be moved with
    /// its disks; [`DiskConfig::resolve`] reads such stored paths against ROOT.
    pub disks: Vec<DiskConfig>,
    /// Data shards per stripe; `None` picks 4+2 with six or more disks, else what fits.
    pub layout: Option<(u8, u8)>,
    /// Fewest shards a stripe may be written with when disks are missing; `None`: k+1
    /// (k when there is no parity).
    pub min_shards: Option<u8>,
    /// Plaintext bytes per stripe.
    pub stripe_bytes: u32,
    /// Compression of new stripes.
    pub compression: Compression,
    /// Encrypt with a key derived from this passphrase.
    pub passphrase: Option<Vec<u8>>,
    /// Key derivation cost.
    pub kdf: KdfStrength,
    /// Overwrite an existing volume or disk.
    pub force: bool,
    /// Files up to this size live inline in the metadata (sealed with it when encrypted).
    pub inline_max_bytes: u32,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            disks: Vec::new(),
            layout: None,
            min_shards: None,
            stripe_bytes: 1 << 20,
            compression: Compression::None,
            passphrase: None,
            kdf: KdfStrength::Default,
            force: false,
            inline_max_bytes: 2048,
        }
    }
}

/// The layout picked when none is given: 4+2 from six disks, else one parity shard when
/// there are at least two disks.
pub fn default_layout(disks: usize) -> (u8, u8) {
    match disks {
        0 | 1 => (1, 0),
        2..=5 => ((disks - 1) as u8, 1),
        _ => (4, 2),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

/// Creates a volume at `root` and returns its superblock. Nothing is overwritten without
/// `force`; the superblock is written last, so an interrupted mkfs leaves no volume.
pub fn format(root: &Path, options: FormatOptions) -> Result<Superblock> {
    if options.disks.is_empty() {
        return Err(Error::Config("at least one --disk is needed".into()));
    }
    let (k, m) = options
        .layout
        .unwrap_or_else(|| default_layout(options.disks.len()));
    if k == 0 {
        return Err(Error::Config("K must be at least 1".into()));
    }
    let width = usize::from(k) + usize::from(m);
    if width > options.disks.len() {
        return Err(Error::Config(format!(
            "layout {k}+{m} needs {width} disks but {} were given: every shard of a stripe goes to a different disk",
            options.disks.len()
        )));
    }
    if options.stripe_bytes < 4096 || options.stripe_bytes > super::superblock::MAX_STRIPE_BYTES {
        return Err(Error::Config(format!(
            "stripe size {} is outside 4 KiB..=64 MiB",
            options.stripe_bytes
        )));
    }
    create_private_dir_all(root).map_err(|e| Error::io(root, e))?;
    let root = absolute(root)?;
    let sb_path = Superblock::path(&root);
    if sb_path.exists() && !options.force {
        return Err(Error::AlreadyFormatted { path: root });
    }
    if sb_path.exists() {
        // Refuse to overwrite a mounted volume even with --force.
        let _lock = super::take_lock(&root, true)?;
    }
    let volume = VolumeId::random();
    let now = crate::types::unix_now();

    // Check everything before writing anything, so a refused mkfs leaves no labels.
    let mut disks = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut to_wipe = Vec::new();
    for config in &options.disks {
        // What the caller gave: relative to the current directory, like ROOT itself;
        // only the superblock's stored paths are relative to ROOT.
        let path = absolute(&config.path)?;
        if paths.contains(&path) {
            return Err(Error::Config(format!(
                "disk {} is given twice",
                path.display()
            )));
        }
        if DirDisk::label_at(&path).ok().flatten().is_some() {
            if !options.force {
                return Err(Error::AlreadyFormatted { path });
            }
            // An older build's shard tree and spare files; the store is replaced below.
            to_wipe.push(path.join("shards"));
            to_wipe.push(path.join("spare"));
        }
        let mut stored = config.clone();
        stored.state_since_unix = now;
        stored.state_reason = "added by mkfs".into();
        stored.path = match path.strip_prefix(&root) {
            Ok(inside) => inside.to_path_buf(),
            Err(_) => path.clone(),
        };
        disks.push(stored);
        paths.push(path);
    }

    let mut meta_cipher = None;
    let encryption = match &options.passphrase {
        None => None,
        Some(passphrase) => {
            if passphrase.is_empty() {
                return Err(Error::Config("the passphrase is empty".into()));
            }
            let params = match options.kdf {
                KdfStrength::Default => KdfParams::generate(),
                KdfStrength::Cheap => KdfParams::generate_cheap(),
            };
            let key = MasterKey::derive(passphrase, &params)
                .map_err(|e| Error::Config(format!("key derivation: {e}")))?;
            meta_cipher = Some(key.metadata_cipher());
            Some(Encryption {
                cipher: "xchacha20poly1305".into(),
                kdf: "argon2id".into(),
                key_check: key.key_check(),
                kdf_params: params,
            })
        }
    };
    let sb = Superblock {
        volume,
        created_unix: now,
        layout: Layout {
            k,
            m,
            stripe_bytes: options.stripe_bytes,
            codec: DEFAULT_CODEC_ID.into(),
            min_shards: options
                .min_shards
                .unwrap_or_else(|| Layout::default_min_shards(k, m)),
        },
        compression: options.compression,
        // Inline data lives in the metadata, which an encrypted volume seals too.
        inline_max_bytes: options.inline_max_bytes.min(options.stripe_bytes),
        encryption,
        disks,
    };
    sb.validate().map_err(Error::Config)?;
    // ROOT may have existed, made by hand under the umask (0755); only now, once
    // nothing refused the mkfs, is it changed.
    make_dir_private(&root).map_err(|e| Error::io(&root, e))?;
    for shards in to_wipe {
        // --force: the shards of the volume being replaced.
        if shards.exists() {
            std::fs::remove_dir_all(&shards).map_err(|e| Error::io(&shards, e))?;
        }
    }
    for (config, path) in sb.disks.iter().zip(&paths) {
        let disk = DirDisk::create(path).map_err(|e| Error::io(path, e))?;
        let label = DiskLabel {
            volume,
            disk: config.id,
            created_unix: now,
        };
        disk.write_label(&label.encode())
            .map_err(|e| Error::io(path, e))?;
    }
    let root_inode = Inode::new(FileKind::Directory, 0o755, 0, 0);
    let meta_codec = match meta_cipher {
        Some(cipher) => MetaCodec::sealed(volume, cipher),
        None => MetaCodec::plain(volume),
    };
    // Made here, private, so that MetaStore::create finds it and does not make it
    // under the umask; an existing one (--force) is made private too.
    let meta_dir = root.join(META_DIR);
    create_private_dir(&meta_dir)
        .and_then(|()| make_dir_private(&meta_dir))
        .map_err(|e| Error::io(&meta_dir, e))?;
    MetaStore::create(&meta_dir, &meta_codec, root_inode)?;
    let lock = root.join(LOCK_FILE);
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&lock)
        .map_err(|e| Error::io(&lock, e))?;
    // The mode above applies only to a new file; a --force over an older volume may
    // find its lock 0644.
    lock_file
        .set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .map_err(|e| Error::io(&lock, e))?;
    sb.store(&root)?;
    Ok(sb)
}
