//! A mount's live Prometheus metrics at `http://ADDR:PORT/metrics` (mount option
//! `metrics=ADDR:PORT`): the health report of the open volume (the same metrics as
//! `argosfs-health --prometheus`, from the data plane's live records; no stripe survey
//! and no smartctl per scrape, so a scrape costs the same on any size of volume) and the
//! mount's own counters: FUSE requests by operation, bytes read and written, the RAM and
//! L2 caches (hits, misses, bytes, evictions, verify failures), commits, degraded reads and
//! writes, and the background job.
//!
//! A plain HTTP/1.1 responder on its own thread: one request per connection, `GET
//! /metrics` answered, anything else 404; a client that does not send its request within
//! a few seconds is dropped.

use crate::control::JobWatch;
use crate::health::metrics::Builder;
use crate::posix::ops::OpCounters;
use crate::volume::Volume;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the metrics are made from.
struct Sources {
    vol: Arc<Volume>,
    ops: Arc<OpCounters>,
    jobs: Option<JobWatch>,
}

/// The metrics endpoint of a mount, serving until [`MetricsServer::stop`].
pub struct MetricsServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `/metrics` from `vol`, `ops` and `jobs`.
    pub fn start(
        addr: SocketAddr,
        vol: Arc<Volume>,
        ops: Arc<OpCounters>,
        jobs: Option<JobWatch>,
    ) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let sources = Sources { vol, ops, jobs };
        let thread = std::thread::Builder::new()
            .name("argosfs-metrics".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(stream) = stream
                        && let Err(e) = answer(stream, &sources)
                    {
                        tracing::debug!(error = %e, "metrics: a request was not answered");
                    }
                }
            })?;
        tracing::info!(%addr, "serving metrics at /metrics");
        Ok(MetricsServer {
            addr,
            stopping,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(stream: TcpStream, sources: &Sources) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The headers are read and ignored.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method == "GET" && path == "/metrics" {
        match render(sources) {
            Ok(text) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                format!("metrics failed: {e}\n"),
            ),
        }
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".to_string(),
        )
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// The metrics now, in the text exposition format.
pub fn render_for(
    vol: &Volume,
    ops: &OpCounters,
    jobs: Option<&JobWatch>,
) -> prometheus::Result<String> {
    let options = crate::health::ObserveOptions {
        passphrase: None,
        smart_override: None,
        run_smartctl: false,
    };
    let report = crate::health::assess(&crate::health::observe_open(vol, None, &options));
    let b = Builder::new();
    crate::health::metrics::add_report(&b, &report)?;
    mount_metrics(&b, vol, ops, jobs)?;
    prometheus::TextEncoder::new().encode_to_string(&b.into_registry().gather())
}

fn render(sources: &Sources) -> prometheus::Result<String> {
    render_for(&sources.vol, &sources.ops, sources.jobs.as_ref())
}

/// The mount's own counters, added to `b`.
fn mount_metrics(
    b: &Builder,
    vol: &Volume,
    ops: &OpCounters,
    jobs: Option<&JobWatch>,
) -> prometheus::Result<()> {
    let requests = b.counter(
        "argosfs_fuse_requests_total",
        "FUSE requests served by this mount, by operation",
        &["op"],
    )?;
    for (op, n) in ops.requests() {
        requests.with_label_values(&[op]).inc_by(n);
    }
    let (read, written) = ops.bytes();
    b.counter(
        "argosfs_fuse_read_bytes_total",
        "Bytes returned by reads through this mount",
        &[],
    )?
    .with_label_values::<&str>(&[])
    .inc_by(read);
    b.counter(
        "argosfs_fuse_written_bytes_total",
        "Bytes taken by writes through this mount",
        &[],
    )?
    .with_label_values::<&str>(&[])
    .inc_by(written);
    let s = vol.stats();
    for (name, help, value) in [
        (
            "argosfs_stripes_written_total",
            "Stripes encoded and written since mount",
            s.stripes_written,
        ),
        (
            "argosfs_stripes_read_total",
            "Stripes read from the disks since mount",
            s.stripes_read,
        ),
        (
            "argosfs_degraded_reads_total",
            "Stripe reads that had to rebuild from parity since mount",
            s.degraded_reads,
        ),
        (
            "argosfs_frames_decoded_total",
            "Frames of compressed or encrypted stripes opened by small reads since mount",
            s.frames_decoded,
        ),
        (
            "argosfs_files_packed_total",
            "Small files written into pack chunks since mount",
            s.files_packed,
        ),
        (
            "argosfs_degraded_writes_total",
            "Stripes written with shards missing since mount",
            s.degraded_writes,
        ),
        (
            "argosfs_shard_write_failures_total",
            "Shard writes that failed since mount",
            s.shard_write_failures,
        ),
        (
            "argosfs_commits_total",
            "Metadata commits since mount",
            s.commits,
        ),
        (
            "argosfs_cache_hits_total",
            "Stripe reads the RAM cache answered since mount",
            s.cache.hits,
        ),
        (
            "argosfs_cache_misses_total",
            "Stripe reads the RAM cache did not answer since mount",
            s.cache.misses,
        ),
        (
            "argosfs_direct_ios_total",
            "Shard record reads and writes done with O_DIRECT since mount",
            s.store_io.direct_ios,
        ),
        (
            "argosfs_direct_io_bytes_total",
            "Bytes moved by O_DIRECT shard record I/O since mount (aligned supersets included)",
            s.store_io.direct_bytes,
        ),
        (
            "argosfs_uring_ios_total",
            "Shard record reads and writes done through io_uring since mount",
            s.store_io.uring_ios,
        ),
        (
            "argosfs_uring_io_bytes_total",
            "Bytes moved by shard record I/O through io_uring since mount",
            s.store_io.uring_bytes,
        ),
        (
            "argosfs_uring_submissions_total",
            "io_uring submissions of shard I/O since mount (a stripe's shards go in one)",
            s.store_io.uring_submissions,
        ),
        (
            "argosfs_io_fallbacks_total",
            "Times direct_io or io_uring fell back to buffered I/O or plain system calls since mount",
            s.store_io.fallbacks,
        ),
        (
            "argosfs_cache_evictions_total",
            "Stripes the RAM cache dropped to stay within its bound since mount",
            s.cache.evictions,
        ),
        (
            "argosfs_cache_inserted_bytes_total",
            "Bytes of decoded stripes put in the RAM cache since mount",
            s.cache.inserted_bytes,
        ),
        (
            "argosfs_l2_hits_total",
            "Reads the L2 cache answered since mount",
            s.l2.hits,
        ),
        (
            "argosfs_l2_misses_total",
            "Reads the L2 cache did not answer since mount",
            s.l2.misses,
        ),
        (
            "argosfs_l2_hit_bytes_total",
            "Stored bytes the L2 cache answered with since mount",
            s.l2.hit_bytes,
        ),
        (
            "argosfs_l2_writes_total",
            "Stripes written to the L2 cache since mount",
            s.l2.writes,
        ),
        (
            "argosfs_l2_written_bytes_total",
            "Bytes written to the L2 cache since mount",
            s.l2.written_bytes,
        ),
        (
            "argosfs_l2_skipped_writes_total",
            "Stripes not written to the L2 cache because its writer was behind, since mount",
            s.l2.skipped_writes,
        ),
        (
            "argosfs_l2_evictions_total",
            "L2 cache entries deleted to stay within its bound since mount",
            s.l2.evictions,
        ),
        (
            "argosfs_l2_removals_total",
            "L2 cache entries deleted because their stripe was freed since mount",
            s.l2.removals,
        ),
        (
            "argosfs_l2_verify_failures_total",
            "L2 cache entries that failed their checks (deleted; read from the disks) since mount",
            s.l2.verify_failures,
        ),
        (
            "argosfs_l2_dropped_at_open_total",
            "L2 cache entries deleted at mount because their stripe id may be reused after a crash",
            s.l2.dropped_at_open,
        ),
        (
            "argosfs_l2_errors_total",
            "I/O errors of the L2 cache since mount (the first turns it off)",
            s.l2.errors,
        ),
    ] {
        b.counter(name, help, &[])?
            .with_label_values::<&str>(&[])
            .inc_by(value);
    }
    for (name, help, value) in [
        (
            "argosfs_cache_bytes",
            "Bytes of decoded stripes in the RAM cache",
            s.cache.bytes,
        ),
        (
            "argosfs_cache_capacity_bytes",
            "The RAM cache's bound in bytes (mount option cache_size)",
            s.cache.capacity_bytes,
        ),
        (
            "argosfs_l2_enabled",
            "1 while the L2 cache is in use (configured, opened, no I/O error)",
            u64::from(s.l2.is_enabled),
        ),
        (
            "argosfs_l2_bytes",
            "Bytes of entry files in the L2 cache",
            s.l2.bytes,
        ),
        (
            "argosfs_l2_entries",
            "Entries in the L2 cache",
            s.l2.entries,
        ),
        (
            "argosfs_l2_capacity_bytes",
            "The L2 cache's bound in bytes (mount option l2_cache_size)",
            s.l2.capacity_bytes,
        ),
    ] {
        b.gauge(name, help, &[])?
            .with_label_values::<&str>(&[])
            .set(value as f64);
    }
    let running = b.gauge(
        "argosfs_background_job_running",
        "1 while the mount runs a background job (heal, drain, scrub, ...), by kind",
        &["kind"],
    )?;
    let done = b.gauge(
        "argosfs_background_job_stripes_done",
        "Stripes the background job (running or last) has gone through in its phase",
        &["kind"],
    )?;
    let bytes = b.gauge(
        "argosfs_background_job_bytes",
        "Bytes the background job (running or last) has read or written",
        &["kind"],
    )?;
    if let Some(job) = jobs.and_then(JobWatch::status) {
        let kind = job.request.name();
        running
            .with_label_values(&[kind])
            .set(f64::from(u8::from(!job.is_finished())));
        done.with_label_values(&[kind])
            .set(job.progress.done as f64);
        bytes
            .with_label_values(&[kind])
            .set(job.progress.bytes as f64);
    }
    Ok(())
}
