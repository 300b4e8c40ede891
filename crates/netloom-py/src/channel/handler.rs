//! `PyHandler`: a Python handler object as a stage of a netloom-channel pipeline.
//!
//! Each callback takes the GIL, marks the handler's context as "in a callback" (so that
//! `ctx.write` and friends queue instead of going through the channel), calls the Python
//! method, then applies the queued operations at the handler's position in the pipeline,
//! with one flush for all writes. Callbacks the Python class does not override are not in
//! the handler's [`Interest`]: the pipeline passes those events by without taking the GIL.
//! Lifecycle events (registered, active, inactive, unregistered, TLS handshake, writability)
//! are passed on after the Python method ran; `channel_read` is passed on only by
//! `ctx.fire_channel_read(msg)`, as in Netty.
use bytes::Bytes;
use netloom_channel::{ChannelError, Context, Handler, HandlerResult, Interest, Msg, UserEvent};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::objects::{Op, PyContext};

/// A Python object travelling between Python handlers (`ctx.fire_channel_read(obj)`).
pub(crate) struct PyMsg(pub(crate) Py<PyAny>);

/// Bits of the interest mask the Python side computes (which methods a class overrides).
pub(crate) mod bits {
    /// `channel_registered`.
    pub const REGISTERED: u32 = 1 << 0;
    /// `channel_unregistered`.
    pub const UNREGISTERED: u32 = 1 << 1;
    /// `channel_active`.
    pub const ACTIVE: u32 = 1 << 2;
    /// `channel_inactive`.
    pub const INACTIVE: u32 = 1 << 3;
    /// `channel_read`.
    pub const READ: u32 = 1 << 4;
    /// `channel_writability_changed`.
    pub const WRITABILITY: u32 = 1 << 6;
    /// `channel_handshake_complete`.
    pub const HANDSHAKE: u32 = 1 << 7;
    /// `exception_caught`.
    pub const EXCEPTION: u32 = 1 << 8;
}

/// A Python handler in a pipeline.
pub(crate) struct PyHandler {
    obj: Py<PyAny>,
    ctx: Py<PyContext>,
    mask: u32,
}

impl PyHandler {
    /// Wraps handler `obj` whose overridden methods are `mask` (see [`bits`]).
    pub(crate) fn new(obj: Py<PyAny>, ctx: Py<PyContext>, mask: u32) -> PyHandler {
        PyHandler { obj, ctx, mask }
    }

    /// Calls `method(ctx, *arg)` (the method's name interned once) and applies what it queued. A Python exception comes back
    /// as the error (the pipeline then calls `exception_caught`).
    fn call(
        &mut self,
        ctx: &mut Context<'_>,
        method: for<'py> fn(Python<'py>) -> &'py Bound<'py, PyString>,
        arg: impl for<'py> FnOnce(Python<'py>) -> Option<Bound<'py, PyAny>>,
    ) -> HandlerResult {
        crate::thread_state::prime_thread();
        let (result, ops) = Python::attach(|py| {
            let pctx = self.ctx.bind(py);
            *pctx.get().ops.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
            let result = match arg(py) {
                None => self.obj.bind(py).call_method1(method(py), (pctx,)),
                Some(a) => self.obj.bind(py).call_method1(method(py), (pctx, a)),
            };
            let ops = pctx
                .get()
                .ops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_default();
            (result.map(|_| ()), ops)
        });
        let mut wrote = false;
        for op in ops {
            match op {
                Op::Write(bytes) => {
                    ctx.write(bytes);
                    wrote = true;
                }
                Op::Flush => {
                    ctx.flush();
                    wrote = false;
                }
                Op::Close => {
                    if wrote {
                        ctx.flush();
                        wrote = false;
                    }
                    ctx.close();
                }
                Op::FireRead(obj) => ctx.fire_channel_read(Msg::new(PyMsg(obj))),
            }
        }
        if wrote {
            ctx.flush();
        }
        result.map_err(|e| Box::new(e) as _)
    }

    fn wants(&self, bit: u32) -> bool {
        self.mask & bit != 0
    }
}

impl Handler for PyHandler {
    fn interest(&self) -> Interest {
        let mut i = Interest::NONE;
        for (bit, interest) in [
            (bits::REGISTERED, Interest::REGISTERED),
            (bits::UNREGISTERED, Interest::UNREGISTERED),
            (bits::ACTIVE, Interest::ACTIVE),
            (bits::INACTIVE, Interest::INACTIVE),
            (bits::READ, Interest::READ),
            (bits::WRITABILITY, Interest::WRITABILITY),
            (bits::HANDSHAKE, Interest::USER_EVENT),
            (bits::EXCEPTION, Interest::EXCEPTION),
        ] {
            if self.wants(bit) {
                i = i.union(interest);
            }
        }
        i
    }

    fn channel_registered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let r = self.call(ctx, |py| intern!(py, "channel_registered"), |_| None);
        ctx.fire_channel_registered();
        r
    }

    fn channel_unregistered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let r = self.call(ctx, |py| intern!(py, "channel_unregistered"), |_| None);
        ctx.fire_channel_unregistered();
        r
    }

    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let r = self.call(ctx, |py| intern!(py, "channel_active"), |_| None);
        ctx.fire_channel_active();
        r
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let r = self.call(ctx, |py| intern!(py, "channel_inactive"), |_| None);
        ctx.fire_channel_inactive();
        r
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let msg = match msg.downcast::<Bytes>() {
            Ok(bytes) => {
                return self.call(
                    ctx,
                    |py| intern!(py, "channel_read"),
                    move |py| Some(PyBytes::new(py, &bytes).into_any()),
                );
            }
            Err(msg) => msg,
        };
        match msg.downcast::<PyMsg>() {
            Ok(PyMsg(obj)) => self.call(
                ctx,
                |py| intern!(py, "channel_read"),
                move |py| Some(obj.into_bound(py)),
            ),
            // Not something Python can take (a Rust handler's own type): pass it on.
            Err(other) => {
                ctx.fire_channel_read(other);
                Ok(())
            }
        }
    }

    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        let r = self.call(
            ctx,
            |py| intern!(py, "channel_writability_changed"),
            |_| None,
        );
        ctx.fire_channel_writability_changed(writable);
        r
    }

    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        let r = match &event {
            UserEvent::TlsHandshakeComplete(_) => self.call(
                ctx,
                |py| intern!(py, "channel_handshake_complete"),
                |_| None,
            ),
            _ => Ok(()),
        };
        ctx.fire_user_event(event);
        r
    }

    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        let message = error.to_string();
        // The Python exception a callback raised, as it was; anything else as a
        // netloom.errors.ChannelError.
        let exc = Python::attach(|py| -> Py<PyAny> {
            if let ChannelError::Handler { source, .. } = &error
                && let Some(err) = source.downcast_ref::<PyErr>()
            {
                return err.value(py).clone().into_any().unbind();
            }
            let err: PyErr = crate::error::Error::new("ChannelError", message).into();
            err.value(py).clone().into_any().unbind()
        });
        if let Err(e) = self.call(
            ctx,
            |py| intern!(py, "exception_caught"),
            move |py| Some(exc.into_bound(py)),
        ) {
            // exception_caught raised in turn: close instead of looping.
            tracing::warn!(error = %e, "exception_caught raised; closing the channel");
            ctx.close();
        }
        Ok(())
    }
}
