//! GEOSEARCH, GEOSEARCHSTORE and the GEORADIUS family, parsed and answered like Redis's
//! `georadiusGeneric`.

use bytes::Bytes;
use corekv_net::Reply;

use super::geohash::{self, Extent, Shape};
use super::{coordinate, distance_reply, lon_lat, unit};
use crate::args::{is, parse_i64};
use crate::cmd::zset::parse_score;
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::zset::compare;
use crate::types::ZSet;
use crate::value::Value;

/// Which command form: where the centre comes from and which options it takes.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// GEORADIUS[_RO] key lon lat radius unit
    Radius { read_only: bool },
    /// GEORADIUSBYMEMBER[_RO] key member radius unit
    ByMember { read_only: bool },
    /// GEOSEARCH key / GEOSEARCHSTORE dst key, then FROM* and BY* options
    Search { store: bool },
}

impl Form {
    fn of(name: &Bytes) -> Form {
        match name.to_ascii_lowercase().as_slice() {
            b"georadius" => Form::Radius { read_only: false },
            b"georadius_ro" => Form::Radius { read_only: true },
            b"georadiusbymember" => Form::ByMember { read_only: false },
            b"georadiusbymember_ro" => Form::ByMember { read_only: true },
            b"geosearchstore" => Form::Search { store: true },
            _ => Form::Search { store: false },
        }
    }

    /// Index of the first optional argument.
    fn options_at(self) -> usize {
        match self {
            Form::Radius { .. } => 6,
            Form::ByMember { .. } => 5,
            Form::Search { store } => 2 + store as usize,
        }
    }

    /// GEORADIUS and GEORADIUSBYMEMBER take STORE / STOREDIST key.
    fn takes_store_key(self) -> bool {
        matches!(
            self,
            Form::Radius { read_only: false } | Form::ByMember { read_only: false }
        )
    }
}

/// The destination of GEORADIUS / GEORADIUSBYMEMBER ... STORE|STOREDIST key, for routing.
pub fn store_key(args: &[Bytes]) -> Option<usize> {
    let form = Form::of(args.first()?);
    if !form.takes_store_key() {
        return None;
    }
    let mut found = None;
    let mut i = form.options_at();
    while i < args.len() {
        if (is(&args[i], "store") || is(&args[i], "storedist") || is(&args[i], "count"))
            && i + 1 < args.len()
        {
            if !is(&args[i], "count") {
                found = Some(i + 1);
            }
            i += 1;
        }
        i += 1;
    }
    found
}

fn member_position(z: &ZSet, member: &[u8]) -> Result<[f64; 2], Reply> {
    z.score(member)
        .and_then(geohash::decode_score)
        .ok_or_else(|| Reply::error("ERR could not decode requested zset member"))
}

fn float_or(arg: &[u8], message: &'static str) -> Result<f64, Reply> {
    parse_score(arg).ok_or_else(|| Reply::error(message))
}

fn radius_extent(args: &[Bytes]) -> Result<(Extent, f64), Reply> {
    let r = float_or(&args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(Reply::error("ERR radius cannot be negative"));
    }
    Ok((Extent::Radius(r), unit(&args[1])?))
}

fn box_extent(args: &[Bytes]) -> Result<(Extent, f64), Reply> {
    let width = float_or(&args[0], "ERR need numeric width")?;
    let height = float_or(&args[1], "ERR need numeric height")?;
    if height < 0.0 || width < 0.0 {
        return Err(Reply::error("ERR height or width cannot be negative"));
    }
    Ok((Extent::Box { width, height }, unit(&args[2])?))
}

#[derive(PartialEq, Clone, Copy)]
enum Sort {
    None,
    Asc,
    Desc,
}

struct Query {
    center: Option<[f64; 2]>,
    shape: Option<Shape>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    any: bool,
    count: usize,
    store: Option<Bytes>,
    store_dist: bool,
}

fn parse(args: &[Bytes], form: Form, z: Option<&ZSet>) -> Result<Query, Reply> {
    let mut q = Query {
        center: None,
        shape: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
        store_dist: false,
    };
    let shaped = |(extent, conversion)| Shape { extent, conversion };
    match form {
        Form::Radius { .. } => {
            q.center = Some(lon_lat(&args[2..4])?);
            q.shape = Some(shaped(radius_extent(&args[4..6])?));
        }
        // Without the key, the rest is still parsed to pick the reply.
        Form::ByMember { .. } => {
            if let Some(z) = z {
                q.center = Some(member_position(z, &args[2])?);
                q.shape = Some(shaped(radius_extent(&args[3..5])?));
            }
        }
        Form::Search { store } => {
            if store {
                q.store = Some(args[1].clone());
            }
        }
    }
    let search = matches!(form, Form::Search { .. });
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut i = form.options_at();
    while i < args.len() {
        let a = &args[i];
        let remaining = args.len() - i;
        if is(a, "withdist") {
            q.with_dist = true;
        } else if is(a, "withhash") {
            q.with_hash = true;
        } else if is(a, "withcoord") {
            q.with_coord = true;
        } else if is(a, "any") {
            q.any = true;
        } else if is(a, "asc") {
            q.sort = Sort::Asc;
        } else if is(a, "desc") {
            q.sort = Sort::Desc;
        } else if is(a, "count") && remaining > 1 {
            let n = parse_i64(&args[i + 1]).ok_or_else(errors::not_integer)?;
            if n <= 0 {
                return Err(Reply::error("ERR COUNT must be > 0"));
            }
            q.count = n as usize;
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && remaining > 1 && form.takes_store_key()
        {
            q.store = Some(args[i + 1].clone());
            q.store_dist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && form == (Form::Search { store: true }) {
            q.store_dist = true;
        } else if search && is(a, "frommember") && remaining > 1 && !from_lonlat {
            if let Some(z) = z {
                q.center = Some(member_position(z, &args[i + 1])?);
            }
            from_member = true;
            i += 1;
        } else if search && is(a, "fromlonlat") && remaining > 2 && !from_member {
            q.center = Some(lon_lat(&args[i + 1..i + 3])?);
            from_lonlat = true;
            i += 2;
        } else if search && is(a, "byradius") && remaining > 2 && !by_box {
            q.shape = Some(shaped(radius_extent(&args[i + 1..i + 3])?));
            by_radius = true;
            i += 2;
        } else if search && is(a, "bybox") && remaining > 3 && !by_radius {
            q.shape = Some(shaped(box_extent(&args[i + 1..i + 4])?));
            by_box = true;
            i += 3;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        let what = if form == (Form::Search { store: true }) {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(Reply::error(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = || String::from_utf8_lossy(&args[0]).into_owned();
    if search && !(from_member || from_lonlat) {
        return Err(Reply::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        )));
    }
    if search && !(by_radius || by_box) {
        return Err(Reply::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        )));
    }
    if q.any && q.count == 0 {
        return Err(Reply::error("ERR the ANY argument requires COUNT argument"));
    }
    Ok(q)
}

struct Point {
    member: Bytes,
    score: f64,
    dist: f64,
    xy: [f64; 2],
}

/// The points within `shape` around `center`, scanning the 9 cells in Redis's order and
/// stopping at `limit` points when it is not 0 (ANY).
fn points_within(z: &ZSet, center: [f64; 2], shape: Shape, limit: usize) -> Vec<Point> {
    let cells = geohash::search_cells(center, shape);
    let mut out = Vec::new();
    let mut last = 0;
    for (i, cell) in cells.iter().enumerate() {
        if geohash::is_excluded(cell) {
            continue;
        }
        // Huge radii can make neighbours repeat; Redis skips a repeat of the last cell
        // scanned (but never compares with the centre cell).
        if last != 0 && *cell == cells[last] {
            continue;
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*cell);
        let start = z.count_before(|s, _| s < min);
        for (member, score) in z.iter_from(start, false) {
            if score >= max {
                break;
            }
            if let Some(xy) = geohash::decode_score(score) {
                if let Some(dist) =
                    geohash::distance_within(shape, center[0], center[1], xy[0], xy[1])
                {
                    out.push(Point {
                        member: member.clone(),
                        score,
                        dist,
                        xy,
                    });
                }
            }
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
        last = i;
    }
    out
}

/// GEOSEARCH / GEOSEARCHSTORE / GEORADIUS / GEORADIUSBYMEMBER and their _RO forms.
pub fn search(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let form = Form::of(&args[0]);
    let key = &args[if form == (Form::Search { store: true }) {
        2
    } else {
        1
    }];
    let z = match ctx.read_as::<ZSet>(key) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let q = match parse(args, form, z) {
        Ok(q) => q,
        Err(e) => return e,
    };
    let (Some(z), Some(center), Some(shape)) = (z, q.center, q.shape) else {
        // No source key.
        return match &q.store {
            Some(dst) => {
                ctx.remove_key(dst);
                Reply::Int(0)
            }
            None => Reply::Array(Vec::new()),
        };
    };
    let mut points = points_within(z, center, shape, if q.any { q.count } else { 0 });
    let sort = if q.count != 0 && q.sort == Sort::None && !q.any {
        Sort::Asc
    } else {
        q.sort
    };
    match sort {
        Sort::None => {}
        Sort::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    if q.count != 0 {
        points.truncate(q.count);
    }
    for p in &mut points {
        p.dist /= shape.conversion;
    }
    let event = match form {
        Form::Search { .. } => "geosearchstore",
        _ => "georadiusstore",
    };
    match q.store {
        Some(dst) => store(ctx, &dst, points, q.store_dist, event),
        None => reply(points, &q),
    }
}

fn reply(points: Vec<Point>, q: &Query) -> Reply {
    let with_any = q.with_dist || q.with_hash || q.with_coord;
    Reply::Array(
        points
            .into_iter()
            .map(|p| {
                if !with_any {
                    return Reply::Bulk(p.member);
                }
                let mut item = vec![Reply::Bulk(p.member)];
                if q.with_dist {
                    item.push(distance_reply(p.dist));
                }
                if q.with_hash {
                    item.push(Reply::Int(p.score as i64));
                }
                if q.with_coord {
                    item.push(Reply::Array(vec![coordinate(p.xy[0]), coordinate(p.xy[1])]));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

fn store(
    ctx: &mut Ctx,
    dst: &[u8],
    points: Vec<Point>,
    by_dist: bool,
    event: &'static str,
) -> Reply {
    let n = points.len();
    if n == 0 {
        ctx.remove_key(dst);
        return Reply::Int(0);
    }
    let mut entries: Vec<(Bytes, f64)> = points
        .into_iter()
        .map(|p| (p.member, if by_dist { p.dist } else { p.score }))
        .collect();
    entries.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
    let z = ZSet::from_sorted(entries, &ctx.limits());
    ctx.write(dst, Value::ZSet(Box::new(z)), Some(0));
    ctx.notify(NotifyFlags::ZSET, event, dst);
    Reply::Int(n as i64)
}
