//! Glob-style pattern matching as Redis's `stringmatchlen` (KEYS, SCAN MATCH, CONFIG GET).

/// Whether `text` matches `pattern`: `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes.
pub fn matches(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    match_from(pattern, text, nocase)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Matches one non-star pattern element at the head of `p` against `ch`; returns the length of
/// the element and whether it matched.
fn match_one(p: &[u8], ch: u8, nocase: bool) -> (usize, bool) {
    match p[0] {
        b'?' => (1, true),
        b'\\' if p.len() >= 2 => (2, eq(p[1], ch, nocase)),
        b'[' => {
            let mut i = 1;
            let negate = p.get(1) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut matched = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    matched |= eq(p[i + 1], ch, nocase);
                    i += 2;
                } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    let (mut lo, mut hi, mut x) = (p[i], p[i + 2], ch);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    if nocase {
                        lo = lo.to_ascii_lowercase();
                        hi = hi.to_ascii_lowercase();
                        x = x.to_ascii_lowercase();
                    }
                    matched |= x >= lo && x <= hi;
                    i += 3;
                } else {
                    matched |= eq(p[i], ch, nocase);
                    i += 1;
                }
            }
            // An unterminated class runs to the end of the pattern, as in Redis.
            ((i + 1).min(p.len()), matched != negate)
        }
        c => (1, eq(c, ch, nocase)),
    }
}

/// Iterative wildcard matching with one backtrack point per star: O(len(p) * len(s)) at worst,
/// so hostile patterns such as `a*a*a*...b` cannot stall a shard.
fn match_from(p: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            while pi < p.len() && p[pi] == b'*' {
                pi += 1;
            }
            if pi == p.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < p.len() {
            let (len, ok) = match_one(&p[pi..], s[si], nocase);
            if ok {
                pi += len;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_cases() {
        assert!(matches(b"*", b"anything", false));
        assert!(matches(b"h?llo", b"hello", false));
        assert!(matches(b"h*llo", b"heeeello", false));
        assert!(matches(b"h[ae]llo", b"hallo", false));
        assert!(!matches(b"h[^e]llo", b"hello", false));
        assert!(matches(b"h[a-b]llo", b"hbllo", false));
        assert!(matches(b"h\\*llo", b"h*llo", false));
        assert!(!matches(b"h\\*llo", b"hello", false));
        assert!(matches(b"KEY:*", b"key:1", true));
        assert!(!matches(b"a", b"ab", false));
        let hostile = [b'a', b'*'].repeat(50);
        assert!(!matches(&hostile, &[b'a'; 30], false));
        assert!(matches(&hostile, &[b'a'; 60], false));
    }
}
