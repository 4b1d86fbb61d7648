//! `spipe`: standard input and output joined to one encrypted connection.
//!
//! As spiped's spipe: a socket pair stands in for the accepted plaintext socket of `spiped -e`;
//! one end goes to a [`Worker`] running the usual initiator life cycle (connect, handshake,
//! data), and two blocking threads copy stdin → pair and pair → stdout, so stdin and stdout
//! may be files, pipes, ttys or sockets. Standard input's EOF becomes the close record and a
//! half-close; the peer's close ends standard output.
//!
//! Exit status: 0 when the connection ended cleanly (or the reader of stdout went away);
//! otherwise the [`ConnError`] is returned and the binary prints it and exits 1.
//!
//! SIGHUP: ssh sends it to its ProxyCommand as soon as a session is over, usually just after
//! closing our stdin, so dying at once (the default action, and what spiped's spipe does) races
//! with sending the close record, and the server logs a truncation for every clean logout.
//! spipe instead carries on with the normal end (stdin's EOF → close record → the peer's close)
//! for at most [`SPIPE_HANGUP_GRACE`], then exits 0 with what it had.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::sync::Arc;

use super::error::ConnError;
use super::stream::Stream;
use super::worker::Worker;
use super::Shared;
use crate::cli::Mode;
use crate::limits::{SPIPE_COPY_BUF, SPIPE_HANGUP_GRACE};

/// Why `spipe` failed.
#[derive(Debug, thiserror::Error)]
pub enum SpipeError {
    /// The connection failed (connect, handshake, record, truncation, ...).
    #[error("{0}")]
    Conn(#[from] ConnError),
    /// Local plumbing failed (socket pair, event loop, stdin).
    #[error("{0}")]
    Local(#[from] io::Error),
}

enum Event {
    Engine(io::Result<Option<Result<(), ConnError>>>),
    Stdout(io::Result<()>),
    Hangup,
}

fn copy(mut from: impl Read, mut to: impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; SPIPE_COPY_BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        to.flush()?;
    }
}

/// Runs one connection to `shared`'s target over stdin/stdout.
pub fn run(shared: Arc<Shared>) -> Result<(), SpipeError> {
    let (ours, engine_end) = std::os::unix::net::UnixStream::pair()?;
    engine_end.set_nonblocking(true)?;
    let mut worker = Worker::new(Mode::Encrypt, shared.clone(), None)?;
    shared.active.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    worker.adopt(Stream::Unix(mio::net::UnixStream::from_std(engine_end)));

    let (tx, rx) = mpsc::channel();
    let tx_engine = tx.clone();
    let tx_hangup = tx.clone();
    let mut hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new().name("spipe-signals".into()).spawn(move || {
        if hangups.forever().next().is_some() {
            let _ = tx_hangup.send(Event::Hangup);
        }
    })?;
    std::thread::Builder::new()
        .name("spipe-engine".into())
        .spawn(move || {
            let r = worker.run_until_idle();
            let _ = tx_engine.send(Event::Engine(r));
        })?;

    // stdin → pair. Raw file descriptors (dup'd), so std's buffering never holds bytes back.
    let stdin = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let to_engine = ours.try_clone()?;
    std::thread::Builder::new().name("spipe-stdin".into()).spawn(move || {
        let r = copy(stdin, &to_engine);
        // EOF (or a failing stdin) ends our sending direction: close record + FIN.
        let _ = to_engine.shutdown(Shutdown::Write);
        if let Err(e) = r {
            tracing::debug!("reading standard input: {e}");
        }
    })?;

    // pair → stdout.
    let stdout = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let from_engine = ours;
    std::thread::Builder::new().name("spipe-stdout".into()).spawn(move || {
        let r = copy(&from_engine, stdout);
        let _ = tx.send(Event::Stdout(r));
    })?;

    // Wait for both the connection's outcome and the end of stdout. The connection's error
    // wins: when it fails, our end of the pair may also see a reset, which is only a symptom.
    let mut engine: Option<Option<Result<(), ConnError>>> = None;
    let mut stdout: Option<io::Result<()>> = None;
    let mut deadline: Option<std::time::Instant> = None;
    while engine.is_none() || stdout.is_none() {
        let event = match deadline {
            None => rx.recv().map_err(|_| ()),
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(std::time::Instant::now())) {
                Ok(e) => Ok(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::debug!("SIGHUP: the connection did not end within {SPIPE_HANGUP_GRACE:?}; exiting");
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
            },
        };
        match event {
            Ok(Event::Hangup) => {
                tracing::debug!("SIGHUP: finishing the connection (at most {SPIPE_HANGUP_GRACE:?})");
                deadline.get_or_insert(std::time::Instant::now() + SPIPE_HANGUP_GRACE);
            }
            Ok(Event::Engine(r)) => {
                let r = r?;
                if let Some(Err(e)) = r {
                    return Err(e.into());
                }
                engine = Some(r);
            }
            // Whoever reads our stdout went away: nothing more to deliver, we are done.
            Ok(Event::Stdout(Err(e))) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Ok(Event::Stdout(r)) => stdout = Some(r),
            Err(_) => return Err(io::Error::other("internal threads exited unexpectedly").into()),
        }
    }
    stdout.expect("loop ends with both")?;
    Ok(())
}
