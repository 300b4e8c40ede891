//! Tendril's connection tracking: managers by protocol and local endpoint, acceptors,
//! wrappers, and a registry of protocol plug-ins.
mod acceptor;
mod reply;
mod wrapper;

pub(crate) use acceptor::admit;
pub use acceptor::{Acceptor, AppInit, NewPeer, Verdict};
pub use reply::Reply;
pub(crate) use wrapper::wrap_listening;
pub use wrapper::{SocketRole, WrapSocket, Wrapper, WrapperChain};
