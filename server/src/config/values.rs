//! Value types of settings that Redis writes in its own way: `yes`/`no` flags, memory sizes
//! with units (`100mb`), octal permissions. Each reads from JSON, flags and CONFIG SET, and
//! prints as CONFIG GET shows it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Parses and formats a setting's value the way CONFIG SET / CONFIG GET exchange it.
pub trait SettingValue: Sized {
    fn parse_setting(text: &str) -> Result<Self, String>;
    /// The value after CONFIG SET `text`: the parsed text, except for settings where Redis
    /// changes only the parts given.
    fn set_from(&self, text: &str) -> Result<Self, String> {
        Self::parse_setting(text)
    }
    fn show(&self) -> String;
    /// The value as the JSON config file writes it (CONFIG REWRITE).
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.show())
    }
}

macro_rules! plain_setting {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn parse_setting(text: &str) -> Result<Self, String> {
                text.parse().map_err(|_| format!("argument couldn't be parsed into an integer"))
            }
            fn show(&self) -> String {
                self.to_string()
            }
            fn to_json(&self) -> serde_json::Value {
                serde_json::Value::from(*self)
            }
        }
    )*};
}
plain_setting!(u16, u32, u64, usize, i64);

impl SettingValue for String {
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

/// A yes/no setting (`protected-mode yes`). JSON takes `true`/`false` or `"yes"`/`"no"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl FromStr for Flag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(Flag(true)),
            "no" | "false" => Ok(Flag(false)),
            _ => Err("argument must be 'yes' or 'no'".into()),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.0 { "yes" } else { "no" })
    }
}

impl SettingValue for Flag {
    fn parse_setting(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(b) => Ok(Flag(b)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A byte count; text may carry Redis's units (`k`, `kb`, `m`, `mb`, `g`, `gb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemSize(pub u64);

impl FromStr for MemSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (digits, unit) = lower.split_at(split);
        let mult: u64 = match unit {
            "" | "b" => 1,
            "k" => 1000,
            "kb" => 1024,
            "m" => 1000 * 1000,
            "mb" => 1024 * 1024,
            "g" => 1000 * 1000 * 1000,
            "gb" => 1024 * 1024 * 1024,
            _ => {
                return Err(format!(
                    "'{s}' is not a memory size (use bytes or a unit: kb, mb, gb)"
                ))
            }
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .map(MemSize)
            .ok_or_else(|| "argument must be a memory value".to_string())
    }
}

impl fmt::Display for MemSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl SettingValue for MemSize {
    fn parse_setting(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::from(self.0)
    }
}

impl<'de> Deserialize<'de> for MemSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(MemSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// File permission bits written in octal (`unixsocketperm 700`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Octal(pub u32);

impl FromStr for Octal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        u32::from_str_radix(s, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map(Octal)
            .ok_or_else(|| format!("'{s}' is not an octal permission such as 700"))
    }
}

impl fmt::Display for Octal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:o}", self.0)
    }
}

impl SettingValue for Octal {
    fn parse_setting(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl<'de> Deserialize<'de> for Octal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            // JSON has no octal literals: 700 means the digits 7-0-0.
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_follow_redis() {
        assert_eq!("1gb".parse::<MemSize>().unwrap().0, 1 << 30);
        assert_eq!("1g".parse::<MemSize>().unwrap().0, 1_000_000_000);
        assert_eq!("512".parse::<MemSize>().unwrap().0, 512);
        assert!("12xb".parse::<MemSize>().is_err());
        assert!("99999999999999999999gb".parse::<MemSize>().is_err());
    }

    #[test]
    fn flags_and_octal() {
        assert_eq!("yes".parse::<Flag>().unwrap(), Flag(true));
        assert!("maybe".parse::<Flag>().is_err());
        assert_eq!("770".parse::<Octal>().unwrap().0, 0o770);
        assert!("999".parse::<Octal>().is_err());
    }
}
