//! The scrub state file, `ROOT/scrub.state`: when each stripe was last verified, the run
//! in progress (so a stopped scrub resumes where it was) and what the last finished run
//! found. It owns the file's bytes and its atomic replacement; what the fields mean to a
//! run belongs to `maint::scrub`.
//!
//! ```text
//! offset size field
//! 0      8    magic      b"ARGSCRB\x1a"
//! 8      2    version    1 (u16 LE)
//! 10     2    flags      0 (no flags defined)
//! 12     4    body_len   u32 LE
//! 16     16   volume_id
//! 32     ..   body       postcard of ScrubState
//! end-4  4    crc32c     over every byte before it
//! ```
//!
//! Only the process holding the volume's lock (the one with the Volume open) writes it,
//! always whole: temp file, fsync, rename, fsync of ROOT (`store::write_atomic`, mode
//! 0600). A file that does not decode (damaged, another volume's, a newer version) is an
//! error naming it, [`crate::Error::ScrubState`], never silently replaced: the message
//! says that deleting it only forgets verification times and any unfinished run.

use crate::error::{Error, Result};
use crate::format::{self, Expect, FormatError, FormatErrorKind, FrameHeader};
use crate::types::{StripeId, VolumeId};
use crate::volume::SCRUB_STATE_FILE;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"ARGSCRB\x1a";
const VERSION: u16 = 1;

/// Everything a volume remembers about scrubbing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubState {
    /// When each stripe was last verified good (unix milliseconds). Stripe ids are never
    /// reused, so an entry can only go stale by its stripe going away; saving drops those.
    pub verified: BTreeMap<StripeId, u64>,
    /// The run in progress, paused or interrupted; `None` when the last one finished.
    pub run: Option<RunState>,
    /// The last run that finished.
    pub last_run: Option<FinishedRun>,
}

/// A scrub run: its options as it started with them, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// When it started (unix milliseconds). Every stripe verified since is done in this
    /// run: it is later than any verification recorded before the run started.
    pub started_ms: u64,
    /// Stripes to verify in this run (`--percent` of the stripes then); `None`: every
    /// stripe that is due.
    pub target_stripes: Option<u64>,
    /// Stripes verified within this many seconds before the run are skipped.
    pub older_than_secs: u64,
    /// Shard bytes read per second at most.
    pub rate_bytes: Option<u64>,
    /// Bad shards are rewritten, degraded stripes healed.
    pub repair: bool,
    /// Stripes done so far.
    pub stripes_done: u64,
    /// Paused by a person (`--pause`, or the mount's pause); otherwise a run saved
    /// unfinished was interrupted (cancelled, bounded, or its process died).
    pub is_paused: bool,
    /// Bad shards (and degraded stripes) found so far in the run.
    pub found: u64,
    /// Of those, repaired.
    pub repaired: u64,
}

/// A run that finished, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedRun {
    /// The run as it ended.
    pub run: RunState,
    /// When it finished (unix milliseconds).
    pub finished_ms: u64,
}

/// The state file of the volume at `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(SCRUB_STATE_FILE)
}

fn expect(volume: VolumeId) -> Expect {
    Expect {
        magic: MAGIC,
        newest_version: VERSION,
        known_flags: 0,
        volume: Some(volume),
    }
}

/// Reads the state of the volume at `root`: empty when there is no file yet.
pub fn load(root: &Path, volume: VolumeId) -> Result<ScrubState> {
    let path = path(root);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ScrubState::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    decode(&path, &bytes, volume).map_err(|source| Error::ScrubState { path, source })
}

fn decode(path: &Path, bytes: &[u8], volume: VolumeId) -> Result<ScrubState, FormatError> {
    let object = path.display().to_string();
    let (_, body) = format::decode(&object, bytes, &expect(volume))?;
    postcard::from_bytes(body).map_err(|e| {
        FormatError::new(
            object,
            format::HEADER_LEN as u64,
            FormatErrorKind::Body(e.to_string()),
        )
    })
}

/// Replaces the state of the volume at `root` atomically and durably.
pub fn store(root: &Path, volume: VolumeId, state: &ScrubState) -> Result<()> {
    let body = postcard::to_stdvec(state).expect("scrub states serialize");
    let header = FrameHeader {
        magic: MAGIC,
        version: VERSION,
        flags: 0,
        body_len: 0, // set by encode
        volume,
    };
    let path = path(root);
    crate::store::write_atomic(&path, &format::encode(header, &body))
        .map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> ScrubState {
        let mut state = ScrubState::default();
        state.verified.insert(StripeId(3), 1_700_000_000_123);
        state.verified.insert(StripeId(9), 1_700_000_100_000);
        state.run = Some(RunState {
            started_ms: 1_700_000_000_000,
            target_stripes: Some(5),
            older_than_secs: 3600,
            rate_bytes: Some(1 << 20),
            repair: true,
            stripes_done: 2,
            is_paused: true,
            found: 1,
            repaired: 1,
        });
        state
    }

    #[test]
    fn a_state_round_trips_privately_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let volume = VolumeId([5; 16]);
        assert_eq!(load(dir.path(), volume).unwrap(), ScrubState::default());
        store(dir.path(), volume, &sample()).unwrap();
        assert_eq!(load(dir.path(), volume).unwrap(), sample());
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_foreign_or_newer_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let volume = VolumeId([5; 16]);
        store(dir.path(), volume, &sample()).unwrap();
        let good = std::fs::read(path(dir.path())).unwrap();
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        let mut newer = good.clone();
        newer[8] = 2;
        for (bytes, volume) in [
            (flipped, volume),
            (newer, volume),
            (good.clone(), VolumeId([6; 16])),
            (b"junk".to_vec(), volume),
        ] {
            std::fs::write(path(dir.path()), &bytes).unwrap();
            let e = load(dir.path(), volume).unwrap_err();
            assert!(matches!(e, Error::ScrubState { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("scrub.state"), "{text}");
            assert!(text.contains("only forgets"), "{text}");
        }
    }
}
