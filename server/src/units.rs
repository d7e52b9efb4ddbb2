//! Human-readable units for configuration: durations (`500ms`, `5s`, `12h`, `90d`) and byte sizes
//! (`64KiB`, `1MiB`).
//!
//! They are small newtypes rather than bare integers so that a config file says what it means
//! (`grace: 30s`, not `grace: 30000`) and a typo such as `5x` fails at load time with the offending
//! text in the message, instead of silently becoming a default.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written as an integer and a unit: `ms`, `s`, `m`, `h` or `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration `{text}` has no unit (use ms, s, m, h or d)"))?;
        let (number, unit) = trimmed.split_at(split);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("duration `{text}` must start with a whole number"))?;
        let millis_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "duration `{text}` has unknown unit `{unit}` (use ms, s, m, h or d)"
                ));
            }
        };
        value
            .checked_mul(millis_per_unit)
            .map(|ms| HumanDuration(Duration::from_millis(ms)))
            .ok_or_else(|| format!("duration `{text}` is too large"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (value, unit) = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")]
            .into_iter()
            .find(|(per, _)| ms != 0 && ms.is_multiple_of(*per))
            .map(|(per, unit)| (ms / per, unit))
            .unwrap_or((ms, "ms"));
        write!(f, "{value}{unit}")
    }
}

/// A size in bytes: a bare integer, or an integer with `B`, `KiB`, `MiB` or `GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("size `{text}` must start with a whole number"))?;
        let multiplier = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "size `{text}` has unknown unit `{other}` (use B, KiB, MiB or GiB)"
                ));
            }
        };
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (value, unit) = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
            .into_iter()
            .find(|(per, _)| self.0 != 0 && self.0.is_multiple_of(*per))
            .map(|(per, unit)| (self.0 / per, unit))
            .unwrap_or((self.0, "B"));
        write!(f, "{value}{unit}")
    }
}

/// Both units deserialize from a string or a bare number (YAML `5` for a size, or from env vars).
macro_rules! serde_via_str {
    ($ty:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Text(String),
                    Number(u64),
                }
                let text = match Raw::deserialize(deserializer)? {
                    Raw::Text(text) => text,
                    Raw::Number(number) => number.to_string(),
                };
                text.parse().map_err(de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

serde_via_str!(HumanDuration);
serde_via_str!(ByteSize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_every_unit() {
        assert_eq!(
            "500ms".parse::<HumanDuration>().unwrap().get(),
            Duration::from_millis(500)
        );
        assert_eq!("5s".parse::<HumanDuration>().unwrap().get(), Duration::from_secs(5));
        assert_eq!("2m".parse::<HumanDuration>().unwrap().get(), Duration::from_secs(120));
        assert_eq!(
            "12h".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(43_200)
        );
        assert_eq!(
            "90d".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(90 * 86_400)
        );
    }

    #[test]
    fn durations_reject_missing_or_unknown_units() {
        assert!("5".parse::<HumanDuration>().unwrap_err().contains("no unit"));
        assert!("5x".parse::<HumanDuration>().unwrap_err().contains("unknown unit `x`"));
        assert!("s".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn durations_display_in_the_largest_exact_unit() {
        assert_eq!(HumanDuration(Duration::from_secs(7200)).to_string(), "2h");
        assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn sizes_parse_binary_units() {
        assert_eq!("1MiB".parse::<ByteSize>().unwrap().bytes(), 1 << 20);
        assert_eq!("4096".parse::<ByteSize>().unwrap().bytes(), 4096);
        assert!("1MB".parse::<ByteSize>().unwrap_err().contains("unknown unit"));
    }
}
