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

/// Runs a script on redis-server; what its subscriber received during each command line.
fn redis_events(server: &Server, lines: &[(usize, Line)]) -> Vec<Vec<Published>> {
    let mut con = server.client();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEAmn")
        .query::<()>(&mut con)
        .expect("config set");
    redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query::<()>(&mut con)
        .expect("debug set-active-expire");
    let mut sub_con = server.client();
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__key*__:*").expect("psubscribe");
    sub.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    // A marker published after each command: everything received before it belongs to it.
    let marker = b"__keyevent@99__:end-of-command".to_vec();
    let mut all = Vec::new();
    for (_, line) in lines {
        match line {
            Line::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            Line::Flags(f) => redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(f)
                .query::<()>(&mut con)
                .expect("config set"),
            Line::Command(args) => {
                let mut cmd = redis::cmd(&String::from_utf8_lossy(&args[0]));
                for a in &args[1..] {
                    cmd.arg(&a[..]);
                }
                // Errors are part of the script (wrong types, bad arguments).
                let _ = cmd.query::<redis::Value>(&mut con);
                redis::cmd("PUBLISH")
                    .arg(&marker[..])
                    .arg("x")
                    .query::<()>(&mut con)
                    .expect("publish marker");
                let mut events = Vec::new();
                loop {
                    let msg = sub.get_message().expect("subscriber message");
                    let channel: Vec<u8> = msg.get_channel().expect("channel");
                    if channel == marker {
                        break;
                    }
                    events.push((channel, msg.get_payload::<Vec<u8>>().expect("payload")));
                }
                all.push(events);
            }
        }
    }
    all
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

#[test]
fn events_match_redis() {
    if !support::redis_or_skip("events_match_redis") {
        return;
    }
    let server = Server::redis_with(&["--enable-debug-command", "yes"]);
    let only = std::env::var("NOTIFY_ONLY").ok();
    let mut failures = String::new();
    let mut compared = 0;
    for path in scripts() {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read script");
        let lines = parse(&text);
        redis::cmd("FLUSHALL")
            .query::<()>(&mut server.client())
            .expect("flushall");
        let expected = redis_events(&server, &lines);
        let got = corekv_events(&lines);
        let commands = lines.iter().filter_map(|(n, l)| match l {
            Line::Command(args) => Some((n, args)),
            _ => None,
        });
        let published: usize = expected.iter().map(Vec::len).sum();
        eprintln!(
            "{name}.redis: {} commands, {published} notifications from redis-server",
            expected.len()
        );
        for ((n, args), (want, have)) in commands.zip(expected.iter().zip(&got)) {
            compared += 1;
            if want != have {
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
    }
    assert!(compared > 0, "no script ran");
    assert!(failures.is_empty(), "events differ:\n{failures}");
}
