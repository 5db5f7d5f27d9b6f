//! Geo commands: positions stored as 52-bit geohash scores in a sorted set, like Redis's
//! geo.c. GEOADD goes through ZADD; searches scan the zset score ranges of the geohash cells
//! around the centre.

mod geohash;
mod search;

use std::borrow::Cow;

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::is;
use crate::cmd::zset;
use crate::command::{k, spec, CommandSpec, Route::Shard, ONE_KEY, RS, W};
use crate::errors;
use crate::store::Ctx;
use crate::types::ZSet;

pub use search::store_key;

const MOVABLE_STORE: &[&str] = &["write", "denyoom", "movablekeys"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("geoadd", -5, W, ONE_KEY, "geo", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.", Shard(geoadd)),
    spec("geopos", -2, RS, ONE_KEY, "geo", "Returns the longitude and latitude of members from a geospatial index.", Shard(geopos)),
    spec("geodist", -4, RS, ONE_KEY, "geo", "Returns the distance between two members of a geospatial index.", Shard(geodist)),
    spec("geohash", -2, RS, ONE_KEY, "geo", "Returns members from a geospatial index as geohash strings.", Shard(geohash_cmd)),
    spec("geosearch", -7, RS, ONE_KEY, "geo", "Queries a geospatial index for members inside an area of a box or a circle.", Shard(search::search)),
    spec("geosearchstore", -8, W, k(1, 2, 1), "geo", "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.", Shard(search::search)),
    spec("georadius", -6, MOVABLE_STORE, ONE_KEY, "geo", "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", Shard(search::search)).with_key_finder(georadius_keys),
    spec("georadiusbymember", -5, MOVABLE_STORE, ONE_KEY, "geo", "Queries a geospatial index for members within a distance from a member, optionally stores the result.", Shard(search::search)).with_key_finder(georadius_keys),
    spec("georadius_ro", -6, RS, ONE_KEY, "geo", "Returns members from a geospatial index that are within a distance from a coordinate.", Shard(search::search)),
    spec("georadiusbymember_ro", -5, RS, ONE_KEY, "geo", "Returns members from a geospatial index that are within a distance from a member.", Shard(search::search)),
];

/// GEORADIUS/GEORADIUSBYMEMBER: the source key and the STORE/STOREDIST destination.
fn georadius_keys(args: &[Bytes]) -> Vec<usize> {
    std::iter::once(1).chain(search::store_key(args)).collect()
}

/// A longitude/latitude pair argument, checked against the WGS84 limits Redis indexes.
fn lon_lat(args: &[Bytes]) -> Result<[f64; 2], Reply> {
    let x = zset::parse_score(&args[0]).ok_or_else(errors::not_float)?;
    let y = zset::parse_score(&args[1]).ok_or_else(errors::not_float)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(Reply::error(format!(
            "ERR invalid longitude,latitude pair {x:.6},{y:.6}"
        )));
    }
    Ok([x, y])
}

/// A coordinate as Redis's `addReplyHumanLongDouble` prints it: `%.17Lf` without trailing
/// zeros.
fn coordinate(v: f64) -> Reply {
    let text = format!("{v:.17}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    let text = if trimmed == "-0" { "0" } else { trimmed };
    Reply::FormattedDouble(Cow::Owned(text.to_string()))
}

/// A distance as Redis replies with one: `%.4f`.
fn distance_reply(meters: f64) -> Reply {
    Reply::bulk(format!("{meters:.4}"))
}

/// A unit's size in meters.
fn unit(arg: &[u8]) -> Result<f64, Reply> {
    match arg.to_ascii_lowercase().as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(Reply::error(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with encoded positions.
fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(a) = args.get(first) {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        first += 1;
    }
    let triples = &args[first..];
    if !triples.len().is_multiple_of(3) || (nx && xx) {
        return errors::syntax();
    }
    let mut zadd_args = Vec::with_capacity(first + triples.len() / 3 * 2);
    zadd_args.push(Bytes::from_static(b"zadd"));
    zadd_args.extend_from_slice(&args[1..first]);
    for t in triples.chunks_exact(3) {
        let [x, y] = match lon_lat(&t[..2]) {
            Ok(xy) => xy,
            Err(e) => return e,
        };
        let score = geohash::score_of(x, y).unwrap_or(0);
        zadd_args.push(Bytes::copy_from_slice(
            itoa::Buffer::new().format(score).as_bytes(),
        ));
        zadd_args.push(t[2].clone());
    }
    zset::zadd(ctx, &zadd_args)
}

/// An array with one reply per member named in `args[2..]` of the zset at `args[1]`, made
/// from its score (`None` for a missing member or key): GEOPOS and GEOHASH.
fn per_member(ctx: &mut Ctx, args: &[Bytes], reply: impl Fn(Option<f64>) -> Reply) -> Reply {
    let z = match ctx.read_as::<ZSet>(&args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| reply(z.and_then(|z| z.score(m))))
            .collect(),
    )
}

/// GEOPOS key member [member ...]
fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    per_member(ctx, args, |score| {
        match score.and_then(geohash::decode_score) {
            Some([x, y]) => Reply::Array(vec![coordinate(x), coordinate(y)]),
            None => Reply::NilArray,
        }
    })
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => match unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        _ => return errors::syntax(),
    };
    let z = match ctx.read_as::<ZSet>(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let position = |m: &Bytes| z.score(m).and_then(geohash::decode_score);
    match (position(&args[2]), position(&args[3])) {
        (Some([x1, y1]), Some([x2, y2])) => {
            distance_reply(geohash::distance(x1, y1, x2, y2) / to_meter)
        }
        _ => Reply::Nil,
    }
}

/// GEOHASH key member [member ...]
fn geohash_cmd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    per_member(ctx, args, |score| {
        score
            .and_then(geohash::standard_hash)
            .map_or(Reply::Nil, Reply::bulk)
    })
}
