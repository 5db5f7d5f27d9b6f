//! Keyspace notifications, compared with Redis 7 without going through pub/sub in corekv: every
//! script in `tests/notify/*.redis` runs against a real redis-server with a PSUBSCRIBE
//! subscriber collecting what it publishes, and against a corekv shard in this process, whose
//! recorded events are turned into the channels and messages Redis would publish. For every
//! command the two lists of (channel, message) must be identical, in order.
//!
//! Script format: one command per line, arguments separated by spaces (`""` is an empty
//! argument); `#` starts a comment line; `@sleep N` sleeps N milliseconds (both sides, so keys
//! with a TTL expire; Redis's active expiry is switched off so expiry is lazy on both sides and
//! its events come at the same command). `@flags F` sets `notify-keyspace-events` to F on both
//! sides from there on (the default is `KEAmn`, every class).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use corekv_shard::notify::{KeyEvent, NotifyFlags};
use corekv_shard::{command, lookup, Shard};
use support::Server;

/// One published notification: (channel, message).
type Published = (Vec<u8>, Vec<u8>);

enum Line {
    Command(Vec<Bytes>),
    Sleep(u64),
    Flags(String),
}

fn parse(script: &str) -> Vec<(usize, Line)> {
    script
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let parsed = if let Some(ms) = line.strip_prefix("@sleep ") {
                Line::Sleep(ms.trim().parse().expect("@sleep takes milliseconds"))
            } else if let Some(flags) = line.strip_prefix("@flags ") {
                Line::Flags(flags.trim().to_string())
            } else {
                Line::Command(
                    line.split_whitespace()
                        .map(|a| match a {
                            "\"\"" => Bytes::new(),
                            a => Bytes::copy_from_slice(a.as_bytes()),
                        })
                        .collect(),
                )
            };
            Some((i + 1, parsed))
        })
        .collect()
}

/// The channels and messages Redis publishes for one event (`notifyKeyspaceEvent`): the
/// keyspace channel first, then the keyevent channel.
fn published(flags: NotifyFlags, e: &KeyEvent) -> Vec<Published> {
    let mut out = Vec::new();
    if flags.contains(NotifyFlags::KEYSPACE) {
        let mut channel = format!("__keyspace@{}__:", e.db).into_bytes();
        channel.extend_from_slice(&e.key);
        out.push((channel, e.event.as_bytes().to_vec()));
    }
    if flags.contains(NotifyFlags::KEYEVENT) {
        let channel = format!("__keyevent@{}__:{}", e.db, e.event).into_bytes();
        out.push((channel, e.key.to_vec()));
    }
    out
}

/// Runs a script on an in-process shard; the events of each command line.
fn corekv_events(lines: &[(usize, Line)]) -> Vec<Vec<Published>> {
    let mut shard = Shard::new(0, 16);
    shard.notify = NotifyFlags::parse("KEAmn").unwrap_or_default();
    let mut all = Vec::new();
    for (_, line) in lines {
        match line {
            Line::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Line::Flags(f) => shard.notify = NotifyFlags::parse(f).expect("bad @flags"),
            Line::Command(args) => {
                let spec = lookup(&args[0]).expect("unknown command in script");
                let arity_ok = if spec.arity > 0 {
                    args.len() == spec.arity as usize
                } else {
                    args.len() >= spec.arity.unsigned_abs() as usize
                };
                assert!(arity_ok, "bad arity in script: {:?}", args[0]);
                command::execute(&mut shard.ctx(0), spec, args);
                let flags = shard.notify;
                let events = shard.take_events();
                all.push(events.iter().flat_map(|e| published(flags, e)).collect());
            }
        }
    }
    all
}

/// A marker published after each command on redis-server: everything received before it
/// belongs to that command.
const MARKER: &[u8] = b"__keyevent@99__:end-of-command";

/// Runs a script on a real server with a PSUBSCRIBE subscriber; what it received during each
/// command line. `expected` None (redis-server): a command's events are those before the
/// marker published after it. `expected` Some (corekv, where events come from the cores that
/// own the keys): as many as redis-server published for that command are awaited before the
/// next command is sent, and a marker at the end must come before anything more.
fn server_events(
    server: &Server,
    lines: &[(usize, Line)],
    expected: Option<&[Vec<Published>]>,
) -> Vec<Vec<Published>> {
    let mut con = server.client();
    set_flags(&mut con, "KEAmn");
    if expected.is_none() {
        redis::cmd("DEBUG")
            .arg("SET-ACTIVE-EXPIRE")
            .arg(0)
            .query::<()>(&mut con)
            .expect("debug set-active-expire");
    }
    let mut sub_con = server.client();
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__key*__:*").expect("psubscribe");
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut next = || -> Option<Published> {
        let msg = sub.get_message().ok()?;
        Some((msg.get_channel().ok()?, msg.get_payload().ok()?))
    };
    let publish_marker = |con: &mut redis::Connection| {
        redis::cmd("PUBLISH")
            .arg(MARKER)
            .arg("x")
            .query::<()>(con)
            .expect("publish marker")
    };
    let mut all = Vec::new();
    for (_, line) in lines {
        match line {
            Line::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Line::Flags(f) => set_flags(&mut con, f),
            Line::Command(args) => {
                let mut cmd = redis::cmd(&String::from_utf8_lossy(&args[0]));
                for a in &args[1..] {
                    cmd.arg(&a[..]);
                }
                // Errors are part of the script (wrong types, bad arguments).
                let _ = cmd.query::<redis::Value>(&mut con);
                let mut events = Vec::new();
                match expected.map(|e| e.get(all.len()).map_or(0, Vec::len)) {
                    None => {
                        publish_marker(&mut con);
                        while let Some(m) = next().filter(|(c, _)| c != MARKER) {
                            events.push(m);
                        }
                    }
                    Some(count) => {
                        while events.len() < count {
                            match next() {
                                Some(m) => events.push(m),
                                None => break,
                            }
                        }
                    }
                }
                all.push(events);
            }
        }
    }
    if expected.is_some() {
        publish_marker(&mut con);
        let extra: Vec<Published> = std::iter::from_fn(&mut next)
            .take_while(|(c, _)| c != MARKER)
            .collect();
        if !extra.is_empty() {
            all.push(extra);
        }
    }
    all
}

fn set_flags(con: &mut redis::Connection, flags: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(flags)
        .query::<()>(con)
        .expect("config set notify-keyspace-events");
}

/// The events of each key in order: what corekv keeps when a command's keys live on several
/// cores (Redis's order across keys is one core's order).
fn per_key(events: &[Published]) -> Vec<(Vec<u8>, Vec<Published>)> {
    let mut keys: Vec<(Vec<u8>, Vec<Published>)> = Vec::new();
    for (channel, message) in events {
        let key = match channel.iter().position(|&b| b == b':') {
            Some(at) if channel.starts_with(b"__keyspace@") => channel[at + 1..].to_vec(),
            _ => message.clone(),
        };
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push((channel.clone(), message.clone())),
            None => keys.push((key, vec![(channel.clone(), message.clone())])),
        }
    }
    keys.sort();
    keys
}

fn show(events: &[Published]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|(c, m)| {
            format!(
                "{} {}",
                String::from_utf8_lossy(c),
                String::from_utf8_lossy(m)
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/notify")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "redis"))
        .collect();
    files.sort();
    files
}

/// Compares every script's events on redis-server with `events_of(script lines, redis's
/// events)`; `same` decides whether one command's events match.
fn compare_scripts(
    skip: &[&str],
    events_of: impl Fn(&[(usize, Line)], &[Vec<Published>]) -> Vec<Vec<Published>>,
    same: impl Fn(&[Published], &[Published]) -> bool,
) {
    let server = Server::redis_with(&["--enable-debug-command", "yes"]);
    let only = std::env::var("NOTIFY_ONLY").ok();
    let mut failures = String::new();
    let mut compared = 0;
    for path in scripts() {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if only.as_ref().is_some_and(|o| *o != name) || skip.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read script");
        let lines = parse(&text);
        redis::cmd("FLUSHALL")
            .query::<()>(&mut server.client())
            .expect("flushall");
        let expected = server_events(&server, &lines, None);
        let got = events_of(&lines, &expected);
        let published: usize = expected.iter().map(Vec::len).sum();
        eprintln!(
            "{name}.redis: {} commands, {published} notifications from redis-server",
            expected.len()
        );
        let commands = lines.iter().filter_map(|(n, l)| match l {
            Line::Command(args) => Some((n, args)),
            _ => None,
        });
        for ((n, args), (want, have)) in commands.zip(expected.iter().zip(&got)) {
            compared += 1;
            if !same(want, have) {
                let cmd: Vec<String> = args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                failures.push_str(&format!(
                    "{name}.redis:{n}: {}\n  redis:  {}\n  corekv: {}\n",
                    cmd.join(" "),
                    show(want),
                    show(have)
                ));
            }
        }
        if let Some(extra) = got.get(expected.len()) {
            failures.push_str(&format!(
                "{name}.redis: corekv published more after the script: {}\n",
                show(extra)
            ));
        }
    }
    assert!(compared > 0, "no script ran");
    assert!(failures.is_empty(), "events differ:\n{failures}");
}

/// Every command's events on an in-process shard, in Redis's exact order.
#[test]
fn events_match_redis() {
    if !support::redis_or_skip("events_match_redis") {
        return;
    }
    compare_scripts(&[], |lines, _| corekv_events(lines), |a, b| a == b);
}

/// The same scripts through a real 2-core corekv and a subscriber: delivery from the cores
/// owning the keys, the cross-core forms (RENAME, COPY, *STORE, LMOVE, SMOVE... across
/// cores) and split commands (MSET, DEL...), whose events keep each key's order. The
/// expiry script is left out: corekv's active expiry cannot be switched off, so when keys
/// expire there is timing, not behaviour (`active_expiry_publishes_expired` covers it).
#[test]
fn corekv_publishes_what_redis_publishes() {
    if !support::redis_or_skip("corekv_publishes_what_redis_publishes") {
        return;
    }
    let corekv = Server::corekv(2, &[]);
    compare_scripts(
        &["expiry"],
        |lines, expected| {
            redis::cmd("FLUSHALL")
                .query::<()>(&mut corekv.client())
                .expect("flushall");
            server_events(&corekv, lines, Some(expected))
        },
        |a, b| per_key(a) == per_key(b),
    );
}

/// A key nobody touches expires in the active cycle of the core that owns it, which publishes
/// `expired`.
#[test]
fn active_expiry_publishes_expired() {
    let corekv = Server::corekv(2, &["--notify-keyspace-events", "Ex"]);
    let mut con = corekv.client();
    let mut sub_con = corekv.client();
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__keyevent@*__:expired")
        .expect("psubscribe");
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let (a, b) = support::keys_on_both_shards();
    for key in [&a, &b] {
        redis::cmd("SET")
            .arg(key)
            .arg("v")
            .arg("PX")
            .arg(30)
            .query::<()>(&mut con)
            .expect("set");
    }
    let mut expired: Vec<(String, String)> = (0..2)
        .map(|_| {
            let msg = sub.get_message().expect("expired event");
            (
                msg.get_channel_name().to_string(),
                msg.get_payload().expect("payload"),
            )
        })
        .collect();
    expired.sort();
    let want = |k: &str| ("__keyevent@0__:expired".to_string(), k.to_string());
    let mut expected = vec![want(&a), want(&b)];
    expected.sort();
    assert_eq!(expired, expected);
}

/// Blocked clients: what the blocking call raises when it blocks (XREAD's two `keymiss`, as
/// Redis; corekv's re-checks while the client waits raise nothing) and the events of the pop
/// a write serves it with, on redis-server and on a 2-core corekv ("bar" and "foo" are on
/// different cores).
#[test]
fn blocked_clients_raise_what_redis_raises() {
    if !support::redis_or_skip("blocked_clients_raise_what_redis_raises") {
        return;
    }
    let flows: &[(&[&str], &[&str])] = &[
        (
            &["XREAD", "BLOCK", "5000", "STREAMS", "bar", "0"],
            &["XADD", "bar", "1-1", "f", "v"],
        ),
        (&["BLPOP", "bar2", "5"], &["RPUSH", "bar2", "a"]),
        (
            &["BLMOVE", "bar3", "foo", "LEFT", "RIGHT", "5"],
            &["LPUSH", "bar3", "a", "b"],
        ),
        (&["BZPOPMIN", "foo2", "5"], &["ZADD", "foo2", "1", "m"]),
        (
            &["BLMPOP", "5", "2", "bar4", "foo3", "RIGHT"],
            &["RPUSH", "foo3", "x"],
        ),
        (&["XREAD", "BLOCK", "300", "STREAMS", "nobar", "0"], &[]),
    ];
    let run = |server: &Server, expected: Option<usize>| {
        published_during(server, expected, |con| {
            for (blocking, write) in flows {
                let mut blocked = server.client();
                let cmd = to_cmd(blocking);
                let waiter =
                    std::thread::spawn(move || cmd.query::<redis::Value>(&mut blocked).is_ok());
                // Long enough for the client to block (and for corekv to re-check its keys).
                std::thread::sleep(Duration::from_millis(200));
                if !write.is_empty() {
                    to_cmd(write).query::<redis::Value>(con).expect("write");
                }
                assert!(waiter.join().unwrap_or(false), "{blocking:?} failed");
            }
        })
    };
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let want = run(&redis, None);
    assert!(!want.is_empty());
    let got = run(&corekv, Some(want.len()));
    assert!(
        per_key(&got) == per_key(&want),
        "redis: {}\ncorekv: {}",
        show(&want),
        show(&got)
    );
}

/// Runs `act` on `server` with every class of event on and a subscriber to all keyspace
/// channels; returns what was published. redis-server: everything before a marker published
/// afterwards. corekv (`expected` messages): that many first, since the cores owning other
/// keys may publish after the reply (a script's parked cores publish once released), then
/// whatever comes before the marker.
fn published_during(
    server: &Server,
    expected: Option<usize>,
    act: impl FnOnce(&mut redis::Connection),
) -> Vec<Published> {
    let mut con = server.client();
    set_flags(&mut con, "KEAmn");
    let mut sub_con = server.client();
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__key*__:*").expect("psubscribe");
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut next = || -> Option<Published> {
        let msg = sub.get_message().ok()?;
        Some((msg.get_channel().ok()?, msg.get_payload().ok()?))
    };
    act(&mut con);
    let mut events: Vec<Published> = std::iter::from_fn(&mut next)
        .take(expected.unwrap_or(0))
        .collect();
    redis::cmd("PUBLISH")
        .arg(MARKER)
        .arg("x")
        .query::<()>(&mut con)
        .expect("publish marker");
    events.extend(std::iter::from_fn(&mut next).take_while(|(c, _)| c != MARKER));
    events
}

fn to_cmd(words: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd
}

/// Commands run by a script (EVAL) raise their events like the same commands sent alone,
/// including one whose keys live on both cores of corekv.
#[test]
fn scripts_raise_what_redis_raises() {
    if !support::redis_or_skip("scripts_raise_what_redis_raises") {
        return;
    }
    let script = "redis.call('SET', KEYS[1], 'v'); redis.call('RENAME', KEYS[1], KEYS[2]); \
                  redis.call('SADD', KEYS[1], 'm'); redis.call('SUNIONSTORE', KEYS[2], KEYS[1]); \
                  redis.call('GET', KEYS[3]); return redis.call('DEL', KEYS[1], KEYS[2])";
    let run = |server: &Server, expected: Option<usize>| {
        published_during(server, expected, |con| {
            let deleted: i64 = to_cmd(&["EVAL", script, "3", "bar", "foo", "nokey"])
                .query(con)
                .expect("eval");
            assert_eq!(deleted, 2);
        })
    };
    let want = run(&Server::redis(), None);
    assert!(!want.is_empty());
    let got = run(&Server::corekv(2, &[]), Some(want.len()));
    assert!(
        per_key(&got) == per_key(&want),
        "redis: {}\ncorekv: {}",
        show(&want),
        show(&got)
    );
}

/// A transaction's commands raise their events like the same commands sent alone, including
/// those whose keys live on both cores of corekv.
#[test]
fn transactions_raise_what_redis_raises() {
    if !support::redis_or_skip("transactions_raise_what_redis_raises") {
        return;
    }
    let run = |server: &Server, expected: Option<usize>| {
        published_during(server, expected, |con| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg("bar")
                .arg("v")
                .cmd("RENAME")
                .arg("bar")
                .arg("foo")
                .cmd("SADD")
                .arg("bar")
                .arg("m")
                .cmd("SUNIONSTORE")
                .arg("foo")
                .arg("bar")
                .cmd("GET")
                .arg("nokey")
                .cmd("DEL")
                .arg("foo")
                .arg("bar")
                .query::<()>(con)
                .expect("exec");
        })
    };
    let want = run(&Server::redis(), None);
    assert!(!want.is_empty());
    let got = run(&Server::corekv(2, &[]), Some(want.len()));
    assert!(
        per_key(&got) == per_key(&want),
        "redis: {}\ncorekv: {}",
        show(&want),
        show(&got)
    );
}
