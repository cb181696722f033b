//! Having a maintenance request performed, the same way for every program that asks
//! (argosfs-disk, argosfs-autopilot): by the mount serving the volume, through its
//! control socket, or by this process on the volume it opens under the lock.

use super::import::open_volume;
use crate::control::{Answer, Ask, Client};
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
    let ask = |ask: &Ask| {
        mount
            .ask(ask)
            .with_context(|| format!("asking the mount through {}", mount.path().display()))
    };
    let job = match ask(&Ask::Perform(request.clone()))? {
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
    loop {
        std::thread::sleep(POLL_EVERY);
        let Answer::Status(Some(now)) = ask(&Ask::Status)? else {
            anyhow::bail!("the mount lost track of job {}", job.id);
        };
        if now.id != job.id {
            anyhow::bail!(
                "the mount lost track of job {} (it now reports job {})",
                job.id,
                now.id
            );
        }
        match now.result {
            None => continue,
            Some(Ok(outcome)) => return Ok(Some(outcome)),
            Some(Err(why)) => return Err(anyhow::anyhow!(why)),
        }
    }
}
