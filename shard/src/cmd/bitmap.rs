//! Bitmap commands on string values.

use bytes::Bytes;
use corekv_net::Reply;

use crate::store::Ctx;

pub fn setbit(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR SETBIT is being implemented")
}
pub fn getbit(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR GETBIT is being implemented")
}
pub fn bitcount(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR BITCOUNT is being implemented")
}
pub fn bitpos(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR BITPOS is being implemented")
}
pub fn bitop(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR BITOP is being implemented")
}
pub fn bitfield(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::error("ERR BITFIELD is being implemented")
}
