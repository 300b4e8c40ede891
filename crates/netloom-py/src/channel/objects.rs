//! The Python-visible channel objects: `Channel`, `ChannelHandlerContext`, `ServerChannel`
//! and the futures whose `sync()` blocks (Ctrl-C interrupts it).
use std::sync::Mutex;

use bytes::Bytes;
use netloom_channel::{Channel, ChannelAddr, ChannelError, ServerChannel};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::error::Error;
use crate::wait::block_on;

/// The Python exception for a channel error.
pub(crate) fn channel_error(err: ChannelError) -> PyErr {
    Error::new("ChannelError", err.to_string()).into()
}

/// `data` (bytes, bytearray, memoryview, ...) as `Bytes`.
pub(crate) fn to_bytes(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    let b = data.py().get_type::<PyBytes>().call1((data,))?;
    Ok(Bytes::copy_from_slice(b.cast::<PyBytes>()?.as_bytes()))
}

fn addr_tuple(addr: Option<&ChannelAddr>) -> Option<(String, u16)> {
    addr.and_then(ChannelAddr::inet)
        .map(|a| (a.ip().to_string(), a.port()))
}

/// A connection (py-netty's `Channel`): thread-safe, usable from any thread.
#[pyclass(module = "netloom._native", name = "Channel", frozen)]
pub(crate) struct PyChannel {
    pub(crate) channel: Channel,
}

#[pymethods]
impl PyChannel {
    /// Sends `data` (py-netty's `write` sends: it writes and flushes).
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.channel
            .write_and_flush(to_bytes(data)?)
            .map_err(channel_error)
    }

    /// Sends `data` (the same as `write`, Netty's name).
    fn write_and_flush(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.write(data)
    }

    /// Flushes written data.
    fn flush(&self) {
        self.channel.flush();
    }

    /// Closes gracefully (pending writes go out first); `force` drops them.
    #[pyo3(signature = (force=false))]
    fn close(&self, force: bool) {
        if force {
            self.channel.close_forced();
        } else {
            self.channel.close();
        }
    }

    /// Half-closes: sends FIN after pending writes, keeps reading.
    fn shutdown_output(&self) {
        self.channel.shutdown_output();
    }

    /// A future completing when the channel is closed.
    fn close_future(&self) -> PyCloseFuture {
        PyCloseFuture {
            target: Target::Channel(self.channel.clone()),
        }
    }

    /// Whether the connection is up.
    fn is_active(&self) -> bool {
        self.channel.is_active()
    }

    /// Whether it is not closed yet.
    fn is_open(&self) -> bool {
        self.channel.is_open()
    }

    /// Whether pending outbound bytes are under the high water mark.
    fn is_writable(&self) -> bool {
        self.channel.is_writable()
    }

    /// Stops (False) or resumes (True) reading: flow control.
    fn set_auto_read(&self, on: bool) {
        self.channel.set_auto_read(on);
    }

    /// Whether the channel reads.
    fn is_auto_read(&self) -> bool {
        self.channel.auto_read()
    }

    /// The channel's id (unique in the process).
    fn id(&self) -> u64 {
        self.channel.id()
    }

    /// `(host, port)` of this end, or None.
    fn local_address(&self) -> Option<(String, u16)> {
        addr_tuple(self.channel.local_addr())
    }

    /// `(host, port)` of the peer, or None.
    fn remote_address(&self) -> Option<(String, u16)> {
        addr_tuple(self.channel.peer_addr())
    }

    fn __repr__(&self) -> String {
        let show = |a: Option<(String, u16)>| a.map_or("?".to_owned(), |(h, p)| format!("{h}:{p}"));
        format!(
            "<Channel {} L:{} {} R:{}>",
            self.channel.id(),
            show(self.local_address()),
            if self.channel.is_active() { "-" } else { "!" },
            show(self.remote_address())
        )
    }
}

/// A listening socket (py-netty's server channel).
#[pyclass(module = "netloom._native", name = "ServerChannel", frozen)]
pub(crate) struct PyServerChannel {
    pub(crate) server: ServerChannel,
}

#[pymethods]
impl PyServerChannel {
    /// Stops listening (accepted connections stay).
    fn close(&self) {
        self.server.close();
    }

    /// A future completing when the server is closed.
    fn close_future(&self) -> PyCloseFuture {
        PyCloseFuture {
            target: Target::Server(self.server.clone()),
        }
    }

    /// Whether it still listens.
    fn is_active(&self) -> bool {
        self.server.is_open()
    }

    /// `(host, port)` it listens on (the real port for port 0).
    fn local_address(&self) -> Option<(String, u16)> {
        addr_tuple(Some(self.server.local_addr()))
    }
}

enum Target {
    Channel(Channel),
    Server(ServerChannel),
}

/// Completes when a channel or server channel is closed; `sync()` blocks until then.
#[pyclass(module = "netloom._native", name = "CloseFuture", frozen)]
pub(crate) struct PyCloseFuture {
    target: Target,
}

#[pymethods]
impl PyCloseFuture {
    /// Blocks until the channel is closed (Ctrl-C interrupts it); returns self.
    fn sync(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let fut = match &slf.get().target {
            Target::Channel(c) => c.close_future(),
            Target::Server(s) => s.close_future(),
        };
        block_on(slf.py(), async move {
            fut.await;
            Ok(())
        })?;
        Ok(slf)
    }

    /// Whether the channel is closed.
    fn done(&self) -> bool {
        match &self.target {
            Target::Channel(c) => !c.is_open(),
            Target::Server(s) => !s.is_open(),
        }
    }
}

/// What a handler does through its context during a callback: applied, in order, when the
/// callback returns (on the event loop thread, with one flush for all writes).
pub(crate) enum Op {
    /// `ctx.write`.
    Write(Bytes),
    /// `ctx.flush`.
    Flush,
    /// `ctx.close`.
    Close,
    /// `ctx.fire_channel_read(msg)`: to the next handler.
    FireRead(Py<PyAny>),
}

/// The ops queued during the current callback; `None` outside callbacks.
pub(crate) type OpQueue = Mutex<Option<Vec<Op>>>;

/// A handler's view of its channel (py-netty's `ChannelHandlerContext`). During a callback
/// its operations go to the pipeline at the handler's position; from elsewhere (another
/// thread, later) they go through the channel.
#[pyclass(module = "netloom._native", name = "ChannelHandlerContext", frozen)]
pub(crate) struct PyContext {
    pub(crate) channel: Py<PyChannel>,
    pub(crate) ops: OpQueue,
    pub(crate) name: String,
}

impl PyContext {
    /// Queues `op` if a callback is running; otherwise returns it.
    fn queue(&self, op: Op) -> Option<Op> {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        match ops.as_mut() {
            Some(list) => {
                list.push(op);
                None
            }
            None => Some(op),
        }
    }
}

#[pymethods]
impl PyContext {
    /// Sends `data` from this handler towards the socket (py-netty: writes are sent; one
    /// flush covers all writes of a callback).
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        match self.queue(Op::Write(to_bytes(data)?)) {
            Some(Op::Write(bytes)) => self
                .channel
                .get()
                .channel
                .write_and_flush(bytes)
                .map_err(channel_error),
            _ => Ok(()),
        }
    }

    /// The same as `write` (Netty's name).
    fn write_and_flush(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.write(data)
    }

    /// Flushes.
    fn flush(&self) {
        if self.queue(Op::Flush).is_some() {
            self.channel.get().channel.flush();
        }
    }

    /// Closes the channel gracefully.
    fn close(&self) {
        if self.queue(Op::Close).is_some() {
            self.channel.get().channel.close();
        }
    }

    /// Passes `msg` to the next handler's `channel_read` (only inside a callback).
    fn fire_channel_read(&self, msg: Py<PyAny>) -> PyResult<()> {
        match self.queue(Op::FireRead(msg)) {
            None => Ok(()),
            Some(_) => Err(Error::new(
                "StateError",
                "fire_channel_read is only allowed inside a handler callback",
            )
            .into()),
        }
    }

    /// The channel.
    fn channel(&self, py: Python<'_>) -> Py<PyChannel> {
        self.channel.clone_ref(py)
    }

    /// The handler's name in the pipeline.
    fn name(&self) -> &str {
        &self.name
    }
}
