//! A connection's transaction state: whether it is running inside a hold.

/// Per-connection transaction state.
#[derive(Default)]
pub struct ClientTxn {
    /// Commands run inside a hold: they skip lock checks and the scheduler, and remote ones
    /// go as a holder's commands.
    pub held: bool,
}
