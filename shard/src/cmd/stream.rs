//! stream commands. (Placeholder until they land.)

use crate::command::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];

/// The arguments of a blocked XREAD/XREADGROUP with `$` resolved. (Placeholder.)
pub fn block_args(_ctx: &mut crate::store::Ctx, args: &[bytes::Bytes]) -> Vec<bytes::Bytes> {
    args.to_vec()
}
