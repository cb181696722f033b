//! The asking side of the control socket: finds out whether a mount serves a volume and
//! puts one question to it per connection.

use super::{Answer, Ask, SOCKET_FILE, receive, send};
use crate::types::VolumeId;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an answer may take (long requests answer at once: they run in the
/// background; a survey of a big volume is the slowest question).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// A mount serving a volume, reached through its control socket.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    volume: VolumeId,
}

impl Client {
    /// The mount serving the volume at `root` (whose id is `volume`), when one answers
    /// on its socket. `None` when there is no socket or nothing listens on it (a mount
    /// that died leaves the file behind): the volume is then not mounted, or mounted by
    /// a process without a control socket, which the volume lock tells.
    pub fn find(root: &Path, volume: VolumeId) -> Option<Client> {
        let path = root.join(SOCKET_FILE);
        UnixStream::connect(&path).ok()?;
        Some(Client { path, volume })
    }

    /// Asks one question and waits for the answer.
    pub fn ask(&self, ask: &Ask) -> std::io::Result<Answer> {
        let mut stream = UnixStream::connect(&self.path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        send(&mut stream, self.volume, ask)?;
        receive(&mut stream, self.volume)
    }

    /// The socket.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
