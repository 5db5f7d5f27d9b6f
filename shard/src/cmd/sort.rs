//! SORT and SORT_RO (Redis's sort.c): sort a list, set or sorted set by its elements or by
//! other keys (`BY weight_*`, `BY h_*->field`), fetch other keys per element (`GET`), and
//! optionally store the result as a list.
//!
//! The handler reads pattern keys from the shard it runs on; when the server has several
//! shards and the command uses patterns, the server copies those keys in first (see
//! [`pattern_keys`]), as for any command whose keys span shards.

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::{is, parse_i64};
use crate::command::{spec, CommandSpec, Route, ONE_KEY};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::list::{End, NodeLimit};
use crate::types::{Hash, List, Set, ZSet};
use crate::value::Value;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sort", -2, &["write", "denyoom", "movablekeys"], ONE_KEY, "generic", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", Route::Shard(sort)).with_key_finder(sort_keys),
    spec("sort_ro", -2, &["readonly", "movablekeys"], ONE_KEY, "generic", "Returns the sorted elements of a list, a set, or a sorted set.", Route::Shard(sort)).with_key_finder(sort_keys),
];

/// The sorted key and the STORE destination.
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut i = 2;
    while i < args.len() {
        let skip = option_arity(&args[i]);
        if is(&args[i], "store") && i + 1 < args.len() {
            keys.push(i + 1);
        }
        i += 1 + skip;
    }
    keys
}

/// How many arguments follow an option.
fn option_arity(option: &Bytes) -> usize {
    if is(option, "limit") {
        2
    } else if is(option, "by") || is(option, "get") || is(option, "store") {
        1
    } else {
        0
    }
}

struct Options<'a> {
    by: Option<&'a Bytes>,
    gets: Vec<&'a Bytes>,
    limit: Option<(i64, i64)>,
    desc: bool,
    alpha: bool,
    store: Option<&'a Bytes>,
}

fn parse(args: &[Bytes]) -> Result<Options<'_>, Reply> {
    let read_only = is(&args[0], "sort_ro");
    let mut o = Options {
        by: None,
        gets: Vec::new(),
        limit: None,
        desc: false,
        alpha: false,
        store: None,
    };
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        let left = args.len() - i - 1;
        if is(arg, "asc") {
            o.desc = false;
        } else if is(arg, "desc") {
            o.desc = true;
        } else if is(arg, "alpha") {
            o.alpha = true;
        } else if is(arg, "limit") && left >= 2 {
            let start = parse_i64(&args[i + 1]).ok_or_else(errors::not_integer)?;
            let count = parse_i64(&args[i + 2]).ok_or_else(errors::not_integer)?;
            o.limit = Some((start, count));
            i += 2;
        } else if is(arg, "store") && left >= 1 && !read_only {
            o.store = Some(&args[i + 1]);
            i += 1;
        } else if is(arg, "by") && left >= 1 {
            o.by = Some(&args[i + 1]);
            i += 1;
        } else if is(arg, "get") && left >= 1 {
            o.gets.push(&args[i + 1]);
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    Ok(o)
}

/// Whether a pattern names other keys (rather than `#`, the element itself).
fn is_key_pattern(pattern: &[u8]) -> bool {
    pattern.contains(&b'*')
}

/// Whether this SORT reads keys other than the sorted one (so they may live elsewhere).
pub fn uses_patterns(args: &[Bytes]) -> bool {
    parse(args).is_ok_and(|o| {
        o.by.is_some_and(|p| is_key_pattern(p)) || o.gets.iter().any(|p| is_key_pattern(p))
    })
}

/// A pattern applied to an element: the key to read and, for `key->field`, the hash field.
fn substitute(pattern: &[u8], element: &[u8]) -> Option<(Bytes, Option<Bytes>)> {
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| p + star + 1)
        .filter(|&p| p + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let field = arrow.map(|a| Bytes::copy_from_slice(&pattern[a + 2..]));
    Some((Bytes::from(key), field))
}

/// The keys that the BY and GET patterns read for the elements of `value` (for the server to
/// fetch them before running SORT on a scratch shard).
pub fn pattern_keys(value: &Value, args: &[Bytes]) -> Vec<Bytes> {
    let Ok(o) = parse(args) else {
        return Vec::new();
    };
    let patterns: Vec<&Bytes> = o.by.into_iter().chain(o.gets).collect();
    let mut keys = Vec::new();
    for element in elements(value, false).unwrap_or_default() {
        for pattern in &patterns {
            if let Some((key, _)) = substitute(pattern, &element) {
                keys.push(key);
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// What a pattern finds for an element: the element itself (`#`), a string key's value, a
/// hash field, or nothing.
fn lookup(ctx: &mut Ctx, pattern: &[u8], element: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(element.clone());
    }
    let (key, field) = substitute(pattern, element)?;
    let entry = ctx.read(&key)?;
    match field {
        Some(field) => entry.of::<Hash>()?.get(&field).map(Bytes::copy_from_slice),
        None => entry.value().as_bytes(),
    }
}

/// The elements of a sortable value, in its natural order (`reverse` for a sorted set read
/// backwards); `None` for other types.
fn elements(value: &Value, reverse: bool) -> Option<Vec<Bytes>> {
    Some(match value {
        Value::List(l) => List::iter(l).map(Bytes::copy_from_slice).collect(),
        Value::Set(s) => Set::iter(s).map(|m| m.to_bytes()).collect(),
        Value::ZSet(z) if reverse => ZSet::iter_from(z, z.len().saturating_sub(1), true)
            .map(|(m, _)| m.clone())
            .collect(),
        Value::ZSet(z) => ZSet::iter_from(z, 0, false)
            .map(|(m, _)| m.clone())
            .collect(),
        _ => return None,
    })
}

/// Redis reads BY values with strtod: leading spaces allowed, an empty string is 0, NaN and
/// trailing garbage are errors.
fn sort_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?.trim_start();
    if text.is_empty() {
        return Some(0.0);
    }
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

struct Item {
    element: Bytes,
    score: f64,
    by: Option<Bytes>,
}

pub fn sort(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    // BY without `*` (e.g. BY nosort) means: keep the natural order.
    let mut dont_sort = o.by.is_some_and(|p| !is_key_pattern(p));
    let mut alpha = o.alpha;
    let mut by = o.by.filter(|_| !dont_sort);
    let loaded = match ctx.read(&args[1]) {
        None => Some(Vec::new()),
        Some(entry) => {
            let value = entry.value();
            let is_set = matches!(value.as_value(), Some(Value::Set(_)));
            if dont_sort && is_set && o.store.is_some() {
                // A stored result must not depend on hash table order: Redis sorts it.
                dont_sort = false;
                alpha = true;
                by = None;
            }
            let reverse = dont_sort && o.desc && matches!(value.as_value(), Some(Value::ZSet(_)));
            value.as_value().and_then(|v| elements(v, reverse))
        }
    };
    let Some(elements) = loaded else {
        return errors::wrong_type();
    };

    let mut items: Vec<Item> = Vec::with_capacity(elements.len());
    for element in elements {
        let mut item = Item {
            element,
            score: 0.0,
            by: None,
        };
        if !dont_sort {
            let value = match by {
                Some(pattern) => lookup(ctx, pattern, &item.element),
                None => Some(item.element.clone()),
            };
            if let Some(value) = value {
                if alpha {
                    item.by = by.is_some().then_some(value);
                } else {
                    match sort_score(&value) {
                        Some(score) => item.score = score,
                        None => {
                            return Reply::error(
                                "ERR One or more scores can't be converted into double",
                            )
                        }
                    }
                }
            }
        }
        items.push(item);
    }
    if !dont_sort {
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let ord = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                // A missing BY value sorts first.
                a.by.cmp(&b.by)
            } else {
                a.element.cmp(&b.element)
            };
            if o.desc {
                ord.reverse()
            } else {
                ord
            }
        });
    }

    let range = limit_range(o.limit, items.len());
    let selected = &items[range];
    let mut out: Vec<Option<Bytes>> = Vec::with_capacity(selected.len() * o.gets.len().max(1));
    for item in selected {
        if o.gets.is_empty() {
            out.push(Some(item.element.clone()));
        }
        for pattern in &o.gets {
            out.push(lookup(ctx, pattern, &item.element));
        }
    }

    let Some(dest) = o.store else {
        return Reply::Array(
            out.into_iter()
                .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
                .collect(),
        );
    };
    let stored = out.len() as i64;
    if out.is_empty() {
        ctx.remove_key(dest);
    } else {
        let limit = NodeLimit::from_setting(ctx.limits().list_max_listpack_size);
        let mut list = List::default();
        for value in out {
            list.push(End::Tail, value.as_deref().unwrap_or_default(), limit);
        }
        ctx.write(dest, Value::List(Box::new(list)), Some(0));
        ctx.notify(NotifyFlags::LIST, "sortstore", dest);
    }
    Reply::Int(stored)
}

/// Redis's LIMIT arithmetic: a negative offset is 0, a negative count is "to the end", and an
/// offset past the end selects nothing.
fn limit_range(limit: Option<(i64, i64)>, len: usize) -> std::ops::Range<usize> {
    let Some((offset, count)) = limit else {
        return 0..len;
    };
    let start = offset.max(0) as u64;
    if start >= len as u64 {
        return len..len;
    }
    let end = if count < 0 {
        len as u64
    } else {
        (start + count as u64).min(len as u64)
    };
    start as usize..end as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Bytes> {
        list.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn patterns_substitute_the_first_star_and_split_the_field() {
        assert_eq!(substitute(b"w_*", b"3"), Some((Bytes::from("w_3"), None)));
        assert_eq!(
            substitute(b"h_*->f", b"a"),
            Some((Bytes::from("h_a"), Some(Bytes::from("f"))))
        );
        // "->" with nothing after it is part of the key name.
        assert_eq!(
            substitute(b"h_*->", b"a"),
            Some((Bytes::from("h_a->"), None))
        );
        assert_eq!(substitute(b"nostar", b"a"), None);
    }

    #[test]
    fn store_destination_is_a_key() {
        assert_eq!(
            sort_keys(&args(&["SORT", "k", "LIMIT", "0", "1", "STORE", "d"])),
            vec![1, 6]
        );
        assert_eq!(sort_keys(&args(&["SORT", "k", "BY", "store"])), vec![1]);
    }

    #[test]
    fn limit_follows_redis() {
        assert_eq!(limit_range(Some((-5, 2)), 10), 0..2);
        assert_eq!(limit_range(Some((8, -1)), 10), 8..10);
        assert_eq!(limit_range(Some((10, 5)), 10), 10..10);
        assert_eq!(limit_range(Some((2, 0)), 10), 2..2);
        assert_eq!(limit_range(None, 3), 0..3);
    }

    #[test]
    fn scores_are_read_like_strtod() {
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"1x"), None);
        assert_eq!(sort_score(b"nan"), None);
    }
}
