//! Command templates, the weighted command mix, and RESP encoding of requests into a reused
//! buffer.
//!
//! A template is a command line whose words may hold placeholders: `__key__` (a key drawn from
//! the key distribution, fixed width), `__data__` (a value of the configured size) and
//! `__int__` (a random integer). Named commands (`get`, `set`, `mget`, ...) are templates too.

use rand::Rng;

use crate::keys::KeyGen;
use crate::Error;

/// The named commands of `--mix` and the templates they stand for. Each family writes its own
/// key prefix so types never collide (no WRONGTYPE errors in a mixed run).
const NAMED: &[(&str, &str)] = &[
    ("get", "GET __key__"),
    ("set", "SET __key__ __data__"),
    (
        "mget",
        "MGET __key__ __key__ __key__ __key__ __key__ __key__ __key__ __key__ __key__ __key__",
    ),
    ("incr", "INCR n:__key__"),
    ("lpush", "LPUSH l:__key__ __data__"),
    ("lpop", "LPOP l:__key__"),
    ("hset", "HSET h:__key__ f __data__"),
    ("zadd", "ZADD z:__key__ __int__ __data__"),
    ("evalsha", "EVALSHA __sha__ 1 __key__"),
];

/// The script `evalsha` runs (loaded with SCRIPT LOAD before the run): a GET.
pub const EVALSHA_SCRIPT: &str = "return redis.call('GET', KEYS[1])";

/// Commands whose nil reply means "miss" and whose values count as hits.
const READS: &[&str] = &[
    "GET",
    "MGET",
    "HGET",
    "HMGET",
    "LPOP",
    "RPOP",
    "LINDEX",
    "ZSCORE",
    "GETDEL",
    "GETEX",
    "EVALSHA",
    "SPOP",
    "SRANDMEMBER",
];

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Lit(Vec<u8>),
    Key,
    Data,
    Int,
}

/// One parsed command template.
#[derive(Clone, Debug)]
pub struct Template {
    args: Vec<Vec<Part>>,
    /// Replies count towards the hit ratio.
    pub read: bool,
}

impl Template {
    /// Parses a whitespace-separated template. `sha` replaces `__sha__` (EVALSHA's script).
    pub fn parse(text: &str, sha: Option<&str>) -> Result<Template, Error> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Err(Error::Usage("empty command template".into()));
        };
        let mut args = Vec::with_capacity(words.len());
        for w in &words {
            let mut parts = Vec::new();
            let mut rest = *w;
            while !rest.is_empty() {
                let next = ["__key__", "__data__", "__int__", "__sha__"]
                    .iter()
                    .filter_map(|p| rest.find(p).map(|i| (i, *p)))
                    .min();
                let Some((i, p)) = next else {
                    parts.push(Part::Lit(rest.as_bytes().to_vec()));
                    break;
                };
                if i > 0 {
                    parts.push(Part::Lit(rest.as_bytes()[..i].to_vec()));
                }
                parts.push(match p {
                    "__key__" => Part::Key,
                    "__data__" => Part::Data,
                    "__int__" => Part::Int,
                    _ => Part::Lit(
                        sha.ok_or_else(|| Error::Usage("__sha__ needs a loaded script".into()))?
                            .as_bytes()
                            .to_vec(),
                    ),
                });
                rest = &rest[i + p.len()..];
            }
            args.push(parts);
        }
        Ok(Template {
            args,
            read: READS.contains(&first.to_ascii_uppercase().as_str()),
        })
    }

    /// Whether any word uses `__sha__`.
    pub fn needs_script(text: &str) -> bool {
        text.contains("__sha__")
    }
}

/// Templates with weights; picks one per request.
#[derive(Clone, Debug)]
pub struct Mix {
    entries: Vec<(Template, u32)>,
    total: u32,
}

/// One `--mix` / `--command` / `--ratio` entry before parsing: a template text and its weight.
#[derive(Clone, Debug, PartialEq)]
pub struct MixSpec {
    pub template: String,
    pub weight: u32,
}

impl MixSpec {
    /// `--mix get=10,set=1,incr` (weight 1 when omitted).
    pub fn parse_mix(s: &str) -> Result<Vec<MixSpec>, Error> {
        s.split(',')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, weight) = match e.split_once('=') {
                    Some((n, w)) => (n, parse_weight(w, e)?),
                    None => (e, 1),
                };
                let template = NAMED
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, t)| t.to_string())
                    .ok_or_else(|| {
                        let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
                        Error::Usage(format!(
                            "--mix: unknown command {name:?} (one of {names:?})"
                        ))
                    })?;
                Ok(MixSpec { template, weight })
            })
            .collect()
    }

    /// `--command "[WEIGHT:]TEMPLATE"`, e.g. `--command "3:HSET h:__key__ f __data__"`.
    pub fn parse_command(s: &str) -> Result<MixSpec, Error> {
        let (weight, template) = match s.split_once(':') {
            Some((w, t)) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
                (parse_weight(w, s)?, t)
            }
            _ => (1, s),
        };
        Ok(MixSpec {
            template: template.trim().to_string(),
            weight,
        })
    }

    /// `--ratio SET:GET` as memtier_benchmark writes it.
    pub fn parse_ratio(s: &str) -> Result<Vec<MixSpec>, Error> {
        let bad = || Error::Usage(format!("--ratio {s:?}: use SETS:GETS, e.g. 1:10"));
        let (sets, gets) = s.split_once(':').ok_or_else(bad)?;
        let sets: u32 = sets.trim().parse().map_err(|_| bad())?;
        let gets: u32 = gets.trim().parse().map_err(|_| bad())?;
        let mut out = Vec::new();
        for (name, weight) in [("set", sets), ("get", gets)] {
            if weight > 0 {
                out.extend(MixSpec::parse_mix(&format!("{name}={weight}"))?);
            }
        }
        if out.is_empty() {
            return Err(Error::Usage(format!("--ratio {s:?}: both weights are 0")));
        }
        Ok(out)
    }
}

fn parse_weight(w: &str, entry: &str) -> Result<u32, Error> {
    match w.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Usage(format!(
            "{entry:?}: weight must be a positive integer"
        ))),
    }
}

impl Mix {
    pub fn new(specs: &[MixSpec], sha: Option<&str>) -> Result<Mix, Error> {
        let entries = specs
            .iter()
            .map(|s| Ok((Template::parse(&s.template, sha)?, s.weight)))
            .collect::<Result<Vec<_>, Error>>()?;
        let total = entries.iter().map(|(_, w)| *w).sum();
        if total == 0 {
            return Err(Error::Usage("the command mix is empty".into()));
        }
        Ok(Mix { entries, total })
    }

    pub fn pick<R: Rng>(&self, rng: &mut R) -> &Template {
        if self.entries.len() == 1 {
            return &self.entries[0].0;
        }
        let mut x = rng.gen_range(0..self.total);
        for (t, w) in &self.entries {
            if x < *w {
                return t;
            }
            x -= w;
        }
        unreachable!("weights sum to total")
    }
}

/// Value size: fixed or a uniform range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSize {
    pub min: usize,
    pub max: usize,
}

impl std::str::FromStr for ValueSize {
    type Err = Error;

    /// `64` or `32-256`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Usage(format!("--value-size {s:?}: use N or MIN-MAX"));
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n = s.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if min > max || max > 64 << 20 {
            return Err(bad());
        }
        Ok(ValueSize { min, max })
    }
}

/// How keys are spelled: `prefix` then the index zero-padded to `width` bytes in all.
#[derive(Clone, Debug)]
pub struct KeyFormat {
    pub prefix: String,
    pub width: usize,
}

/// Writes requests into a caller-owned buffer; reuses its scratch space.
pub struct Encoder {
    keys: KeyFormat,
    size: ValueSize,
    /// Random printable bytes; values are slices of it.
    data: Vec<u8>,
    arg: Vec<u8>,
}

impl Encoder {
    pub fn new<R: Rng>(keys: KeyFormat, size: ValueSize, rng: &mut R) -> Encoder {
        let data = (0..size.max.max(1))
            .map(|_| rng.gen_range(b'a'..=b'z'))
            .collect();
        Encoder {
            keys,
            size,
            data,
            arg: Vec::with_capacity(64),
        }
    }

    /// Appends one request made from `t` to `out`.
    pub fn encode<R: Rng>(
        &mut self,
        t: &Template,
        out: &mut Vec<u8>,
        keys: &mut KeyGen,
        rng: &mut R,
    ) {
        out.push(b'*');
        out.extend_from_slice(itoa::Buffer::new().format(t.args.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        for parts in &t.args {
            self.arg.clear();
            for p in parts {
                match p {
                    Part::Lit(b) => self.arg.extend_from_slice(b),
                    Part::Key => {
                        let k = keys.next(rng);
                        write_key(&self.keys, k, &mut self.arg);
                    }
                    Part::Data => {
                        let n = if self.size.min == self.size.max {
                            self.size.min
                        } else {
                            rng.gen_range(self.size.min..=self.size.max)
                        };
                        self.arg.extend_from_slice(&self.data[..n]);
                    }
                    Part::Int => self
                        .arg
                        .extend_from_slice(itoa::Buffer::new().format(rng.gen::<u32>()).as_bytes()),
                }
            }
            out.push(b'$');
            out.extend_from_slice(itoa::Buffer::new().format(self.arg.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&self.arg);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `prefix` + `index` zero-padded so the key is `width` bytes (longer if the number needs it).
pub fn write_key(f: &KeyFormat, index: u64, out: &mut Vec<u8>) {
    let mut b = itoa::Buffer::new();
    let digits = b.format(index).as_bytes();
    out.extend_from_slice(f.prefix.as_bytes());
    let pad = f.width.saturating_sub(f.prefix.len() + digits.len());
    out.extend(std::iter::repeat_n(b'0', pad));
    out.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyDist;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn encoder(size: &str) -> (Encoder, SmallRng) {
        let mut rng = SmallRng::seed_from_u64(1);
        let f = KeyFormat {
            prefix: "key:".into(),
            width: 16,
        };
        (Encoder::new(f, size.parse().unwrap(), &mut rng), rng)
    }

    #[test]
    fn encodes_templates_as_resp() {
        let (mut e, mut rng) = encoder("4");
        let mut keys = KeyGen::new(KeyDist::Sequential, 100, 42);
        let mut out = Vec::new();
        let t = Template::parse("SET __key__ __data__", None).unwrap();
        e.encode(&t, &mut out, &mut keys, &mut rng);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$4\r\n"),
            "{text}"
        );
        assert_eq!(
            text.len(),
            "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$4\r\nxxxx\r\n".len()
        );
        assert!(!t.read);
        assert!(Template::parse("get x", None).unwrap().read);
    }

    #[test]
    fn placeholders_inside_words() {
        let (mut e, mut rng) = encoder("2");
        let mut keys = KeyGen::new(KeyDist::Sequential, 10, 7);
        let mut out = Vec::new();
        let t = Template::parse("HSET h:__key__ f __data__", None).unwrap();
        e.encode(&t, &mut out, &mut keys, &mut rng);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("$18\r\nh:key:000000000007\r\n$1\r\nf\r\n$2\r\n"),
            "{text}"
        );
    }

    #[test]
    fn value_size_range() {
        let (mut e, mut rng) = encoder("3-5");
        let mut keys = KeyGen::new(KeyDist::Uniform, 10, 0);
        let t = Template::parse("__data__", None).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut out = Vec::new();
            e.encode(&t, &mut out, &mut keys, &mut rng);
            seen.insert(out.len());
        }
        // "*1\r\n$N\r\n" + N + "\r\n"
        assert_eq!(
            seen,
            [8 + 3 + 2, 8 + 4 + 2, 8 + 5 + 2].into_iter().collect()
        );
        assert!("5-3".parse::<ValueSize>().is_err());
        assert!("x".parse::<ValueSize>().is_err());
    }

    #[test]
    fn parses_mix_specs() {
        let m = MixSpec::parse_mix("get=10,set").unwrap();
        assert_eq!(m[0].weight, 10);
        assert_eq!(m[1].template, "SET __key__ __data__");
        assert!(MixSpec::parse_mix("nope").is_err());
        assert!(MixSpec::parse_mix("get=0").is_err());
        let r = MixSpec::parse_ratio("1:10").unwrap();
        assert_eq!((r[0].weight, r[1].weight), (1, 10));
        assert_eq!(MixSpec::parse_ratio("0:1").unwrap().len(), 1);
        assert!(MixSpec::parse_ratio("0:0").is_err());
        let c = MixSpec::parse_command("3:INCR c:__key__").unwrap();
        assert_eq!((c.weight, c.template.as_str()), (3, "INCR c:__key__"));
        assert_eq!(MixSpec::parse_command("SET a:b x").unwrap().weight, 1);
        assert!(Template::parse("EVALSHA __sha__ 0", None).is_err());
    }

    #[test]
    fn mix_follows_weights() {
        let specs = MixSpec::parse_ratio("1:3").unwrap();
        let mix = Mix::new(&specs, None).unwrap();
        let mut rng = SmallRng::seed_from_u64(5);
        let reads = (0..40_000).filter(|_| mix.pick(&mut rng).read).count();
        assert!((29_000..31_000).contains(&reads), "{reads}");
    }
}
