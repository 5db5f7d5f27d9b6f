//! Differential tests: every line of `tests/differential/*.redis` is sent to corekv (2 cores)
//! and to a real redis-server over raw TCP, and the raw reply bytes must be identical.
//!
//! Script format: one command per line, quoted like redis-cli (`SET "bin\x00key" ""`,
//! `'it\'s'`). Blank lines and lines starting with `#` are ignored.
//! Directives:
//!
//! * Protocols: every script runs twice, first in RESP2, then on new connections in RESP3 (both
//!   connections send `HELLO 3` before the script and discard the replies, since the HELLO maps
//!   legitimately differ; every reply after that is compared as RESP3 bytes). A file whose
//!   first command line is `@resp3` runs only in RESP3; `@resp2` runs only in RESP2.
//! * `@pending "reason"` (file level, before any command): the whole file is run and every
//!   mismatch is printed, but it does not fail the test (for commands still being implemented).
//!   When the file has no mismatch any more, the run says so: remove the marker then.
//! * `@sleep N` sleeps N milliseconds (for expiry).
//! * `@unordered CMD...` compares array/set replies as multisets of elements (KEYS...).
//! * `@ttl-approx CMD...` compares integer replies with a tolerance: ±50 for the millisecond
//!   commands (PTTL, PEXPIRETIME) and ±1 for everything else (TTL, EXPIRETIME...). Integers
//!   nested in arrays are compared the same way.
//! * `@known-divergence "reason" CMD...` sends the command to both servers (so later lines
//!   see the same state wherever the divergence allows) but does not compare: both replies are printed instead. Only
//!   for genuine corekv bugs that have been reported; if the replies match, the run says so.
//!
//! `DIFF_ONLY=hash` runs only `hash.redis`.
//!
//! If redis-server is missing the test prints a skip message and passes, unless `CI` is set or
//! `COREKV_WITH_REDIS=1`, in which case it fails. `REDIS_SERVER` overrides the binary.
//!
//! Each script runs on fresh connections after a FLUSHALL on both servers. All scripts run even
//! when one fails; the test fails at the end with every mismatch, each naming the script, the
//! line number, the command and both replies (escaped).

mod support;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::Server;

// ---------------------------------------------------------------------------------------------
// Script parsing
// ---------------------------------------------------------------------------------------------

/// Splits a line the way redis-cli (sdssplitargs) does: whitespace separated, `"..."` with
/// `\xHH \n \r \t \b \a \\ \"` escapes, `'...'` with only `\'`. A closing quote must be
/// followed by whitespace or the end of the line.
fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= b.len() {
                    return Err("unterminated double quote".into());
                }
                if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
                    if let Ok(v) = u8::from_str_radix(hex, 16) {
                        cur.push(v);
                        i += 4;
                        continue;
                    }
                }
                if b[i] == b'\\' && i + 1 < b.len() {
                    cur.push(match b[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                    i += 2;
                } else if b[i] == b'"' {
                    i += 1;
                    if i < b.len() && !b[i].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    break;
                } else {
                    cur.push(b[i]);
                    i += 1;
                }
            } else if in_sq {
                if i >= b.len() {
                    return Err("unterminated single quote".into());
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                } else if b[i] == b'\'' {
                    i += 1;
                    if i < b.len() && !b[i].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    break;
                } else {
                    cur.push(b[i]);
                    i += 1;
                }
            } else {
                if i >= b.len() || b[i].is_ascii_whitespace() {
                    break;
                }
                match b[i] {
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(cur);
    }
}

#[derive(Debug, Default)]
struct Line {
    /// 1-based line number in the file.
    number: usize,
    text: String,
    args: Vec<Vec<u8>>,
    unordered: bool,
    ttl_approx: bool,
    known_divergence: Option<String>,
    sleep_ms: Option<u64>,
}

#[derive(Debug)]
struct Script {
    name: String,
    resp3: bool,
    resp2_only: bool,
    pending: Option<String>,
    lines: Vec<Line>,
}

fn parse_script(name: &str, text: &str) -> Result<Script, String> {
    let mut script = Script {
        name: name.to_string(),
        resp3: false,
        resp2_only: false,
        pending: None,
        lines: Vec::new(),
    };
    for (idx, raw) in text.lines().enumerate() {
        let number = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |m: String| format!("{name}:{number}: {m}: {trimmed}");
        let mut args = split_args(trimmed).map_err(err)?;
        let mut line = Line {
            number,
            text: trimmed.to_string(),
            ..Line::default()
        };
        // File-level directives.
        match args.first().map(|a| a.as_slice()) {
            Some(b"@resp3") => {
                if !script.lines.is_empty() || args.len() != 1 {
                    return Err(err(
                        "@resp3 must be a line of its own before any command".into()
                    ));
                }
                script.resp3 = true;
                continue;
            }
            Some(b"@resp2") => {
                if !script.lines.is_empty() || args.len() != 1 {
                    return Err(err(
                        "@resp2 must be a line of its own before any command".into()
                    ));
                }
                script.resp2_only = true;
                continue;
            }
            Some(b"@pending") => {
                if !script.lines.is_empty() || args.len() != 2 {
                    return Err(err(
                        "@pending \"reason\" must come before any command".into()
                    ));
                }
                script.pending = Some(String::from_utf8_lossy(&args[1]).into_owned());
                continue;
            }
            Some(b"@sleep") => {
                let ms = args
                    .get(1)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|_| args.len() == 2)
                    .ok_or_else(|| err("@sleep takes one number of milliseconds".into()))?;
                line.sleep_ms = Some(ms);
                script.lines.push(line);
                continue;
            }
            _ => {}
        }
        // Per-line prefixes, in any order.
        loop {
            match args.first().map(|a| a.as_slice()) {
                Some(b"@unordered") => {
                    line.unordered = true;
                    args.remove(0);
                }
                Some(b"@ttl-approx") => {
                    line.ttl_approx = true;
                    args.remove(0);
                }
                Some(b"@known-divergence") => {
                    if args.len() < 3 {
                        return Err(err("@known-divergence \"reason\" COMMAND...".into()));
                    }
                    line.known_divergence = Some(String::from_utf8_lossy(&args[1]).into_owned());
                    args.drain(..2);
                }
                Some(a) if a.starts_with(b"@") => {
                    return Err(err(format!(
                        "unknown directive {}",
                        String::from_utf8_lossy(a)
                    )));
                }
                _ => break,
            }
        }
        if args.is_empty() {
            return Err(err("directive without a command".into()));
        }
        line.args = args;
        script.lines.push(line);
    }
    if script.resp3 && script.resp2_only {
        return Err(format!("{name}: @resp2 and @resp3 exclude each other"));
    }
    Ok(script)
}

// ---------------------------------------------------------------------------------------------
// RESP encoding and reading
// ---------------------------------------------------------------------------------------------

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A parsed RESP2/RESP3 reply. Aggregates keep their elements; scalars keep their payload.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    /// `$-1` (RESP2 null bulk).
    NullBulk,
    /// `*-1` (RESP2 null array).
    NullArray,
    Bulk(Vec<u8>),
    /// `*`, `~` (set), `>` (push), `%` (map, flattened key, value, ...), `|` (attribute):
    /// the type byte and the elements.
    Agg(u8, Vec<Reply>),
    /// `_` RESP3 null.
    Null,
    /// `,` `#` `(` `!` `=`: the type byte and the payload.
    Other(u8, Vec<u8>),
}

/// One reply: its exact bytes on the wire and its parsed form.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    raw: Vec<u8>,
    tree: Resp,
}

struct Conn {
    label: &'static str,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(label: &'static str, server: &Server) -> Result<Conn, String> {
        let s = TcpStream::connect(("127.0.0.1", server.port))
            .map_err(|e| format!("{label}: connect to port {}: {e}", server.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| format!("{label}: set_read_timeout: {e}"))?;
        let _ = s.set_nodelay(true);
        let r = s
            .try_clone()
            .map_err(|e| format!("{label}: clone socket: {e}"))?;
        Ok(Conn {
            label,
            writer: s,
            reader: BufReader::new(r),
        })
    }

    fn send(&mut self, args: &[Vec<u8>]) -> Result<(), String> {
        self.writer
            .write_all(&encode(args))
            .map_err(|e| format!("{}: write: {e}", self.label))
    }

    fn call(&mut self, args: &[Vec<u8>]) -> Result<Reply, String> {
        self.send(args)?;
        self.read_reply()
    }

    fn read_line(&mut self, raw: &mut Vec<u8>) -> Result<Vec<u8>, String> {
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{}: read: {e} (after {:?})", self.label, escape(raw)))?;
        if n == 0 {
            return Err(format!(
                "{}: connection closed (after {:?})",
                self.label,
                escape(raw)
            ));
        }
        raw.extend_from_slice(&line);
        if !line.ends_with(b"\r\n") {
            return Err(format!(
                "{}: reply line not ended by CRLF: {}",
                self.label,
                escape(raw)
            ));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_reply(&mut self) -> Result<Reply, String> {
        let mut raw = Vec::new();
        let tree = self.read_into(&mut raw)?;
        Ok(Reply { raw, tree })
    }

    fn read_exact_into(&mut self, n: usize, raw: &mut Vec<u8>) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n + 2];
        std::io::Read::read_exact(&mut self.reader, &mut buf).map_err(|e| {
            format!(
                "{}: read {n}-byte payload: {e} (after {})",
                self.label,
                escape(raw)
            )
        })?;
        raw.extend_from_slice(&buf);
        if &buf[n..] != b"\r\n" {
            return Err(format!(
                "{}: payload not followed by CRLF: {}",
                self.label,
                escape(raw)
            ));
        }
        buf.truncate(n);
        Ok(buf)
    }

    fn read_into(&mut self, raw: &mut Vec<u8>) -> Result<Resp, String> {
        let start = raw.len();
        let line = self.read_line(raw)?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(format!("{}: empty reply line", self.label));
        };
        let bad = |what: &str, raw: &[u8]| {
            format!("{}: bad {what}: {}", self.label, escape(&raw[start..]))
        };
        let num = |raw: &[u8]| -> Result<i64, String> {
            std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad("length/integer", raw))
        };
        Ok(match kind {
            b'+' => Resp::Simple(rest.to_vec()),
            b'-' => Resp::Error(rest.to_vec()),
            b':' => Resp::Int(num(raw)?),
            b'_' => Resp::Null,
            b',' | b'#' | b'(' => Resp::Other(kind, rest.to_vec()),
            b'$' | b'!' | b'=' => {
                let n = num(raw)?;
                if n < 0 {
                    if kind != b'$' || n != -1 {
                        return Err(bad("bulk length", raw));
                    }
                    Resp::NullBulk
                } else {
                    let payload = self.read_exact_into(n as usize, raw)?;
                    if kind == b'$' {
                        Resp::Bulk(payload)
                    } else {
                        Resp::Other(kind, payload)
                    }
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = num(raw)?;
                if n < 0 {
                    if kind != b'*' || n != -1 {
                        return Err(bad("aggregate length", raw));
                    }
                    Resp::NullArray
                } else {
                    let count = if matches!(kind, b'%' | b'|') {
                        n * 2
                    } else {
                        n
                    };
                    let mut items = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        let s = raw.len();
                        let tree = self.read_into(raw)?;
                        items.push(Reply {
                            raw: raw[s..].to_vec(),
                            tree,
                        });
                    }
                    Resp::Agg(kind, items)
                }
            }
            _ => return Err(bad("reply type", raw)),
        })
    }
}

/// Printable form of reply bytes: printable ASCII as is, everything else `\xHH` (and `\r\n`).
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &c in bytes {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

/// Escaped, truncated for very long replies (the first and last bytes are kept).
fn show(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    if bytes.len() <= MAX {
        format!("\"{}\"", escape(bytes))
    } else {
        format!(
            "\"{}\"...({} bytes)...\"{}\"",
            escape(&bytes[..MAX / 2]),
            bytes.len(),
            escape(&bytes[bytes.len() - MAX / 2..])
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/// Integer replies within `tol`, recursively through aggregates; everything else exact.
fn approx_equal(a: &Reply, b: &Reply, tol: i64) -> bool {
    match (&a.tree, &b.tree) {
        (Resp::Int(x), Resp::Int(y)) => (x - y).abs() <= tol,
        (Resp::Agg(ka, xs), Resp::Agg(kb, ys)) => {
            ka == kb
                && xs.len() == ys.len()
                && xs.iter().zip(ys).all(|(x, y)| approx_equal(x, y, tol))
        }
        _ => a.raw == b.raw,
    }
}

/// Aggregates of the same type and length whose element byte strings are equal as multisets.
fn unordered_equal(a: &Reply, b: &Reply) -> bool {
    match (&a.tree, &b.tree) {
        (Resp::Agg(ka, xs), Resp::Agg(kb, ys)) if ka == kb && xs.len() == ys.len() => {
            if *ka == b'%' {
                // Maps: compare (key, value) pairs as a multiset.
                let pairs = |v: &[Reply]| {
                    let mut p: Vec<Vec<u8>> = v
                        .chunks(2)
                        .map(|c| c.iter().flat_map(|r| r.raw.iter().copied()).collect())
                        .collect();
                    p.sort();
                    p
                };
                return pairs(xs) == pairs(ys);
            }
            let mut x: Vec<&[u8]> = xs.iter().map(|r| r.raw.as_slice()).collect();
            let mut y: Vec<&[u8]> = ys.iter().map(|r| r.raw.as_slice()).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => a.raw == b.raw,
    }
}

fn ttl_tolerance(args: &[Vec<u8>]) -> i64 {
    let name = args
        .first()
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    if name.starts_with(b"p") {
        50 // PTTL, PEXPIRETIME (milliseconds)
    } else {
        1 // TTL, EXPIRETIME (seconds)
    }
}

fn show_args(args: &[Vec<u8>]) -> String {
    args.iter().map(|a| show(a)).collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Outcome {
    /// Mismatches that fail the test.
    failures: Vec<String>,
    /// Mismatches in `@pending` files (printed, not failing).
    pending: Vec<String>,
    /// Lines run and compared.
    compared: usize,
    known: usize,
}

fn flushall(conns: &mut [&mut Conn]) -> Result<(), String> {
    for c in conns.iter_mut() {
        let r = c.call(&[b"FLUSHALL".to_vec()])?;
        if r.raw != b"+OK\r\n" {
            return Err(format!("{}: FLUSHALL replied {}", c.label, show(&r.raw)));
        }
    }
    Ok(())
}

fn run_script(script: &Script, resp3: bool, redis: &Server, corekv: &Server, out: &mut Outcome) {
    let mut mismatches = Vec::new();
    let label = if resp3 {
        format!("{} [RESP3]", script.name)
    } else {
        script.name.clone()
    };
    run_lines(script, &label, resp3, redis, corekv, out, &mut mismatches);
    if let Some(reason) = &script.pending {
        if mismatches.is_empty() {
            println!(
                "PENDING {label} ({reason}): no mismatch any more; remove the @pending marker"
            );
        } else {
            println!(
                "PENDING {label} ({reason}): {} mismatches (not failing the test)",
                mismatches.len()
            );
        }
        out.pending.append(&mut mismatches);
    } else {
        out.failures.append(&mut mismatches);
    }
}

fn run_lines(
    script: &Script,
    label: &str,
    resp3: bool,
    redis: &Server,
    corekv: &Server,
    out: &mut Outcome,
    fails: &mut Vec<String>,
) {
    let mut fail = |msg: String| fails.push(msg);
    let setup = (|| -> Result<(Conn, Conn), String> {
        let mut r = Conn::open("redis", redis)?;
        let mut k = Conn::open("corekv", corekv)?;
        flushall(&mut [&mut r, &mut k])?;
        if resp3 {
            for c in [&mut r, &mut k] {
                let hello = c.call(&[b"HELLO".to_vec(), b"3".to_vec()])?;
                if !matches!(hello.tree, Resp::Agg(b'%', _)) {
                    return Err(format!("{}: HELLO 3 replied {}", c.label, show(&hello.raw)));
                }
            }
        }
        Ok((r, k))
    })();
    let (mut r, mut k) = match setup {
        Ok(c) => c,
        Err(e) => return fail(format!("{label}: setup failed: {e}")),
    };
    for line in &script.lines {
        if let Some(ms) = line.sleep_ms {
            std::thread::sleep(Duration::from_millis(ms));
            continue;
        }
        let whereabouts = format!("{label}:{}: {}", line.number, line.text);
        let rr = r.call(&line.args);
        let kr = k.call(&line.args);
        let (rr, kr) = match (rr, kr) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                let show_res = |x: &Result<Reply, String>| match x {
                    Ok(rep) => show(&rep.raw),
                    Err(e) => format!("<no reply: {e}>"),
                };
                fail(format!(
                    "{whereabouts}\n    command: {}\n    redis:   {}\n    corekv:  {}\n    (script aborted: the connection is out of step)",
                    show_args(&line.args),
                    show_res(&a),
                    show_res(&b)
                ));
                return;
            }
        };
        if let Some(reason) = &line.known_divergence {
            out.known += 1;
            let same = rr.raw == kr.raw;
            println!(
                "KNOWN DIVERGENCE {label}:{} ({reason})\n    command: {}\n    redis:   {}\n    corekv:  {}{}",
                line.number,
                show_args(&line.args),
                show(&rr.raw),
                show(&kr.raw),
                if same { "\n    NOTE: the replies now match; remove the @known-divergence marker" } else { "" }
            );
            continue;
        }
        out.compared += 1;
        let equal = if line.unordered {
            unordered_equal(&rr, &kr)
        } else if line.ttl_approx {
            approx_equal(&rr, &kr, ttl_tolerance(&line.args))
        } else {
            rr.raw == kr.raw
        };
        if !equal {
            let mode = if line.unordered {
                " (compared unordered)"
            } else if line.ttl_approx {
                " (integers compared approximately)"
            } else {
                ""
            };
            fail(format!(
                "{whereabouts}{mode}\n    command: {}\n    redis:   {}\n    corekv:  {}",
                show_args(&line.args),
                show(&rr.raw),
                show(&kr.raw)
            ));
        }
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("differential")
}

fn load_scripts() -> Vec<Script> {
    let dir = script_dir();
    // DIFF_ONLY=name runs just `name.redis` (while working on one command family).
    let only = std::env::var("DIFF_ONLY").ok();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "redis"))
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| p.file_stem().is_some_and(|s| s == o.as_str()))
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no *.redis scripts in {}", dir.display());
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text =
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            parse_script(&name, &text).unwrap_or_else(|e| panic!("script syntax error: {e}"))
        })
        .collect()
}

fn ping(label: &'static str, server: &Server) -> Result<(), String> {
    let mut c = Conn::open(label, server)?;
    let r = c.call(&[b"PING".to_vec()])?;
    if r.raw == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!("{label}: PING replied {}", show(&r.raw)))
    }
}

#[test]
fn differential_against_redis() {
    if !support::redis_or_skip("the differential test") {
        return;
    }
    let scripts = load_scripts();
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let mut out = Outcome::default();
    for script in &scripts {
        if !script.resp3 {
            run_script(script, false, &redis, &corekv, &mut out);
        }
        if !script.resp2_only {
            run_script(script, true, &redis, &corekv, &mut out);
        }
    }
    for (label, server) in [("redis", &redis), ("corekv", &corekv)] {
        if let Err(e) = ping(label, server) {
            out.failures.push(format!(
                "after all scripts, {label} no longer answers PING: {e}"
            ));
        }
    }
    let total_lines: usize = scripts.iter().map(|s| s.lines.len()).sum();
    println!(
        "differential: {} scripts, {total_lines} lines, {} compared, {} known divergences, {} pending mismatches, {} failures",
        scripts.len(),
        out.compared,
        out.known,
        out.pending.len(),
        out.failures.len()
    );
    for p in &out.pending {
        println!("PENDING MISMATCH {p}");
    }
    if !out.failures.is_empty() {
        panic!(
            "{} differential mismatches between corekv and redis-server:\n\n{}",
            out.failures.len(),
            out.failures.join("\n\n")
        );
    }
}

#[test]
fn script_parser_handles_quoting_and_directives() {
    let args = split_args(r#"SET "bin\x00key" "" 'it\'s' "a\r\nb" plain"#).expect("parse");
    assert_eq!(
        args,
        vec![
            b"SET".to_vec(),
            b"bin\x00key".to_vec(),
            b"".to_vec(),
            b"it's".to_vec(),
            b"a\r\nb".to_vec(),
            b"plain".to_vec()
        ]
    );
    assert!(split_args(r#""unterminated"#).is_err());
    assert!(split_args(r#""a"b"#).is_err());
    let s = parse_script(
        "t",
        "@resp3\n# c\n\n@unordered KEYS *\n@sleep 5\n@ttl-approx PTTL k\n@known-divergence \"bug 1\" GET k\n",
    )
    .expect("parse script");
    assert!(s.resp3);
    assert_eq!(s.lines.len(), 4);
    assert!(s.lines[0].unordered && s.lines[0].number == 4);
    assert_eq!(s.lines[1].sleep_ms, Some(5));
    assert!(s.lines[2].ttl_approx);
    assert_eq!(s.lines[3].known_divergence.as_deref(), Some("bug 1"));
    assert_eq!(s.lines[3].args, vec![b"GET".to_vec(), b"k".to_vec()]);
    assert!(parse_script("t", "GET k\n@resp3\n").is_err());
    assert!(parse_script("t", "@bogus GET k\n").is_err());
}

#[test]
fn comparison_modes() {
    let rep = |raw: &[u8], tree: Resp| Reply {
        raw: raw.to_vec(),
        tree,
    };
    let int = |n: i64| rep(format!(":{n}\r\n").as_bytes(), Resp::Int(n));
    assert!(approx_equal(&int(100), &int(101), 1));
    assert!(!approx_equal(&int(100), &int(102), 1));
    let bulk = |s: &[u8]| {
        let mut raw = format!("${}\r\n", s.len()).into_bytes();
        raw.extend_from_slice(s);
        raw.extend_from_slice(b"\r\n");
        rep(&raw, Resp::Bulk(s.to_vec()))
    };
    let arr = |items: Vec<Reply>| {
        let mut raw = format!("*{}\r\n", items.len()).into_bytes();
        for i in &items {
            raw.extend_from_slice(&i.raw);
        }
        rep(&raw, Resp::Agg(b'*', items))
    };
    let a = arr(vec![bulk(b"a"), bulk(b"b"), bulk(b"b")]);
    let b = arr(vec![bulk(b"b"), bulk(b"a"), bulk(b"b")]);
    let c = arr(vec![bulk(b"b"), bulk(b"a"), bulk(b"a")]);
    assert!(unordered_equal(&a, &b));
    assert!(!unordered_equal(&a, &c));
    assert_ne!(a.raw, b.raw);
    assert_eq!(escape(b"a\x00\r\n\"\xff"), "a\\x00\\r\\n\\\"\\xff");
}
