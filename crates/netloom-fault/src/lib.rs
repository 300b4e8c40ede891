//! Reset connections on purpose: own sockets, other processes, host/port pairs; blackholes and a test fixture.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
