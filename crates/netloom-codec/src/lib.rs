//! Framers: bytes <-> frames. Every framer implements tokio-util's `Decoder` and `Encoder`; no sockets here.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
