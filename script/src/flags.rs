//! Script flags: the `#!lua flags=...` shebang of EVAL scripts and the `flags` of
//! `redis.register_function`.

/// A set of script flags (Redis's SCRIPT_FLAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    pub const NO_WRITES: Flags = Flags(1);
    pub const ALLOW_OOM: Flags = Flags(2);
    pub const ALLOW_STALE: Flags = Flags(4);
    pub const NO_CLUSTER: Flags = Flags(8);
    pub const ALLOW_CROSS_SLOT_KEYS: Flags = Flags(16);
    /// A script without a shebang: Redis 6 semantics (may write unless run with *_RO).
    pub const EVAL_COMPAT: Flags = Flags(32);

    /// The user-visible flags, in Redis's order (FUNCTION LIST shows them this way).
    pub const NAMED: [(&'static str, Flags); 5] = [
        ("no-writes", Flags::NO_WRITES),
        ("allow-oom", Flags::ALLOW_OOM),
        ("allow-stale", Flags::ALLOW_STALE),
        ("no-cluster", Flags::NO_CLUSTER),
        ("allow-cross-slot-keys", Flags::ALLOW_CROSS_SLOT_KEYS),
    ];

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    pub fn by_name(name: &str) -> Option<Flags> {
        Flags::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// Names of the user-visible flags that are set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMED
            .into_iter()
            .filter(move |(_, f)| self.contains(*f))
            .map(|(n, _)| n)
    }
}

/// Parses an EVAL script's shebang line. Returns the flags and the length of the shebang line
/// (the body compiled starts there, keeping the line feed so line numbers stay the user's).
pub fn parse_shebang(body: &[u8]) -> Result<(Flags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((Flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = Flags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',') {
            // Redis splits on every comma, so "flags=" alone names one empty flag: allowed
            // only as the empty list.
            if name.is_empty() && list.is_empty() {
                continue;
            }
            match Flags::by_name(name) {
                Some(f) => flags.insert(f),
                None => return Err(format!("Unexpected flag in script shebang: {name}")),
            }
        }
    }
    Ok((flags, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang() {
        assert_eq!(parse_shebang(b"return 1"), Ok((Flags::EVAL_COMPAT, 0)));
        let (f, len) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(f.contains(Flags::NO_WRITES) && f.contains(Flags::ALLOW_OOM));
        assert!(!f.contains(Flags::EVAL_COMPAT));
        assert_eq!(len, 31);
        assert_eq!(parse_shebang(b"#!lua\nreturn 1"), Ok((Flags::default(), 5)));
        assert!(parse_shebang(b"#!lua").is_err());
        assert_eq!(
            parse_shebang(b"#!python\n"),
            Err("Unexpected engine in script shebang: #!python".into())
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=bad\n"),
            Err("Unexpected flag in script shebang: bad".into())
        );
        assert_eq!(
            parse_shebang(b"#!lua x=1\n"),
            Err("Unknown lua shebang option: x=1".into())
        );
    }
}
