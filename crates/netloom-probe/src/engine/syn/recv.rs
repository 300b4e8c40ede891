//! The receive tasks of the SYN path: one per raw TCP socket, reading SYN-ACKs and
//! resets in `recvmmsg` batches and matching each to its probe.
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::Interest;

use super::super::Engine;
use super::super::sys::RecvBatch;

/// Segments read per `recvmmsg` call.
const BATCH: usize = 32;
/// Bytes kept of each segment: the largest IPv4 and TCP headers (60 + 60) fit.
const SEGMENT: usize = 128;

/// Reads the raw TCP socket of one IP version until the prober is dropped.
pub(crate) async fn run(engine: Arc<Engine>, v6: bool) {
    let Some(syn) = &engine.syn else { return };
    let Some(afd) = syn.socket(v6) else { return };
    let fd = afd.get_ref().as_raw_fd();
    let mut batch = RecvBatch::new(BATCH, SEGMENT);
    loop {
        let mut guard = match afd.ready(Interest::READABLE).await {
            Ok(g) => g,
            Err(err) => {
                tracing::error!(%err, v6, "raw TCP socket failed; SYN receive task stops");
                return;
            }
        };
        match batch.recv(fd) {
            Ok(n) => {
                let now = Instant::now();
                for i in 0..n {
                    let (bytes, from) = batch.get(i);
                    engine.syn_answer(syn, v6, bytes, from, (now, batch.stamp(i)));
                }
                // A short batch emptied the queue (see the ICMP receive task).
                if n < BATCH {
                    guard.clear_ready();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!(%err, v6, "receiving from the raw TCP socket failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
