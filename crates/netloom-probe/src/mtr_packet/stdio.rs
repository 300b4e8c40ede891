//! Standard input and output as nonblocking pipes on the tokio reactor.
//!
//! `tokio::io::stdin()` / `stdout()` hand every read and write to a blocking thread, which
//! costs two context switches and a copy per call. mtr-packet's clients connect it with
//! pipes, which epoll can watch: [`PipeReader`] and [`PipeWriter`] read and write them
//! directly. They restore the descriptor's flags when dropped.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileTypeExt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A duplicate of a pipe or socket descriptor, switched to nonblocking mode while alive.
#[derive(Debug)]
struct NonBlocking {
    file: File,
    flags: OFlags,
}

impl NonBlocking {
    /// `Ok(None)` when `fd` is not a pipe or socket (a file or terminal: use tokio's
    /// blocking stdio instead).
    fn new(fd: BorrowedFd<'_>) -> io::Result<Option<Self>> {
        let file = File::from(fd.try_clone_to_owned()?);
        let kind = file.metadata()?.file_type();
        if !(kind.is_fifo() || kind.is_socket()) {
            return Ok(None);
        }
        let flags = fcntl_getfl(&file)?;
        fcntl_setfl(&file, flags | OFlags::NONBLOCK)?;
        Ok(Some(NonBlocking { file, flags }))
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        let _ = fcntl_setfl(&self.file, self.flags);
    }
}

/// Registers `fd` with the reactor.
fn register(fd: NonBlocking) -> io::Result<AsyncFd<NonBlocking>> {
    // SAFETY: `NonBlocking` owns its descriptor (a dup made in `new`) and closes it only
    // when dropped; `as_raw_fd` always returns that descriptor, and the `AsyncFd` owns the
    // `NonBlocking`, so the descriptor stays open and the same for the registration's life.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

impl AsRawFd for NonBlocking {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// Standard input read straight from its pipe.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use tokio::io::AsyncReadExt;
/// if let Some(mut stdin) = netloom_probe::mtr_packet::PipeReader::stdin()? {
///     let mut buf = [0u8; 4096];
///     let n = stdin.read(&mut buf).await?;
///     # let _ = n;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PipeReader(AsyncFd<NonBlocking>);

impl PipeReader {
    /// Standard input, if it is a pipe or socket; `Ok(None)` otherwise. Must be called
    /// inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let stdin = netloom_probe::mtr_packet::PipeReader::stdin()?;
    /// println!("stdin is a pipe: {}", stdin.is_some());
    /// # Ok(()) }
    /// ```
    pub fn stdin() -> io::Result<Option<Self>> {
        let Some(fd) = NonBlocking::new(io::stdin().as_fd())? else {
            return Ok(None);
        };
        Ok(Some(PipeReader(register(fd)?)))
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| (&fd.get_ref().file).read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Standard output written straight to its pipe.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use tokio::io::AsyncWriteExt;
/// if let Some(mut stdout) = netloom_probe::mtr_packet::PipeWriter::stdout()? {
///     stdout.write_all(b"1 feature-support support ok\n").await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PipeWriter(AsyncFd<NonBlocking>);

impl PipeWriter {
    /// Standard output, if it is a pipe or socket; `Ok(None)` otherwise. Must be called
    /// inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let stdout = netloom_probe::mtr_packet::PipeWriter::stdout()?;
    /// println!("stdout is a pipe: {}", stdout.is_some());
    /// # Ok(()) }
    /// ```
    pub fn stdout() -> io::Result<Option<Self>> {
        let Some(fd) = NonBlocking::new(io::stdout().as_fd())? else {
            return Ok(None);
        };
        Ok(Some(PipeWriter(register(fd)?)))
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| (&fd.get_ref().file).write(buf)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
