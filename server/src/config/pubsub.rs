//! Setting types of the pub/sub side: `notify-keyspace-events` and
//! `client-output-buffer-limit`, written and printed as Redis does.

use std::fmt;
use std::str::FromStr;

use corekv_shard::notify::NotifyFlags;
use serde::{Deserialize, Deserializer};

use super::values::{MemSize, SettingValue};

/// `notify-keyspace-events`: Redis's class letters (`KEA`, `Ex`...), printed canonically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyspaceEvents(pub NotifyFlags);

impl FromStr for KeyspaceEvents {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NotifyFlags::parse(s)
            .map(KeyspaceEvents)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
    }
}

impl fmt::Display for KeyspaceEvents {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Limits of one client class: hard bytes, soft bytes, seconds over the soft limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit`: `<class> <hard> <soft> <soft-seconds>` for the classes
/// normal, replica (`slave`) and pubsub. Classes not given keep Redis's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimits {
    pub normal: ClassLimit,
    pub replica: ClassLimit,
    pub pubsub: ClassLimit,
}

impl Default for OutputBufferLimits {
    fn default() -> Self {
        let limit = |hard, soft, soft_seconds| ClassLimit {
            hard,
            soft,
            soft_seconds,
        };
        OutputBufferLimits {
            normal: limit(0, 0, 0),
            replica: limit(256 << 20, 64 << 20, 60),
            pubsub: limit(32 << 20, 8 << 20, 60),
        }
    }
}

impl FromStr for OutputBufferLimits {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OutputBufferLimits::default().with(s)
    }
}

impl OutputBufferLimits {
    /// These limits with the classes that `s` names replaced (CONFIG SET keeps the others).
    fn with(self, s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut limits = self;
        for group in words.chunks_exact(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut limits.normal,
                "slave" | "replica" => &mut limits.replica,
                "pubsub" => &mut limits.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            };
            let bad =
                || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let size = |w: &str| w.parse::<MemSize>().map(|m| m.0).map_err(|_| bad());
            *class = ClassLimit {
                hard: size(group[1])?,
                soft: size(group[2])?,
                soft_seconds: group[3].parse().map_err(|_| bad())?,
            };
        }
        Ok(limits)
    }
}

impl fmt::Display for OutputBufferLimits {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let classes = [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ];
        for (i, (name, l)) in classes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name} {} {} {}", l.hard, l.soft, l.soft_seconds)?;
        }
        Ok(())
    }
}

/// Both types read from their text in JSON, flags and CONFIG SET alike.
macro_rules! text_setting {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
text_setting!(KeyspaceEvents, OutputBufferLimits);

impl SettingValue for KeyspaceEvents {
    fn parse_setting(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for OutputBufferLimits {
    fn parse_setting(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn set_from(&self, text: &str) -> Result<Self, String> {
        self.with(text)
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limits_parse_and_print_like_redis() {
        let l: OutputBufferLimits = "pubsub 1mb 512kb 10".parse().unwrap();
        assert_eq!(
            l.to_string(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 10"
        );
        assert_eq!(
            OutputBufferLimits::default().to_string(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert!("pubsub 1mb 512kb".parse::<OutputBufferLimits>().is_err());
        assert!("foo 1 2 3".parse::<OutputBufferLimits>().is_err());
        assert!("pubsub -1 2 3".parse::<OutputBufferLimits>().is_err());
    }

    #[test]
    fn config_set_changes_only_the_classes_given() {
        let l: OutputBufferLimits = "normal 1 2 3".parse().unwrap();
        let l = l.set_from("pubsub 4 5 6").unwrap();
        assert_eq!(
            l.to_string(),
            "normal 1 2 3 slave 268435456 67108864 60 pubsub 4 5 6"
        );
    }

    #[test]
    fn keyspace_events_print_canonically() {
        let e: KeyspaceEvents = "KEA".parse().unwrap();
        assert_eq!(e.to_string(), "AKE");
        assert!("Kq".parse::<KeyspaceEvents>().is_err());
    }
}
