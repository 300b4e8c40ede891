//! Async network probes (ICMP, UDP, TCP, SCTP) with TTL, traceroute sessions and the `mtr-packet` protocol.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
