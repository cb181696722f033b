//! How record bytes move between memory and segment files: plain positional system calls
//! (`preadv`/`pwritev`, the default), O_DIRECT through aligned bounce buffers (mount
//! option `direct_io`), and io_uring (mount option `io_uring`, cargo feature `io_uring`),
//! which hands the shard I/O of a whole stripe, on several disks, to the kernel in one
//! `io_uring_enter`.
//!
//! This is the one module of the store with `unsafe` code: aligned allocations, raw
//! `iovec`s and the ring, each block with its `// SAFETY:` note. It knows nothing of
//! records or shards; [`super::dir`] decides which bytes go where and in which mode.
//!
//! Modes and fallbacks. A disk asks for direct I/O with [`probe_direct`] when it is
//! opened: the filesystem must not keep its files in memory (tmpfs: nothing to bypass,
//! and kernels before 6.6 refuse O_DIRECT there with EINVAL), must accept an O_DIRECT
//! open and an aligned read, and must need an offset alignment of at most 4 KiB (the
//! records' own: large records start and end on 4 KiB, small ones on 512 bytes). The
//! alignment comes from statx(STATX_DIOALIGN) where the kernel has it (6.1+), else from
//! trying 512 then 4096 bytes. io_uring is probed once per process ([`uring_status`]):
//! a ring is set up and a no-op goes through it; a kernel without io_uring (ENOSYS), one
//! that forbids it (EPERM, `kernel.io_uring_disabled`) or a build without the feature
//! falls back to system calls. Each fallback is logged once with its reason by the
//! caller and counted in [`StoreIoStats::fallbacks`].
//!
//! Waiting: a thread with I/O in a ring blocks in `io_uring_enter` until at least one
//! completion arrives (`IORING_ENTER_GETEVENTS`); nothing polls.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Alignment of every bounce buffer: enough for any device's memory alignment
/// (`stx_dio_mem_align` is at most the logical block size, 4 KiB here).
pub const BUFFER_ALIGN: usize = 4096;
/// The largest offset alignment direct I/O can use: records start and end on 4 KiB.
pub const MAX_DIRECT_ALIGN: u64 = 4096;
/// `iovec`s one `preadv`/`pwritev` or ring operation takes at most (UIO_MAXIOV).
const IOV_MAX: usize = 1024;

/// How a disk's records are read and written, as asked for (mount options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoMode {
    /// O_DIRECT record I/O through aligned buffers (`-o direct_io`).
    pub is_direct: bool,
    /// Record I/O through io_uring, a stripe's shards in one submission (`-o io_uring`).
    pub is_uring: bool,
}

impl IoMode {
    /// The mode's name as the mount options spell it ("buffered" for neither).
    pub fn describe(&self) -> &'static str {
        match (self.is_direct, self.is_uring) {
            (false, false) => "buffered",
            (true, false) => "direct_io",
            (false, true) => "io_uring",
            (true, true) => "direct_io,io_uring",
        }
    }
}

/// Counters of the record I/O of the disks that share them (a volume's).
#[derive(Debug, Default)]
pub struct StoreIoStats {
    /// Record reads and writes that went to a disk with O_DIRECT.
    pub direct_ios: AtomicU64,
    /// Bytes they moved (aligned supersets included).
    pub direct_bytes: AtomicU64,
    /// Record reads and writes that went through io_uring.
    pub uring_ios: AtomicU64,
    /// Bytes they moved.
    pub uring_bytes: AtomicU64,
    /// `io_uring_enter` calls that submitted them (fewer than the I/Os: a stripe's go in one).
    pub uring_submissions: AtomicU64,
    /// Times a mode asked for fell back to buffered I/O or system calls (per disk for
    /// direct I/O; per open for io_uring).
    pub fallbacks: AtomicU64,
}

/// A plain copy of [`StoreIoStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreIoSnapshot {
    /// Record I/Os done with O_DIRECT.
    pub direct_ios: u64,
    /// Their bytes.
    pub direct_bytes: u64,
    /// Record I/Os done through io_uring.
    pub uring_ios: u64,
    /// Their bytes.
    pub uring_bytes: u64,
    /// Ring submissions (`io_uring_enter` calls that submitted).
    pub uring_submissions: u64,
    /// Fallbacks to buffered I/O or plain system calls.
    pub fallbacks: u64,
}

impl StoreIoStats {
    /// The counters now.
    pub fn snapshot(&self) -> StoreIoSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StoreIoSnapshot {
            direct_ios: load(&self.direct_ios),
            direct_bytes: load(&self.direct_bytes),
            uring_ios: load(&self.uring_ios),
            uring_bytes: load(&self.uring_bytes),
            uring_submissions: load(&self.uring_submissions),
            fallbacks: load(&self.fallbacks),
        }
    }
}

/// A zeroed-at-birth, [`BUFFER_ALIGN`]-aligned heap buffer for O_DIRECT. Buffers are
/// reused (a small pool), so the bytes of a taken buffer are whatever the last user
/// left: writers fill what they write, readers copy out only what was read.
pub struct Bounce {
    ptr: *mut u8,
    len: usize,
    capacity: usize,
}

// SAFETY: a `Bounce` owns its allocation exclusively (like a `Box<[u8]>`), so moving it
// to or sharing it with another thread is as safe as for a `Vec<u8>`.
unsafe impl Send for Bounce {}
// SAFETY: as above; `&Bounce` only gives `&[u8]`.
unsafe impl Sync for Bounce {}

/// Bounce buffers kept for reuse: a few of the sizes shards come in. A fresh large
/// allocation is a fresh mapping whose pages fault in on first touch.
static BOUNCE_POOL: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
/// Buffers kept in [`BOUNCE_POOL`] at most, and the largest kept.
const POOL_BUFFERS: usize = 32;
const POOL_MAX_BYTES: usize = 8 << 20;

impl Bounce {
    /// A buffer of `len` bytes (rounded up to whole 4 KiB in capacity).
    pub fn new(len: usize) -> io::Result<Bounce> {
        let want = len.max(1).next_multiple_of(BUFFER_ALIGN);
        let reused = {
            let mut pool = BOUNCE_POOL.lock().unwrap_or_else(|p| p.into_inner());
            let best = pool
                .iter()
                .enumerate()
                .filter(|(_, (_, cap))| *cap >= want && *cap <= want.saturating_mul(2))
                .min_by_key(|(_, (_, cap))| *cap)
                .map(|(i, _)| i);
            best.map(|i| pool.swap_remove(i))
        };
        if let Some((addr, capacity)) = reused {
            return Ok(Bounce {
                ptr: addr as *mut u8,
                len,
                capacity,
            });
        }
        let layout = Layout::from_size_align(want, BUFFER_ALIGN)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer too large"))?;
        // SAFETY: the layout has a non-zero size (`want` is at least 4096).
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("no memory for a {want}-byte I/O buffer"),
            ));
        }
        Ok(Bounce {
            ptr,
            len,
            capacity: want,
        })
    }

    /// The buffer's first `len` bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `capacity >= len` initialised bytes (zeroed at
        // allocation, written only through safe slices since) and owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The buffer's first `len` bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Bounce {
    fn drop(&mut self) {
        if self.capacity <= POOL_MAX_BYTES {
            let mut pool = BOUNCE_POOL.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_BUFFERS {
                pool.push((self.ptr as usize, self.capacity));
                return;
            }
        }
        // SAFETY: allocated in `Bounce::new` with this very layout, and not in the pool.
        unsafe {
            dealloc(
                self.ptr,
                Layout::from_size_align_unchecked(self.capacity, BUFFER_ALIGN),
            )
        }
    }
}

/// One positional read or write of a list of buffers, carried out by [`run`] with
/// system calls or through a ring, resumed after short transfers.
pub struct Transfer<'a> {
    fd: RawFd,
    offset: u64,
    is_write: bool,
    iovs: Vec<libc::iovec>,
    /// The first `iovec` not fully transferred.
    next: usize,
    /// Bytes transferred so far.
    done: usize,
    /// Reads: the end of file may come after this many bytes (an aligned superset read
    /// past the end of a segment); before it, it is `UnexpectedEof`.
    need: usize,
    is_direct: bool,
    stats: Option<&'a StoreIoStats>,
    result: Option<io::Result<()>>,
    finished: Option<Instant>,
    _buffers: PhantomData<&'a mut [u8]>,
}

// SAFETY: the `iovec`s point into buffers borrowed for `'a` (shared for writes, unique
// for reads), which may be sent to and used from any thread, as the borrow could.
unsafe impl Send for Transfer<'_> {}

impl<'a> Transfer<'a> {
    /// Reads into `bufs`, in order, from `offset` of `file`; at least `need` bytes must
    /// come before the end of the file.
    pub fn read(
        file: &'a File,
        offset: u64,
        bufs: impl IntoIterator<Item = &'a mut [u8]>,
        need: usize,
    ) -> Transfer<'a> {
        let iovs: Vec<libc::iovec> = bufs
            .into_iter()
            .filter(|b| !b.is_empty())
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        Transfer::new(file, offset, false, iovs, Some(need))
    }

    /// Writes `parts`, in order, at `offset` of `file`.
    pub fn write(
        file: &'a File,
        offset: u64,
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Transfer<'a> {
        let iovs: Vec<libc::iovec> = parts
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| libc::iovec {
                // Never written through: the kernel only reads from a write's buffers.
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        Transfer::new(file, offset, true, iovs, None)
    }

    fn new(
        file: &'a File,
        offset: u64,
        is_write: bool,
        iovs: Vec<libc::iovec>,
        need: Option<usize>,
    ) -> Transfer<'a> {
        let total = iovs.iter().map(|v| v.iov_len).sum();
        Transfer {
            fd: file.as_raw_fd(),
            offset,
            is_write,
            iovs,
            next: 0,
            done: 0,
            need: need.unwrap_or(total).min(total),
            is_direct: false,
            stats: None,
            result: if total == 0 { Some(Ok(())) } else { None },
            finished: None,
            _buffers: PhantomData,
        }
    }

    /// Counts the transfer in `stats` once it succeeds, as direct I/O when `is_direct`.
    pub fn counted(mut self, stats: &'a StoreIoStats, is_direct: bool) -> Transfer<'a> {
        self.stats = Some(stats);
        self.is_direct = is_direct;
        self
    }

    /// Bytes transferred.
    pub fn done(&self) -> usize {
        self.done
    }

    /// The outcome (an unfinished transfer is an error), and when it finished.
    pub fn outcome(self) -> (io::Result<()>, Option<Instant>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(io::Error::other("transfer not carried out")));
        (result, self.finished)
    }

    fn is_finished(&self) -> bool {
        self.result.is_some()
    }

    /// The `iovec`s still to transfer (at most [`IOV_MAX`]).
    fn pending(&self) -> &[libc::iovec] {
        let rest = &self.iovs[self.next..];
        &rest[..rest.len().min(IOV_MAX)]
    }

    /// Takes the result of one system call or ring operation: bytes moved, or an error.
    fn advance(&mut self, moved: io::Result<usize>, is_uring: bool) {
        let n = match moved {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return,
            Err(e) => return self.finish(Err(e), is_uring),
        };
        if n == 0 {
            let result = if self.is_write {
                Err(io::ErrorKind::WriteZero.into())
            } else if self.done >= self.need {
                Ok(())
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
            return self.finish(result, is_uring);
        }
        self.done += n;
        self.offset += n as u64;
        let mut left = n;
        while left > 0 && self.next < self.iovs.len() {
            let iov = &mut self.iovs[self.next];
            if left >= iov.iov_len {
                left -= iov.iov_len;
                self.next += 1;
            } else {
                // SAFETY: `left < iov_len`, so the new base stays inside the same buffer.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(left).cast() };
                iov.iov_len -= left;
                left = 0;
            }
        }
        if self.next == self.iovs.len() {
            self.finish(Ok(()), is_uring);
        }
    }

    fn finish(&mut self, result: io::Result<()>, is_uring: bool) {
        if result.is_ok()
            && let Some(stats) = self.stats
        {
            if self.is_direct {
                stats.direct_ios.fetch_add(1, Ordering::Relaxed);
                stats
                    .direct_bytes
                    .fetch_add(self.done as u64, Ordering::Relaxed);
            }
            if is_uring {
                stats.uring_ios.fetch_add(1, Ordering::Relaxed);
                stats
                    .uring_bytes
                    .fetch_add(self.done as u64, Ordering::Relaxed);
            }
        }
        self.result = Some(result);
        self.finished = Some(Instant::now());
    }

    /// One `preadv`/`pwritev` of what is left.
    fn step_syscall(&mut self) {
        let iovs = self.pending();
        // SAFETY: every `iovec` points into a buffer borrowed for `'a` (writable for a
        // read), and `iovs.len()` is at most IOV_MAX.
        let n = unsafe {
            if self.is_write {
                libc::pwritev(
                    self.fd,
                    iovs.as_ptr(),
                    iovs.len() as libc::c_int,
                    self.offset as libc::off_t,
                )
            } else {
                libc::preadv(
                    self.fd,
                    iovs.as_ptr(),
                    iovs.len() as libc::c_int,
                    self.offset as libc::off_t,
                )
            }
        };
        let moved = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        self.advance(moved, false);
    }
}

/// Carries out every transfer: through a ring when `is_uring` (all of them in as few
/// submissions as the ring's size allows), else with system calls one after the other.
/// Each transfer keeps its own result. Should the ring itself fail (no ring could be
/// set up, say), io_uring is turned off for the process, once, logged and counted,
/// and the transfers are finished with system calls.
pub fn run(transfers: &mut [Transfer<'_>], is_uring: bool) {
    if is_uring
        && transfers.iter().any(|t| !t.is_finished())
        && let Err(why) = ring::run(transfers)
        && !URING_BROKEN.swap(true, Ordering::Relaxed)
    {
        if let Some(stats) = transfers.iter().find_map(|t| t.stats) {
            stats.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(reason = %why, "io_uring failed; shard I/O goes through plain system calls from now on");
    }
    for t in transfers.iter_mut() {
        while !t.is_finished() {
            t.step_syscall();
        }
    }
}

/// Set once a ring failed at run time (see [`run`]).
static URING_BROKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether io_uring works in this process: probed once (a ring set up, a no-op
/// through it), and not failed since; the reason when it does not.
pub fn uring_status() -> Result<(), String> {
    static STATUS: OnceLock<Result<(), String>> = OnceLock::new();
    if URING_BROKEN.load(Ordering::Relaxed) {
        return Err("io_uring failed earlier in this process".into());
    }
    STATUS.get_or_init(ring::probe).clone()
}

#[cfg(feature = "io_uring")]
mod ring {
    use super::{StoreIoStats, Transfer};
    use io_uring::{IoUring, opcode, types};
    use std::io;
    use std::sync::Mutex;

    /// Entries of each ring's submission queue (the completion queue has twice as many,
    /// so it never overflows: at most this many operations are in flight).
    const ENTRIES: u32 = 64;
    /// Idle rings kept for reuse.
    const IDLE_RINGS: usize = 16;

    /// Rings not in use. A thread takes one for a batch and gives it back, so at most as
    /// many exist as threads ever did I/O at once.
    static IDLE: Mutex<Vec<IoUring>> = Mutex::new(Vec::new());

    fn take() -> io::Result<IoUring> {
        let idle = IDLE.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(ring) => Ok(ring),
            None => IoUring::new(ENTRIES),
        }
    }

    fn give_back(ring: IoUring) {
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_RINGS {
            idle.push(ring);
        }
    }

    pub(super) fn probe() -> Result<(), String> {
        let mut ring = IoUring::new(4).map_err(|e| {
            let setting = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| format!(" (kernel.io_uring_disabled = {})", s.trim()))
                .unwrap_or_default();
            format!("io_uring_setup failed: {e}{setting}")
        })?;
        let nop = opcode::Nop::new().build().user_data(7);
        // SAFETY: a no-op references no memory.
        unsafe { ring.submission().push(&nop) }.map_err(|e| format!("io_uring: {e}"))?;
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter failed: {e}"))?;
        let outcome = ring
            .completion()
            .next()
            .map(|cqe| (cqe.result(), cqe.user_data()));
        match outcome {
            Some((res, 7)) if res >= 0 => {
                give_back(ring);
                Ok(())
            }
            Some((res, _)) => Err(format!(
                "io_uring no-op failed: {}",
                io::Error::from_raw_os_error(-res)
            )),
            None => Err("io_uring no-op did not complete".into()),
        }
    }

    /// Runs the unfinished transfers through a ring: every one is queued (as many at a
    /// time as the ring takes), one `io_uring_enter` submits them and waits for the
    /// first completion, and the thread blocks again until the rest arrive; short
    /// transfers are queued again for what is left.
    pub(super) fn run(transfers: &mut [Transfer<'_>]) -> Result<(), String> {
        let mut ring = take().map_err(|e| format!("io_uring_setup failed: {e}"))?;
        let stats: Option<&StoreIoStats> = transfers.iter().find_map(|t| t.stats);
        loop {
            let mut queued = 0usize;
            {
                let mut sq = ring.submission();
                for (i, t) in transfers.iter().enumerate() {
                    if t.is_finished() {
                        continue;
                    }
                    if sq.is_full() {
                        break;
                    }
                    let iovs = t.pending();
                    let fd = types::Fd(t.fd);
                    let entry = if t.is_write {
                        opcode::Writev::new(fd, iovs.as_ptr(), iovs.len() as u32)
                            .offset(t.offset)
                            .build()
                    } else {
                        opcode::Readv::new(fd, iovs.as_ptr(), iovs.len() as u32)
                            .offset(t.offset)
                            .build()
                    };
                    // SAFETY: the entry points at `t.iovs` and the buffers they name,
                    // all borrowed for the transfer's life, which outlasts this call;
                    // this call returns only once every queued entry has completed
                    // (or the process aborts), and `t.iovs` is not touched meanwhile.
                    unsafe { sq.push(&entry.user_data(i as u64)) }
                        .expect("the queue was checked not full");
                    queued += 1;
                }
            }
            if queued == 0 {
                give_back(ring);
                return Ok(());
            }
            let mut completed = 0usize;
            let mut is_submitted = false;
            while completed < queued {
                match ring.submit_and_wait(1) {
                    Ok(_) => {
                        if !is_submitted {
                            is_submitted = true;
                            if let Some(stats) = stats {
                                stats
                                    .uring_submissions
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
                        ) => {}
                    Err(e) => {
                        let unsubmitted = ring.submission().len();
                        if !is_submitted && unsubmitted == queued {
                            // Nothing reached the kernel: the ring is dropped with its
                            // queue, and the caller finishes with system calls.
                            return Err(format!("io_uring_enter failed: {e}"));
                        }
                        // Operations in flight point into the caller's buffers: going
                        // on could let the kernel write into freed memory.
                        tracing::error!(error = %e, "io_uring_enter failed with I/O in flight; aborting");
                        std::process::abort();
                    }
                }
                for cqe in ring.completion() {
                    let t = &mut transfers[cqe.user_data() as usize];
                    let res = cqe.result();
                    let moved = if res < 0 {
                        Err(io::Error::from_raw_os_error(-res))
                    } else {
                        Ok(res as usize)
                    };
                    t.advance(moved, true);
                    completed += 1;
                }
            }
        }
    }
}

#[cfg(not(feature = "io_uring"))]
mod ring {
    use super::Transfer;

    pub(super) fn probe() -> Result<(), String> {
        Err("this build has no io_uring support (cargo feature io_uring)".into())
    }

    pub(super) fn run(_: &mut [Transfer<'_>]) -> Result<(), String> {
        Err("this build has no io_uring support".into())
    }
}

/// Whether the filesystem holding `dir` and `file` (an existing file there) takes
/// O_DIRECT record I/O: the offset alignment it needs (512 to 4096), or why not.
pub fn probe_direct(dir: &File, file: &Path) -> Result<u64, String> {
    let fs = nix::sys::statfs::fstatfs(dir).map_err(|e| format!("statfs failed: {e}"))?;
    let kind = fs.filesystem_type();
    // ramfs: the magic of include/uapi/linux/magic.h (nix does not name it).
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    if kind == nix::sys::statfs::TMPFS_MAGIC || kind.0 as i64 == RAMFS_MAGIC {
        return Err(
            "the filesystem keeps its files in memory (tmpfs or ramfs): there is no device \
             for O_DIRECT to bypass the page cache to"
                .into(),
        );
    }
    let probe =
        open_direct(file, false).map_err(|e| format!("the filesystem refuses O_DIRECT ({e})"))?;
    let (offset_align, mem_align) = dio_align(&probe)?;
    if mem_align as usize > BUFFER_ALIGN {
        return Err(format!(
            "direct I/O needs buffers aligned to {mem_align} bytes, more than {BUFFER_ALIGN}"
        ));
    }
    let candidates: Vec<u64> = match offset_align {
        Some(a) if a > MAX_DIRECT_ALIGN => {
            return Err(format!(
                "direct I/O needs offsets aligned to {a} bytes; records align to {MAX_DIRECT_ALIGN} at most"
            ));
        }
        Some(a) => vec![a.max(512)],
        None => vec![512, 4096],
    };
    let mut last = String::new();
    for align in candidates {
        let mut buf = Bounce::new(align as usize).map_err(|e| e.to_string())?;
        let mut t = [Transfer::read(&probe, 0, [buf.as_mut_slice()], 0)];
        run(&mut t, false);
        let [t] = t;
        match t.outcome().0 {
            Ok(()) => return Ok(align),
            Err(e) => last = format!("an aligned O_DIRECT read of {align} bytes failed: {e}"),
        }
    }
    Err(last)
}

/// `path` opened with O_DIRECT, for reading, or reading and writing.
pub fn open_direct(path: &Path, is_writable: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(is_writable)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// The direct I/O alignments statx(STATX_DIOALIGN) reports for `file`: (offset, memory),
/// the offset `None` when the kernel does not say; an error when it says the file takes
/// no direct I/O.
fn dio_align(file: &File) -> Result<(Option<u64>, u64), String> {
    // SAFETY: `statx` is plain old data; all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor, an empty NUL-terminated path with AT_EMPTY_PATH (so
    // the descriptor itself is examined), and a pointer to a live `statx` to fill.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if rc != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return Ok((None, 1));
    }
    if stx.stx_dio_offset_align == 0 {
        return Err("the filesystem reports no direct I/O support for its files".into());
    }
    Ok((
        Some(u64::from(stx.stx_dio_offset_align)),
        u64::from(stx.stx_dio_mem_align.max(1)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn transfers_resume_across_many_buffers_and_stop_at_the_end_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        for is_uring in [false, true] {
            std::fs::write(&path, b"").unwrap();
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            // 2,500 parts of 20 bytes: more than one call takes.
            let mut t = [Transfer::write(&file, 100, data.chunks(20))];
            run(&mut t, is_uring);
            let [t] = t;
            assert_eq!(t.done(), data.len());
            t.outcome().0.unwrap();
            let mut back = vec![0u8; data.len()];
            let mut t = [Transfer::read(&file, 100, back.chunks_mut(7), data.len())];
            run(&mut t, is_uring);
            let [t] = t;
            t.outcome().0.unwrap();
            assert!(back == data);
            // Past the end: the bytes before it are enough only when `need` says so.
            let mut tail = [0u8; 200];
            let mut past = [0u8; 300];
            let mut t = [
                Transfer::read(&file, 50_000, [&mut tail[..]], 100),
                Transfer::read(&file, 49_990, [&mut past[..]], 300),
            ];
            run(&mut t, is_uring);
            let [a, b] = t;
            assert_eq!(a.done(), 100);
            a.outcome().0.unwrap();
            assert_eq!(
                b.outcome().0.unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof
            );
            assert_eq!(tail[..100], data[49_900..]);
        }
    }

    #[test]
    fn bounce_buffers_are_aligned_and_reused_clean_of_borrows() {
        let a = Bounce::new(10_000).unwrap();
        assert_eq!(a.as_slice().as_ptr() as usize % BUFFER_ALIGN, 0);
        assert_eq!(a.as_slice().len(), 10_000);
        drop(a);
        let mut b = Bounce::new(9_000).unwrap();
        assert_eq!(b.as_slice().as_ptr() as usize % BUFFER_ALIGN, 0);
        b.as_mut_slice().fill(3);
        assert!(b.as_slice().iter().all(|&x| x == 3));
        let huge = Bounce::new(POOL_MAX_BYTES + 1).unwrap();
        assert_eq!(huge.as_slice().len(), POOL_MAX_BYTES + 1);
    }

    #[test]
    fn the_probe_names_tmpfs_and_accepts_a_filesystem_with_direct_io() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&[1; 5000])
            .unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        match probe_direct(&dir, &path) {
            Ok(align) => assert!([512, 1024, 2048, 4096].contains(&align), "{align}"),
            // The test's temp directory may be on a filesystem without O_DIRECT.
            Err(why) => eprintln!("no direct I/O under {}: {why}", tmp.path().display()),
        }
        let shm = Path::new("/dev/shm");
        if shm.is_dir()
            && let Ok(tmp) = tempfile::tempdir_in(shm)
        {
            let path = tmp.path().join("f");
            std::fs::write(&path, [1; 10]).unwrap();
            let dir = std::fs::File::open(tmp.path()).unwrap();
            let why = probe_direct(&dir, &path).unwrap_err();
            assert!(why.contains("tmpfs"), "{why}");
        }
    }

    #[test]
    fn io_uring_is_there_or_says_why_not() {
        match uring_status() {
            Ok(()) => {}
            Err(why) => {
                assert!(!why.is_empty());
                eprintln!("io_uring unavailable here: {why}");
            }
        }
    }
}
