//! Having a maintenance request performed, the same way for every program that asks
//! (argosfs-disk, argosfs-autopilot): by the mount serving the volume, through its
//! control socket, or by this process on the volume it opens under the lock.

use super::import::open_volume;
use crate::control::{Answer, Ask, Client, JobStatus};
use crate::maint::Stop;
use crate::maint::action::{self, Outcome, Request};
use crate::volume::Volume;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting program asks the mount how its job is doing.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Who performs requests on a volume.
pub(crate) enum Performer {
    /// The mount serving it.
    Mount {
        /// Its control socket.
        client: Client,
        /// ROOT, for messages.
        root: PathBuf,
    },
    /// This process, on the volume it opened.
    Here(Box<Volume>),
}

impl Performer {
    /// `mount` when a mount serves the volume at `root` (see [`Client::find`]), else
    /// the volume opened here (read-only when `read_only`; the passphrase from
    /// `passphrase_file`, the environment or a prompt).
    pub(crate) fn new(
        root: &Path,
        mount: Option<Client>,
        passphrase_file: Option<&Path>,
        read_only: bool,
    ) -> anyhow::Result<Performer> {
        Ok(match mount {
            Some(client) => Performer::Mount {
                client,
                root: root.to_path_buf(),
            },
            None => Performer::Here(Box::new(open_volume(root, passphrase_file, read_only)?)),
        })
    }

    /// Performs `request`. A mount runs a long one in the background: this waits for
    /// it unless `background`, and then returns `None`.
    pub(crate) fn perform(
        &self,
        request: &Request,
        background: bool,
    ) -> anyhow::Result<Option<Outcome>> {
        match self {
            Performer::Here(vol) => action::perform(vol, request, &crate::maint::Job::new())
                .map(Some)
                .map_err(|e| super::disk::disk_error(vol.root_path(), e))
                .with_context(|| request.name().to_string()),
            Performer::Mount { client, root } => online(client, root, request, background),
        }
    }

    /// Has `request` performed once: by `mount` when a mount serves the volume, else on
    /// the volume opened here for it and closed again (committed, unless it only read).
    pub(crate) fn perform_once(
        root: &Path,
        mount: Option<Client>,
        passphrase_file: Option<&Path>,
        request: &Request,
        background: bool,
    ) -> anyhow::Result<Option<Outcome>> {
        let performer = Performer::new(root, mount, passphrase_file, request.is_read_only())?;
        let outcome = performer.perform(request, background)?;
        if !request.is_read_only() {
            performer.close()?;
        }
        Ok(outcome)
    }

    /// Commits and closes a volume opened here.
    pub(crate) fn close(self) -> anyhow::Result<()> {
        match self {
            Performer::Mount { .. } => Ok(()),
            Performer::Here(vol) => vol.close().context("closing the volume"),
        }
    }
}

/// A volume in use, but not by a mount answering on its control socket, gets why a
/// program that asks mounts cannot work next to that process.
pub(crate) fn explain_in_use(e: anyhow::Error) -> anyhow::Error {
    if e.chain().any(|cause| cause.is::<super::InUse>()) {
        e.context("no mount answers on the volume's control socket, and another process holds the volume (an import, fsck, or a read-only mount): wait for it to finish")
    } else {
        e
    }
}

fn online(
    mount: &Client,
    root: &Path,
    request: &Request,
    background: bool,
) -> anyhow::Result<Option<Outcome>> {
    let job = match ask(mount, &Ask::Perform(request.clone()))? {
        Answer::Done(outcome) => return Ok(Some(outcome)),
        Answer::Started(job) => job,
        Answer::Busy(job) => anyhow::bail!(
            "the mount is already running {} (job {}, started at unix {}); `argosfs-disk {} status` shows it, `stop` stops it",
            job.request.name(),
            job.id,
            job.started_unix,
            root.display()
        ),
        Answer::Failed(why) => return Err(anyhow::anyhow!(why)),
        Answer::Status(_) => anyhow::bail!("the mount answered a request with a status"),
    };
    if background {
        return Ok(None);
    }
    wait_for_job(mount, job.id).map(Some)
}

/// The mount's background job now, or its last one.
pub(crate) fn mount_job(mount: &Client) -> anyhow::Result<Option<JobStatus>> {
    match ask(mount, &Ask::Status)? {
        Answer::Status(job) => Ok(job),
        Answer::Failed(why) => Err(anyhow::anyhow!(why)),
        _ => anyhow::bail!("the mount answered a status question with something else"),
    }
}

/// Asks the mount's running job to stop (`why`) after the stripe in progress.
pub(crate) fn stop_job(mount: &Client, why: Stop) -> anyhow::Result<JobStatus> {
    match ask(mount, &Ask::Stop(why))? {
        Answer::Status(Some(job)) => Ok(job),
        Answer::Failed(why) => Err(anyhow::anyhow!(why)),
        _ => anyhow::bail!("the mount answered a stop with something else"),
    }
}

/// Waits for the mount's job `id` to end: its outcome, or why it failed.
pub(crate) fn wait_for_job(mount: &Client, id: u64) -> anyhow::Result<Outcome> {
    loop {
        std::thread::sleep(POLL_EVERY);
        let Some(now) = mount_job(mount)? else {
            anyhow::bail!("the mount lost track of job {id}");
        };
        if now.id != id {
            anyhow::bail!(
                "the mount lost track of job {id} (it now reports job {})",
                now.id
            );
        }
        match now.result {
            None => continue,
            Some(Ok(outcome)) => return Ok(outcome),
            Some(Err(why)) => return Err(anyhow::anyhow!(why)),
        }
    }
}

/// Puts one question to the mount, naming its socket if that fails.
fn ask(mount: &Client, question: &Ask) -> anyhow::Result<Answer> {
    mount
        .ask(question)
        .with_context(|| format!("asking the mount through {}", mount.path().display()))
}
