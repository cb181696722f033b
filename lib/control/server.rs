//! The mount's side of the control socket: answers questions, and runs requests that
//! move shards as one background job at a time on the volume it serves.

use super::{Answer, Ask, JobStatus, SOCKET_FILE, receive, send};
use crate::maint::action::{self, Request};
use crate::maint::{Job, Stop};
use crate::volume::Volume;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a connected peer may take to send its question.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The control socket of a mount, serving until [`Server::stop`].
pub struct Server {
    path: PathBuf,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

/// Reports a mount's background job, now or the last one.
#[derive(Clone)]
pub struct JobWatch(Arc<Shared>);

impl JobWatch {
    /// The background job now, or the last one.
    pub fn status(&self) -> Option<JobStatus> {
        lock(&self.0.job).as_ref().map(|r| r.status())
    }
}

/// What the listener, the connections and the job share.
struct Shared {
    vol: Arc<Volume>,
    /// The mount's own uid: it may ask too (besides root).
    uid: u32,
    stopping: AtomicBool,
    next_job: AtomicU64,
    /// The background job now, or the last one.
    job: Mutex<Option<Arc<Running>>>,
    /// Its thread, joined at stop.
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// A background job and, once it ended, its result.
struct Running {
    id: u64,
    request: Request,
    started_unix: u64,
    job: Job,
    ended: Mutex<Option<(u64, Result<action::Outcome, String>)>>,
}

impl Running {
    fn status(&self) -> JobStatus {
        let ended = lock(&self.ended).clone();
        JobStatus {
            id: self.id,
            request: self.request.clone(),
            started_unix: self.started_unix,
            progress: self.job.progress(),
            stop_requested: self.job.stop_requested(),
            finished_unix: ended.as_ref().map(|(at, _)| *at),
            result: ended.map(|(_, result)| result),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    /// Makes `ROOT/control.sock` (replacing one a dead mount left) and starts answering.
    pub fn start(vol: Arc<Volume>) -> std::io::Result<Server> {
        let path = vol.root_path().join(SOCKET_FILE);
        // Only a socket is replaced: the volume lock, held by this process, says no
        // other mount is serving it.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&path)?,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a socket",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let shared = Arc::new(Shared {
            vol,
            uid: nix::unistd::geteuid().as_raw(),
            stopping: AtomicBool::new(false),
            next_job: AtomicU64::new(1),
            job: Mutex::new(None),
            worker: Mutex::new(None),
        });
        let for_listener = shared.clone();
        let listener = std::thread::Builder::new()
            .name("argosfs-control".into())
            .spawn(move || listen(&listener, &for_listener))?;
        Ok(Server {
            path,
            shared,
            listener: Some(listener),
        })
    }

    /// Resumes work the volume left unfinished when it was last in use (asked for by
    /// the mount at start): starts `request` as the background job.
    pub fn start_job(&self, request: Request) -> Answer {
        start_job(&self.shared, request)
    }

    /// A handle that reports the background job (for the mount's metrics).
    pub fn jobs(&self) -> JobWatch {
        JobWatch(self.shared.clone())
    }

    /// Stops answering, asks the background job to stop (it is continued by running it
    /// again) and waits for it, then removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(running) = lock(&self.shared.job).as_ref() {
            running.job.request_stop(Stop::Cancel);
        }
        // Wakes the listener from accept(); it sees `stopping` and returns.
        let _ = UnixStream::connect(&self.path);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        if let Some(worker) = lock(&self.shared.worker).take() {
            let _ = worker.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.listener.is_some() {
            self.shutdown();
        }
    }
}

fn listen(listener: &UnixListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("argosfs-control-peer".into())
            .spawn(move || {
                if let Err(e) = serve_peer(stream, &shared) {
                    tracing::debug!(error = %e, "control socket: a peer's question was not answered");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "control socket: cannot start a thread for a peer");
        }
    }
}

/// Answers one peer's one question, if it may ask.
fn serve_peer(mut stream: UnixStream, shared: &Shared) -> std::io::Result<()> {
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(std::io::Error::from)?;
    let volume = shared.vol.id();
    if peer.uid() != 0 && peer.uid() != shared.uid {
        tracing::warn!(
            uid = peer.uid(),
            pid = peer.pid(),
            "control socket: refused a peer that is neither root nor the mount's user"
        );
        let refusal = Answer::Failed(
            "permission denied: only root or the mount's user may control it".into(),
        );
        return send(&mut stream, volume, &refusal);
    }
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let ask: Ask = receive(&mut stream, volume)?;
    let answer = answer(shared, ask);
    send(&mut stream, volume, &answer)
}

fn answer(shared: &Shared, ask: Ask) -> Answer {
    match ask {
        Ask::Status => Answer::Status(lock(&shared.job).as_ref().map(|r| r.status())),
        Ask::Stop(why) => match lock(&shared.job).as_ref() {
            Some(running) if lock(&running.ended).is_none() => {
                running.job.request_stop(why);
                Answer::Status(Some(running.status()))
            }
            _ => Answer::Failed("no job is running".into()),
        },
        Ask::Perform(request) if request.is_long() => start_job(shared, request.with_online_rate()),
        Ask::Perform(request) => {
            tracing::info!(request = request.name(), "control socket: performing");
            match action::perform(&shared.vol, &request, &Job::new()) {
                Ok(outcome) => Answer::Done(outcome),
                Err(e) => Answer::Failed(e.to_string()),
            }
        }
    }
}

/// Starts `request` as the background job, unless one is running.
fn start_job(shared: &Shared, request: Request) -> Answer {
    let mut current = lock(&shared.job);
    if let Some(running) = current.as_ref()
        && lock(&running.ended).is_none()
    {
        return Answer::Busy(running.status());
    }
    if shared.stopping.load(Ordering::Acquire) {
        return Answer::Failed("the mount is shutting down".into());
    }
    let running = Arc::new(Running {
        id: shared.next_job.fetch_add(1, Ordering::Relaxed),
        request,
        started_unix: crate::types::unix_now(),
        job: Job::new(),
        ended: Mutex::new(None),
    });
    let vol = shared.vol.clone();
    let job = running.clone();
    tracing::info!(
        id = job.id,
        request = job.request.name(),
        "background job started"
    );
    let spawned = std::thread::Builder::new()
        .name("argosfs-job".into())
        .spawn(move || {
            let result = action::perform(&vol, &job.request, &job.job).map_err(|e| e.to_string());
            match &result {
                Ok(_) => tracing::info!(id = job.id, request = job.request.name(), "background job ended"),
                Err(e) => tracing::error!(id = job.id, request = job.request.name(), error = %e, "background job failed"),
            }
            *lock(&job.ended) = Some((crate::types::unix_now(), result));
        });
    match spawned {
        Ok(handle) => {
            // The previous job's thread has ended (its result is in): joining is instant.
            if let Some(previous) = lock(&shared.worker).replace(handle) {
                let _ = previous.join();
            }
            let status = running.status();
            *current = Some(running);
            Answer::Started(status)
        }
        Err(e) => Answer::Failed(format!("cannot start the job's thread: {e}")),
    }
}
