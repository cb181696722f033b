//! Where log lines go: stderr, or syslog (/dev/log) once a daemon has detached.
//!
//! One formatted event arrives as one write, so each write becomes one syslog datagram
//! with the event's severity.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

static SYSLOG: Mutex<Option<UnixDatagram>> = Mutex::new(None);

/// Sends all further log lines to the local syslog daemon (dropped if there is none).
pub fn route_logs_to_syslog() {
    let socket = UnixDatagram::unbound().and_then(|s| s.connect("/dev/log").map(|()| s));
    let mut slot = SYSLOG.lock().unwrap_or_else(|p| p.into_inner());
    *slot = Some(socket.unwrap_or_else(|_| {
        // No syslog here: keep a socket that goes nowhere so logs are dropped, not
        // written to a closed stderr.
        UnixDatagram::unbound().expect("a datagram socket can be created")
    }));
}

/// The `MakeWriter` given to the log formatter.
pub struct LogWriter;

/// One log event being written.
pub struct LogSink {
    severity: u8,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        LogSink { severity: 6 }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LogSink {
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        LogSink { severity }
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let slot = SYSLOG.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            None => {
                drop(slot);
                io::stderr().write_all(buf)?;
            }
            Some(socket) => {
                const FACILITY_DAEMON: u8 = 3;
                let program = std::env::args()
                    .next()
                    .and_then(|a| a.rsplit('/').next().map(str::to_string))
                    .unwrap_or_else(|| "argosfs".into());
                let mut line = format!(
                    "<{}>{}[{}]: ",
                    FACILITY_DAEMON * 8 + self.severity,
                    program,
                    std::process::id()
                )
                .into_bytes();
                line.extend_from_slice(buf.strip_suffix(b"\n").unwrap_or(buf));
                let _ = socket.send(&line);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
