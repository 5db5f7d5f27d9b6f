//! zset commands. (Placeholder until they land.)

use crate::command::CommandSpec;

pub static COMMANDS: &[CommandSpec] = &[];
