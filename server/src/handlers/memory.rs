//! MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::{is, parse_i64};
use corekv_shard::{errors, slot};

use crate::memory::{allocator_name, figures, Figures};
use crate::ops::{on_all_shards, on_shard, OpResult, ShardOp, ShardReport};
use crate::session::Session;

pub async fn memory(s: &mut Session, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "usage") {
        usage(s, args).await
    } else if is(sub, "stats") {
        stats(s).await
    } else if is(sub, "doctor") {
        Reply::Verbatim(doctor(s, &figures()))
    } else if is(sub, "malloc-stats") {
        let mut text = Vec::new();
        match tikv_jemalloc_ctl::stats_print::stats_print(&mut text, Default::default()) {
            Ok(()) => Reply::Verbatim(String::from_utf8_lossy(&text).into_owned()),
            Err(e) => Reply::error(format!("ERR {e}")),
        }
    } else if is(sub, "purge") {
        // MALLCTL_ARENAS_ALL (4096): give every arena's unused dirty pages back to the OS.
        // SAFETY: "arena.<i>.purge" takes no value; the name is NUL-terminated.
        let _ = unsafe { tikv_jemalloc_ctl::raw::write(b"arena.4096.purge\0", ()) };
        Reply::Ok
    } else {
        corekv_shard::command::help_reply(
            "MEMORY",
            &[
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
            ],
        )
    }
}

/// MEMORY USAGE key [SAMPLES count]
async fn usage(s: &mut Session, args: &[Bytes]) -> Reply {
    // Like Redis: any number of SAMPLES options; a negative count is a syntax error.
    let mut rest = args[3..].chunks(2);
    for option in rest.by_ref() {
        match option {
            [name, count] if is(name, "samples") => match parse_i64(count) {
                Some(n) if n >= 0 => {}
                Some(_) => return errors::syntax(),
                None => return errors::not_integer(),
            },
            _ => return errors::syntax(),
        }
    }
    let key = args[2].clone();
    let shard = slot::key_shard(&key, s.shards());
    match on_shard(&s.local, shard, ShardOp::MemoryUsage { db: s.db, key }).await {
        OpResult::Int(n) if n >= 0 => Reply::Int(n),
        _ => Reply::Nil,
    }
}

async fn stats(s: &mut Session) -> Reply {
    let f = figures();
    let reports: Vec<ShardReport> = on_all_shards(&s.local, || ShardOp::Report)
        .await
        .into_iter()
        .filter_map(|r| match r {
            OpResult::Report(r) => Some(*r),
            _ => None,
        })
        .collect();
    let keys: usize = reports
        .iter()
        .flat_map(|r| r.keyspace.iter().map(|k| k.0))
        .sum();
    let peak = s
        .local
        .shared
        .peak_memory
        .load(std::sync::atomic::Ordering::Relaxed);
    let peak = peak.max(f.allocated);
    let rss = super::admin::resident_memory();
    let int = |n: u64| Reply::Int(n as i64);
    let out = vec![
        ("peak.allocated", int(peak)),
        ("total.allocated", int(f.allocated)),
        ("keys.count", int(keys as u64)),
        (
            "keys.bytes-per-key",
            int(f.allocated.checked_div(keys as u64).unwrap_or(0)),
        ),
        ("peak.percentage", Reply::Double(percent(f.allocated, peak))),
        ("allocator.allocated", int(f.allocated)),
        ("allocator.active", int(f.active)),
        ("allocator.resident", int(f.resident)),
        ("allocator.metadata", int(f.metadata)),
        (
            "allocator-fragmentation.ratio",
            Reply::Double(f.active as f64 / f.allocated.max(1) as f64),
        ),
        (
            "allocator-fragmentation.bytes",
            int(f.active.saturating_sub(f.allocated)),
        ),
        (
            "fragmentation",
            Reply::Double(rss as f64 / f.allocated.max(1) as f64),
        ),
        ("fragmentation.bytes", int(rss.saturating_sub(f.allocated))),
    ];
    let maxmemory = s.local.shared.memory.limit();
    let mut out: Vec<(Reply, Reply)> = out.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect();
    out.push((Reply::bulk("maxmemory"), int(maxmemory)));
    // Replies come back in shard order (this shard first, then the others in order).
    let me = s.local.mesh.me();
    let order = std::iter::once(me).chain((0..reports.len()).filter(|&i| i != me));
    for (shard, report) in order.zip(&reports) {
        let keys: usize = report.keyspace.iter().map(|k| k.0).sum();
        out.push((Reply::bulk(format!("shard.{shard}.keys")), int(keys as u64)));
    }
    Reply::Map(out)
}

fn percent(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// Redis's MEMORY DOCTOR report, from the same checks on corekv's figures.
fn doctor(s: &Session, f: &Figures) -> String {
    if f.allocated < 5 << 20 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.".into();
    }
    let peak = s
        .local
        .shared
        .peak_memory
        .load(std::sync::atomic::Ordering::Relaxed);
    let rss = super::admin::resident_memory();
    let mut issues = String::new();
    if peak as f64 > f.allocated as f64 * 1.5 {
        issues.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if rss as f64 > f.allocated as f64 * 1.4 && rss > 10 << 20 {
        issues.push_str(&format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{}\".\n\n", allocator_name()));
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.".into();
    }
    format!("Sam, I detected a few issues in this Redis instance memory implants:\n\n{issues}I'm here to keep you safe, Sam. I want to help you.\n")
}
