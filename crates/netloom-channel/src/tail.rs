//! The application end of a pipeline: where inbound messages and errors that no handler
//! took are reported.
use crate::{Channel, ChannelError, Msg};

/// Receives what passed every handler. The pipeline's policy does not depend on it (an
/// unhandled error closes the channel whatever the tail does): a tail only reports.
/// Real channels log ([`LogTail`]); an [`EmbeddedChannel`](crate::EmbeddedChannel) keeps
/// both for the test to take.
pub(crate) trait Tail {
    /// A message reached the end of the pipeline.
    fn read(&mut self, channel: &Channel, msg: Msg);

    /// An error reached the end of the pipeline (the channel is being force-closed).
    fn exception(&mut self, channel: &Channel, err: ChannelError);
}

/// Logs and drops (a debug line per message; a warning per error, debug for routine ones).
pub(crate) struct LogTail;

impl Tail for LogTail {
    #[cold]
    fn read(&mut self, channel: &Channel, msg: Msg) {
        tracing::debug!(%channel, ty = msg.type_name(), "message reached the end of the pipeline; dropped");
    }

    #[cold]
    fn exception(&mut self, channel: &Channel, err: ChannelError) {
        if err.is_routine() {
            tracing::debug!(%channel, error = %err, "connection ended; closing the channel");
        } else {
            tracing::warn!(%channel, error = %err, "unhandled exception; closing the channel");
        }
    }
}
