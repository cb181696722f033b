//! The control socket of a mounted volume: how `argosfs-disk` (and scrub, the autopilot)
//! ask the mount to act on the volume it holds open, so the same command line works
//! whether the volume is mounted or not.
//!
//! The socket is `ROOT/control.sock`, made by the mount (ROOT is private to its owner,
//! the socket is mode 0600, and a peer whose uid is neither root's nor the mount's is
//! refused). One connection carries one question and its answer, each a frame of the
//! common format (see [`crate::format`]: magic `ARGCTRL\x1a`, version, the volume's id,
//! CRC) around a JSON body, at most [`MAX_MESSAGE_BYTES`].
//!
//! Requests that move shards run in the mount as one background job at a time; the
//! asking tool polls [`Ask::Status`] until the job is done (or leaves it running).

pub mod client;
pub mod server;

pub use client::Client;
pub use server::{JobWatch, Server};

use crate::format::{self, Expect, FrameHeader};
use crate::maint::action::{Outcome, Request};
use crate::maint::{Progress, Stop};
use crate::types::VolumeId;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The socket's file name in ROOT.
pub const SOCKET_FILE: &str = "control.sock";

const MAGIC: [u8; 8] = *b"ARGCTRL\x1a";
const VERSION: u16 = 1;

/// Largest message either side accepts (a survey of a big volume fits many times over).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// What a tool asks the mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ask {
    /// Perform a maintenance request: a short one answers with its outcome, one that
    /// moves shards starts as the background job.
    Perform(Request),
    /// The background job now, or the last one.
    Status,
    /// Ask the background job to stop after the stripe in progress.
    Stop(Stop),
}

/// What the mount answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    /// A short request was performed.
    Done(Outcome),
    /// A long request started in the background.
    Started(JobStatus),
    /// Another job is running: one at a time.
    Busy(JobStatus),
    /// The background job now, or the last one (None: there was none since mount).
    Status(Option<JobStatus>),
    /// The request failed; why.
    Failed(String),
}

/// A background job as the mount reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    /// Numbered from 1 in each mount.
    pub id: u64,
    /// What it does.
    pub request: Request,
    /// When it started.
    pub started_unix: u64,
    /// How far it got.
    pub progress: Progress,
    /// A stop was asked for (and why).
    pub stop_requested: Option<Stop>,
    /// When it ended, once it has.
    pub finished_unix: Option<u64>,
    /// Its outcome, or why it failed, once it has ended.
    pub result: Option<Result<Outcome, String>>,
}

impl JobStatus {
    /// The job has ended.
    pub fn is_finished(&self) -> bool {
        self.finished_unix.is_some()
    }
}

fn expect(volume: VolumeId) -> Expect {
    Expect {
        magic: MAGIC,
        newest_version: VERSION,
        known_flags: 0,
        volume: Some(volume),
    }
}

/// Writes one message.
fn send<T: Serialize>(
    stream: &mut impl Write,
    volume: VolumeId,
    message: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(std::io::Error::other(format!(
            "control message of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
            body.len()
        )));
    }
    let header = FrameHeader {
        magic: MAGIC,
        version: VERSION,
        flags: 0,
        body_len: 0,
        volume,
    };
    stream.write_all(&format::encode(header, &body))?;
    stream.flush()
}

/// Reads one message of volume `volume`; bad bytes are an `InvalidData` error naming
/// what was wrong.
fn receive<T: serde::de::DeserializeOwned>(
    stream: &mut impl Read,
    volume: VolumeId,
) -> std::io::Result<T> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let mut head = [0u8; format::HEADER_LEN];
    stream.read_exact(&mut head)?;
    let header = format::check_header_fields("control message", &head, &expect(volume))
        .map_err(|e| invalid(e.to_string()))?;
    let body_len = header.body_len as usize;
    if body_len > MAX_MESSAGE_BYTES {
        return Err(invalid(format!(
            "control message of {body_len} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
        )));
    }
    let mut frame = Vec::with_capacity(format::HEADER_LEN + body_len + format::TRAILER_LEN);
    frame.extend_from_slice(&head);
    frame.resize(format::HEADER_LEN + body_len + format::TRAILER_LEN, 0);
    stream.read_exact(&mut frame[format::HEADER_LEN..])?;
    let (_, body) = format::decode("control message", &frame, &expect(volume))
        .map_err(|e| invalid(e.to_string()))?;
    serde_json::from_slice(body).map_err(|e| invalid(format!("control message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_damage_is_refused() {
        let volume = VolumeId([7; 16]);
        let ask = Ask::Perform(Request::List);
        let mut bytes = Vec::new();
        send(&mut bytes, volume, &ask).unwrap();
        let back: Ask = receive(&mut bytes.as_slice(), volume).unwrap();
        assert_eq!(back, ask);
        // Another volume's socket, a flipped byte, a short message: errors, not panics.
        let other = receive::<Ask>(&mut bytes.as_slice(), VolumeId([8; 16])).unwrap_err();
        assert_eq!(other.kind(), std::io::ErrorKind::InvalidData);
        let mut flipped = bytes.clone();
        flipped[format::HEADER_LEN + 2] ^= 1;
        assert!(receive::<Ask>(&mut flipped.as_slice(), volume).is_err());
        assert!(receive::<Ask>(&mut &bytes[..bytes.len() - 1], volume).is_err());
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = receive::<Ask>(&mut huge.as_slice(), volume).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
