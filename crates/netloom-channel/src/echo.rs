//! The echo handler: an example handler (a complete one in a dozen lines), used by the
//! tests, the doc examples and `netloom echo`. The echo *servers* (signals, reports,
//! printing) are application code and live in the CLI (`crates/netloom/src/cli/`).
use crate::{Context, Handler, HandlerResult, Msg};

/// Writes every message back. A flush only marks data ready: the channel writes after the
/// read burst (or once a read chunk's worth is flushed), so small messages still take one
/// system call per burst. Stops reading while the channel is unwritable, so a peer that
/// sends faster than it reads cannot make the server buffer without bound. It takes only
/// reads and writability changes ([`Interest`](crate::Interest)): the pipeline passes
/// everything else by.
///
/// ```
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EmbeddedChannel};
/// let mut ch = EmbeddedChannel::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) }).unwrap();
/// ch.write_inbound(Bytes::from_static(b"a"));
/// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"a")));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoHandler;

#[crate::handler]
impl Handler for EchoHandler {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.write_and_flush(msg);
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
