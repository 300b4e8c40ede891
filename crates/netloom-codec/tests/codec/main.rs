//! Integration tests of netloom-codec: one binary, one module per concern.

mod support;

mod arbitrary_input;
mod cobs;
mod delimiter;
mod dot_block;
mod fixed_identity;
mod framed;
mod length_field;
mod lines;
mod names;
mod netstring;
mod registry;
mod roundtrip;
mod smtp;
mod stuffing;
mod varint;
