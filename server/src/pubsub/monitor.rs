//! MONITOR: every command a client runs, on any core, as Redis's line
//! `<unix>.<micros> [<db> <addr>] "cmd" "arg"...`, streamed to every MONITOR client.

use std::fmt::Write;

use bytes::Bytes;
use corekv_shard::CommandSpec;

use super::Kind;
use crate::session::Session;

/// Sends the command to the monitors (the caller checked `PubSub::monitoring`). Like Redis,
/// administrative commands are not shown.
pub fn feed(s: &Session, spec: &CommandSpec, args: &[Bytes]) {
    if spec.has_flag("admin") || spec.has_flag("skip_monitor") {
        return;
    }
    let line = line(s, args);
    s.local
        .pubsub
        .publish(Kind::Monitor, &Bytes::new(), &Bytes::from(line));
}

fn line(s: &Session, args: &[Bytes]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let info = s.info.borrow();
    let mut out = format!(
        "{}.{:06} [{} {}]",
        now.as_secs(),
        now.subsec_micros(),
        s.db,
        info.addr
    );
    for a in args {
        out.push(' ');
        quote(&mut out, a);
    }
    out
}

/// Redis's `sdscatrepr`: double quotes, backslash escapes, `\xHH` for other bytes.
fn quote(out: &mut String, arg: &[u8]) {
    out.push('"');
    for &c in arg {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_like_sdscatrepr() {
        let mut out = String::new();
        super::quote(&mut out, b"a \"b\"\\\n\x01\xff");
        assert_eq!(out, r#""a \"b\"\\\n\x01\xff""#);
    }
}
