//! `loss` on a TCP proxy: drops `probability` (0 to 1) of the TCP segments of the proxy's
//! client connections in the kernel (an nftables rule on the proxy's listen address, see
//! [`netloom_fault::PacketLoss`]), so TCP really retransmits. Stream `upstream`: segments
//! arriving at the listen port from clients (their data and their ACKs); `downstream` (the
//! default): segments the proxy sends to clients, dropped as they arrive at a client on this
//! host (loopback; segments to other hosts are not affected). Needs `CAP_NET_ADMIN`: without
//! it the toxic is refused (403) with an error naming it.
use std::net::SocketAddr;
use std::sync::Arc;

use netloom_fault::{Capability, FaultError, LossDirection, PacketLoss};
use serde_json::{Map, Value};

use super::{Attrs, KernelRules, KernelToxic, Toxic};
use crate::{ProxyError, Rng, Stream};

#[derive(Debug)]
struct TcpLoss {
    probability: f64,
}

pub(super) fn parse(a: &mut Attrs) -> Result<Arc<dyn Toxic>, ProxyError> {
    Ok(Arc::new(TcpLoss {
        probability: a.probability("probability", 0.0)?,
    }))
}

fn kernel_error(source: FaultError) -> ProxyError {
    ProxyError::Kernel {
        toxic: "loss".to_owned(),
        source,
    }
}

impl Toxic for TcpLoss {
    fn attributes(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("probability".to_owned(), Value::from(self.probability));
        m
    }

    fn kernel(&self) -> Option<&dyn KernelToxic> {
        Some(self)
    }
}

impl KernelToxic for TcpLoss {
    fn check(&self) -> Result<(), ProxyError> {
        match Capability::NetAdmin.is_effective() {
            Ok(true) => Ok(()),
            Ok(false) => Err(kernel_error(FaultError::MissingCapability {
                operation: "loss on a TCP proxy (nftables rules)",
                capability: Capability::NetAdmin,
                alternative: "run the proxy with it (as root, or `setcap cap_net_admin+ep`), \
                              or use a toxic that acts on bytes (latency, slicer, timeout)",
            })),
            Err(e) => Err(kernel_error(e)),
        }
    }

    fn install(
        &self,
        listen: SocketAddr,
        stream: Stream,
        seed: u64,
    ) -> Result<KernelRules, ProxyError> {
        let direction = match stream {
            Stream::Upstream => LossDirection::ToLocal,
            Stream::Downstream => LossDirection::FromLocal,
        };
        let mut rng = Rng::new(seed);
        let loss = PacketLoss::seeded(listen, direction, self.probability, || rng.next_u64())
            .map_err(kernel_error)?;
        Ok(Box::new(loss))
    }
}
