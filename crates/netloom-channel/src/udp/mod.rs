//! UDP peers tracked as channels.
#[cfg(test)]
mod sizes {
    #[test]
    fn print_sizes() {
        eprintln!("Pipeline {}", std::mem::size_of::<crate::Pipeline>());
        eprintln!("Shared {}", std::mem::size_of::<crate::channel::Shared>());
        eprintln!("CloseSignal {}", std::mem::size_of::<crate::channel::CloseSignal>());
        eprintln!("ChannelAddr {}", std::mem::size_of::<crate::ChannelAddr>());
    }
}
