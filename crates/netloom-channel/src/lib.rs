//! Netty's channel model on tokio: event loop groups, bootstraps, a handler pipeline, TCP / UDP / TLS transports.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
