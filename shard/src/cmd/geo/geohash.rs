//! Redis's geohash math (geohash.c, geohash_helper.c), ported operation for operation so
//! scores, decoded coordinates and distances come out bit for bit as Redis computes them.
//! Scores are 52-bit interleaved hashes: latitude bits at even positions, longitude at odd.

use std::f64::consts::PI;

pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = PI / 180.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

pub const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A hash of `step` bits per coordinate; step 0 marks an excluded neighbour (Redis's GZERO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The hash scaled to 52 bits: the zset score of its south-west corner.
    pub fn align52(&self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Area {
    pub longitude: (f64, f64),
    pub latitude: (f64, f64),
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let spread = |v: u32| {
        let mut v = u64::from(v);
        for i in (0..5).rev() {
            v = (v | (v << S[i])) & B[i];
        }
        v
    };
    spread(xlo) | (spread(ylo) << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let squash = |mut v: u64| {
        for i in 0..6 {
            v = (v | (v >> S[i])) & B[i];
        }
        v
    };
    squash(interleaved) | (squash(interleaved >> 1) << 32)
}

/// geohashEncode: `None` outside the WGS84 limits or the given ranges.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Bits> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    // C converts the offsets to uint32_t by truncation.
    Some(Bits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

/// geohashDecode: the cell a hash names.
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let step = hash.step;
    let separated = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = separated as u32;
    let ilono = (separated >> 32) as u32;
    let cells = (1u64 << step) as f64;
    Some(Area {
        latitude: (
            lat_range.min + (f64::from(ilato) * 1.0 / cells) * lat_scale,
            lat_range.min + ((f64::from(ilato) + 1.0) * 1.0 / cells) * lat_scale,
        ),
        longitude: (
            long_range.min + (f64::from(ilono) * 1.0 / cells) * long_scale,
            long_range.min + ((f64::from(ilono) + 1.0) * 1.0 / cells) * long_scale,
        ),
    })
}

/// The centre of a cell, clamped to the WGS84 limits: [longitude, latitude].
fn area_center(area: &Area) -> [f64; 2] {
    let x = ((area.longitude.0 + area.longitude.1) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let y = ((area.latitude.0 + area.latitude.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [x, y]
}

/// The coordinates a zset score stands for (Redis's `decodeGeohash`).
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    let hash = Bits {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    decode(WGS84_LONG, WGS84_LAT, hash).map(|a| area_center(&a))
}

/// C's `(uint64_t)` conversion of a double as gcc compiles it for x86-64 (scores set by ZADD
/// can be anything): truncation through a signed conversion whose out-of-range result is
/// i64::MIN, with values from 2^63 up shifted down first.
fn c_double_to_u64(v: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let signed = |x: f64| {
        if (-TWO_63..TWO_63).contains(&x) {
            x as i64
        } else {
            i64::MIN
        }
    };
    if v < TWO_63 {
        signed(v) as u64
    } else {
        signed(v - TWO_63) as u64 ^ (1 << 63)
    }
}

/// The score GEOADD stores for a position (`None` outside the WGS84 limits).
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(|h| h.align52())
}

/// The standard 11-character base-32 geohash (latitude range ±90) of a score's position.
pub fn standard_hash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [x, y] = decode_score(score)?;
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(WGS84_LONG, standard_lat, x, y, STEP_MAX).map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    Some(out)
}

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine distance in meters (geohashGetDistance).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the cheaper latitude-only formula, as Redis does.
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// What a search covers, sizes in the request's unit.
#[derive(Debug, Clone, Copy)]
pub enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search area: its extent and the unit's size in meters (kept apart, as Redis multiplies
/// them at each use).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub extent: Extent,
    pub conversion: f64,
}

/// The distance in meters from the centre `(x1, y1)` to `(x2, y2)` if the point is within
/// `shape`.
pub fn distance_within(shape: Shape, x1: f64, y1: f64, x2: f64, y2: f64) -> Option<f64> {
    match shape.extent {
        Extent::Radius(r) => {
            let d = distance(x1, y1, x2, y2);
            (d <= r * shape.conversion).then_some(d)
        }
        Extent::Box { width, height } => {
            let (width, height) = (width * shape.conversion, height * shape.conversion);
            if lat_distance(y2, y1) > height / 2.0 {
                return None;
            }
            if distance(x2, y2, x1, y2) > width / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// [min_lon, min_lat, max_lon, max_lat] around the centre (geohashBoundingBox).
fn bounding_box(center: [f64; 2], shape: Shape) -> [f64; 4] {
    let [longitude, latitude] = center;
    let c = shape.conversion;
    let (height, width) = match shape.extent {
        Extent::Radius(r) => (c * r, c * r),
        Extent::Box { width, height } => (c * (height / 2.0), c * (width / 2.0)),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let long_delta = if latitude < 0.0 {
        long_delta_bottom
    } else {
        long_delta_top
    };
    [
        longitude - long_delta,
        latitude - lat_delta,
        longitude + long_delta,
        latitude + lat_delta,
    ]
}

/// Bits of the interleaved hash that hold the longitude (x) and the latitude (y).
const X_BITS: u64 = 0xaaaaaaaaaaaaaaaa;
const Y_BITS: u64 = 0x5555555555555555;

/// Moves `hash` one cell along the axis whose interleaved bits are `axis` ([`X_BITS`] or
/// [`Y_BITS`]), forwards for a positive `d`, backwards for a negative one, as Redis's
/// `geohash_move_x` / `geohash_move_y` do.
fn move_along(hash: &mut Bits, d: i8, axis: u64) {
    // A step-0 hash has no cells to move across (and would shift by 64).
    if d == 0 || hash.step == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let other = !axis;
    let mut moving = hash.bits & axis;
    let kept = hash.bits & other;
    let zz = other >> shift;
    if d > 0 {
        moving = moving.wrapping_add(zz + 1);
    } else {
        moving |= zz;
        moving = moving.wrapping_sub(zz + 1);
    }
    moving &= axis >> shift;
    hash.bits = moving | kept;
}

fn neighbour(hash: Bits, dx: i8, dy: i8) -> Bits {
    let mut n = hash;
    move_along(&mut n, dx, X_BITS);
    move_along(&mut n, dy, Y_BITS);
    n
}

/// The cells to scan for a search, in Redis's order: the centre's cell, then N, S, E, W, NE,
/// NW, SE, SW (excluded neighbours are zero).
pub fn search_cells(center: [f64; 2], shape: Shape) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(center, shape);
    let [longitude, latitude] = center;
    let radius = match shape.extent {
        Extent::Radius(r) => r,
        Extent::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius, latitude);
    let cells = |steps| {
        let hash = encode_wgs84(longitude, latitude, steps).unwrap_or_default();
        let area = decode(WGS84_LONG, WGS84_LAT, hash).unwrap_or_default();
        (hash, area)
    };
    let (mut hash, mut area) = cells(steps);
    let area_of =
        |dx, dy| decode(WGS84_LONG, WGS84_LAT, neighbour(hash, dx, dy)).unwrap_or_default();
    // Near a cell's edge the estimated step may be too fine for the neighbours to cover
    // the whole search area: use one step coarser.
    let too_small = area_of(0, 1).latitude.1 < max_lat
        || area_of(0, -1).latitude.0 > min_lat
        || area_of(1, 0).longitude.1 < max_lon
        || area_of(-1, 0).longitude.0 > min_lon;
    if steps > 1 && too_small {
        steps -= 1;
        (hash, area) = cells(steps);
    }
    let mut n = [
        hash,
        neighbour(hash, 0, 1),
        neighbour(hash, 0, -1),
        neighbour(hash, 1, 0),
        neighbour(hash, -1, 0),
        neighbour(hash, 1, 1),
        neighbour(hash, -1, 1),
        neighbour(hash, 1, -1),
        neighbour(hash, -1, -1),
    ];
    const NORTH: usize = 1;
    const SOUTH: usize = 2;
    const EAST: usize = 3;
    const WEST: usize = 4;
    const NORTH_EAST: usize = 5;
    const NORTH_WEST: usize = 6;
    const SOUTH_EAST: usize = 7;
    const SOUTH_WEST: usize = 8;
    if steps >= 2 {
        let mut exclude = |cells: [usize; 3]| cells.iter().for_each(|&i| n[i] = Bits::default());
        if area.latitude.0 < min_lat {
            exclude([SOUTH, SOUTH_WEST, SOUTH_EAST]);
        }
        if area.latitude.1 > max_lat {
            exclude([NORTH, NORTH_EAST, NORTH_WEST]);
        }
        if area.longitude.0 < min_lon {
            exclude([WEST, SOUTH_WEST, NORTH_WEST]);
        }
        if area.longitude.1 > max_lon {
            exclude([EAST, SOUTH_EAST, NORTH_EAST]);
        }
    }
    n
}

/// The score range [min, max) of a cell's points.
pub fn score_range(cell: Bits) -> (f64, f64) {
    let min = cell.align52();
    let next = Bits {
        bits: cell.bits + 1,
        step: cell.step,
    };
    (min as f64, next.align52() as f64)
}

pub fn is_excluded(cell: &Bits) -> bool {
    cell.is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ffffff, 0x1234567),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(x, y));
            assert_eq!((d as u32, (d >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn palermo_like_redis() {
        let score = score_of(13.361389, 38.115556).unwrap();
        assert_eq!(score, 3479099956230698);
        let [x, y] = decode_score(score as f64).unwrap();
        assert_eq!(format!("{x:.17}"), "13.36138933897018433");
        assert_eq!(format!("{y:.17}"), "38.11555639549629859");
        assert_eq!(&standard_hash(score as f64).unwrap(), b"sqc8b49rny0");
        assert!(score_of(200.0, 10.0).is_none());
        assert!(score_of(10.0, 86.0).is_none());
    }
}
