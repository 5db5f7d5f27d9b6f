//! Cost of keyspace notifications on a shard's SET/GET path, in process (no network):
//! `cargo run --release -p corekv-shard --example notify_cost -- [FLAGS]`, FLAGS as
//! `notify-keyspace-events` (empty: off). Prints ns per command for 5 rounds of 4M SETs and
//! 4M GETs over 10k keys; events are cleared after each command as the publisher would.

use bytes::Bytes;
use corekv_shard::notify::NotifyFlags;
use corekv_shard::{command, lookup, Shard};
use std::time::Instant;

fn main() {
    let flags = std::env::args().nth(1).unwrap_or_default();
    let mut shard = Shard::new(0, 16);
    shard.notify = NotifyFlags::parse(&flags).expect("flags as notify-keyspace-events");
    let keys: Vec<Bytes> = (0..10_000)
        .map(|i| Bytes::from(format!("key:{i}")))
        .collect();
    let set = lookup(b"set").expect("set");
    let get = lookup(b"get").expect("get");
    let val = Bytes::from_static(b"valuevaluevalue");
    let sname = Bytes::from_static(b"SET");
    let gname = Bytes::from_static(b"GET");
    let n = 4_000_000;
    for round in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            let k = &keys[i % keys.len()];
            let args = [sname.clone(), k.clone(), val.clone()];
            std::hint::black_box(command::execute(&mut shard.ctx_at(0, 1), set, &args));
            shard.events.clear();
        }
        let s = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        for i in 0..n {
            let k = &keys[(i * 7) % keys.len()];
            let args = [gname.clone(), k.clone()];
            std::hint::black_box(command::execute(&mut shard.ctx_at(0, 1), get, &args));
            shard.events.clear();
        }
        let g = t.elapsed().as_nanos() as f64 / n as f64;
        println!("round {round}: SET {s:.1} ns/op  GET {g:.1} ns/op");
    }
}
