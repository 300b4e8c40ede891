//! `netloom.codec`: every framer of `netloom-codec`, by name, as incremental decoders and
//! encoders.
//!
//! A [`Decoder`] owns a read buffer: `feed(data)` appends and returns the frames that are
//! complete; `switch(name)` changes the framer and keeps the buffered bytes, so the next
//! `feed` (or [`Decoder::drain`]) decodes them with the new framer (Tendril's per-direction
//! switching). Frames are `bytes`; the framing itself never runs Python code per byte.
use bytes::{Bytes, BytesMut};
use netloom_codec::{CodecError, Framer};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList};
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::error::{Attr, Error};

/// The Python exception for a codec error; `frames` are the frames decoded before it.
fn codec_error(err: CodecError, frames: usize) -> Error {
    let msg = err.to_string();
    let recoverable = err.can_continue();
    let e = match err {
        CodecError::FrameTooLong { limit, seen } => Error::new("FrameTooLong", msg)
            .attr("limit", Attr::Int(limit as i128))
            .attr("seen", Attr::Int(seen as i128)),
        CodecError::TruncatedFrame { buffered, .. } => {
            Error::new("TruncatedFrame", msg).attr("buffered", Attr::Int(buffered as i128))
        }
        CodecError::InvalidName { .. } | CodecError::InvalidConfig { .. } => {
            Error::new("InvalidArgument", msg)
        }
        _ => Error::new("CodecError", msg),
    };
    e.attr("recoverable", Attr::Bool(recoverable))
        .attr("frames_before", Attr::Int(frames as i128))
}

fn framer(name: &str) -> Result<Framer, Error> {
    Framer::from_name(name).map_err(|e| codec_error(e, 0))
}

/// Copies `data` (bytes, bytearray, or anything `bytes()` accepts) onto `buf`.
fn append(buf: &mut BytesMut, data: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(b) = data.cast::<PyBytes>() {
        buf.extend_from_slice(b.as_bytes());
    } else if let Ok(b) = data.cast::<PyByteArray>() {
        buf.extend_from_slice(&b.to_vec());
    } else {
        let b = data.py().get_type::<PyBytes>().call1((data,))?;
        buf.extend_from_slice(b.cast::<PyBytes>()?.as_bytes());
    }
    Ok(())
}

fn bytes_arg(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let mut b = BytesMut::new();
    append(&mut b, data)?;
    Ok(b.freeze())
}

/// An incremental decoder: bytes in, frames out.
#[pyclass(module = "netloom._native")]
pub struct Decoder {
    framer: Framer,
    name: String,
    buf: BytesMut,
    /// Frames decoded but not yet returned because an error interrupted `feed`.
    held: Vec<Bytes>,
}

impl Decoder {
    fn run<'py>(&mut self, py: Python<'py>, eof: bool) -> PyResult<Bound<'py, PyList>> {
        let mut frames = std::mem::take(&mut self.held);
        loop {
            let step = if eof {
                self.framer.decode_eof(&mut self.buf)
            } else {
                self.framer.decode(&mut self.buf)
            };
            match step {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => {
                    // The frames before the error are not lost: the next call returns
                    // them first.
                    let n = frames.len();
                    self.held = frames;
                    return Err(codec_error(err, n).into());
                }
            }
        }
        PyList::new(py, frames.iter().map(|f| PyBytes::new(py, f)))
    }
}

#[pymethods]
impl Decoder {
    /// `Decoder(name)`: a decoder for the framer `name` (see docs/framers.md).
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(Decoder {
            framer: framer(name)?,
            name: name.to_owned(),
            buf: BytesMut::new(),
            held: Vec::new(),
        })
    }

    /// Appends `data` and returns the list of frames now complete (each `bytes`).
    /// Raises `FrameTooLong` and friends; if `err.recoverable`, keep feeding.
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        append(&mut self.buf, data)?;
        self.run(py, false)
    }

    /// Decodes what is buffered without new input (after `switch`).
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.run(py, false)
    }

    /// The stream ended: returns the last frames; a partial frame raises `TruncatedFrame`.
    fn feed_eof<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.run(py, true)
    }

    /// Changes the framer, keeping buffered bytes for the new one.
    fn switch(&mut self, name: &str) -> PyResult<()> {
        self.framer = framer(name)?;
        self.name = name.to_owned();
        Ok(())
    }

    /// Removes and returns the buffered bytes not yet part of a frame.
    fn take_buffer<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let rest = self.buf.split();
        PyBytes::new(py, &rest)
    }

    /// Bytes buffered, not yet part of a frame.
    #[getter]
    fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The current framer's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("Decoder({:?}, buffered={})", self.name, self.buf.len())
    }
}

/// An encoder: frames in, bytes out.
#[pyclass(module = "netloom._native")]
pub struct Encoder {
    framer: Framer,
    name: String,
}

#[pymethods]
impl Encoder {
    /// `Encoder(name)`: an encoder for the framer `name`.
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(Encoder {
            framer: framer(name)?,
            name: name.to_owned(),
        })
    }

    /// The wire bytes of one frame.
    fn encode<'py>(
        &mut self,
        py: Python<'py>,
        frame: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = BytesMut::new();
        self.framer
            .encode(bytes_arg(frame)?, &mut out)
            .map_err(|e| codec_error(e, 0))?;
        Ok(PyBytes::new(py, &out))
    }

    /// The wire bytes of several frames, concatenated.
    fn encode_all<'py>(
        &mut self,
        py: Python<'py>,
        frames: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = BytesMut::new();
        for (i, frame) in frames.try_iter()?.enumerate() {
            self.framer
                .encode(bytes_arg(&frame?)?, &mut out)
                .map_err(|e| codec_error(e, i))?;
        }
        Ok(PyBytes::new(py, &out))
    }

    /// Changes the framer for the frames encoded from now on.
    fn switch(&mut self, name: &str) -> PyResult<()> {
        self.framer = framer(name)?;
        self.name = name.to_owned();
        Ok(())
    }

    /// The current framer's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("Encoder({:?})", self.name)
    }
}

/// `framers()`: every framer kind of the registry, as dicts with `name`, `usage`,
/// `summary`, `example` and `options` (dicts with `key`, `values`, `doc`, `example`).
#[pyfunction]
fn framers(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for spec in netloom_codec::registry::FRAMERS {
        let options = PyList::empty(py);
        for opt in spec.options {
            let o = PyDict::new(py);
            o.set_item("key", opt.key)?;
            o.set_item("values", opt.value.describe())?;
            o.set_item("doc", opt.doc)?;
            o.set_item("example", opt.example)?;
            options.append(o)?;
        }
        let d = PyDict::new(py);
        d.set_item("name", spec.name)?;
        d.set_item("usage", spec.usage)?;
        d.set_item("summary", spec.summary)?;
        d.set_item("example", spec.example)?;
        d.set_item("options", options)?;
        list.append(d)?;
    }
    Ok(list)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Decoder>()?;
    m.add_class::<Encoder>()?;
    m.add_function(wrap_pyfunction!(framers, m)?)?;
    Ok(())
}
