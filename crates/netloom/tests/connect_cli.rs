//! `netloom connect HOST:PORT`, the README's "talk to it" step without nc.
use std::io::Write;
use std::process::{Command, Stdio};

mod common;
use common::Netloom;

/// Runs `netloom connect ADDR` with `input` on stdin; returns its stdout and exit code.
fn connect(addr: &str, input: &[u8]) -> (Vec<u8>, Option<i32>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(["connect", addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("netloom connect starts");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().expect("it exits");
    (out.stdout, out.status.code())
}

#[test]
fn stdin_goes_out_the_answer_comes_back_and_eof_half_closes() {
    let echo = Netloom::start(
        &["echo", "--listen", "127.0.0.1:0", "--framing", "lines"],
        Stdio::null(),
    );
    // The echo server answers after our EOF (half-close) and then closes: we exit 0.
    let (out, code) = connect(&echo.addr.to_string(), b"hello\nworld\n");
    assert_eq!(out, b"hello\nworld\n");
    assert_eq!(code, Some(0));
}

#[test]
fn a_name_works_and_a_bad_address_is_a_usage_error() {
    let echo = Netloom::start(&["echo", "--listen", "127.0.0.1:0"], Stdio::null());
    let (out, code) = connect(&format!("localhost:{}", echo.addr.port()), b"hi");
    assert_eq!((out.as_slice(), code), (&b"hi"[..], Some(0)));
    let (_, code) = connect("localhost", b"");
    assert_eq!(code, Some(2));
}

#[test]
fn through_forward_the_answer_to_a_half_closed_request_comes_back() {
    // The README path: `printf 'hello\n' | netloom connect FWD` with forward -> lines echo.
    let echo = Netloom::start(
        &["echo", "--listen", "127.0.0.1:0", "--framing", "lines"],
        Stdio::null(),
    );
    let to = echo.addr.to_string();
    let fwd = Netloom::start(&["forward", "--to", &to], Stdio::null());
    for _ in 0..5 {
        let (out, code) = connect(&fwd.addr.to_string(), b"hello\n");
        assert_eq!((out.as_slice(), code), (&b"hello\n"[..], Some(0)));
    }
}
