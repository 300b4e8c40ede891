//! The echo handler.
use crate::{Context, Handler, HandlerResult, Msg};

/// Writes every message back, flushing once per read burst (one system call per burst).
/// Stops reading while the channel is unwritable, so a peer that sends faster than it
/// reads cannot make the server buffer without bound.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EmbeddedChannel};
/// let mut ch = EmbeddedChannel::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"a"));
/// assert_eq!(ch.read_outbound::<Bytes>(), Some(Bytes::from_static(b"a")));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.write(msg);
        Ok(())
    }

    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.flush();
        Ok(())
    }

    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        ctx.set_auto_read(writable);
        ctx.fire_channel_writability_changed(writable);
        Ok(())
    }
}
