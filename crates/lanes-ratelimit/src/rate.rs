//! `Rate`: grants per period plus the burst a limiter tolerates, parsed from `"8/s"` or `"50/m,burst=5"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

const MICROS_PER_MS: u64 = 1_000;
const MICROS_PER_S: u64 = 1_000_000;
const MICROS_PER_M: u64 = 60 * MICROS_PER_S;
const MICROS_PER_H: u64 = 60 * MICROS_PER_M;
const MICROS_PER_D: u64 = 24 * MICROS_PER_H;
/// Longest period and longest burst window accepted: a year.
const MAX_SPAN_MICROS: u64 = 365 * MICROS_PER_D;
const MAX_BURST: u32 = 1_000_000;

/// How fast a limiter grants: `count` grants per `period`, of which up to `burst` may be taken at
/// one instant.
///
/// The default burst is **1**: strict spacing, one grant every `period / count` and never two
/// closer. That is what an API with a per-second limit and no burst allowance needs (SP-API,
/// Keepa). A larger burst lets an idle limiter hand out `burst` grants at once; the limit over any
/// window of length `W` is then `count × W / period + burst`.
///
/// Written as `COUNT/PERIOD[,burst=B]`, where `PERIOD` is an optional whole multiplier and a unit
/// (`ms`, `s`, `m`, `h`, `d`, or their long names): `"8/s"`, `"50/m"`, `"3000/h"`, `"5/10s"`,
/// `"8/s,burst=4"`.
///
/// ```
/// use lanes_ratelimit::Rate;
/// let keepa: Rate = "5/s".parse()?;
/// assert_eq!(keepa.burst(), 1);
/// assert_eq!(keepa.emission_interval(), std::time::Duration::from_millis(200));
/// let gemini = "50/m,burst=5".parse::<Rate>()?;
/// assert_eq!(gemini.to_string(), "50/m,burst=5");
/// # Ok::<(), lanes_ratelimit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u32,
    period_micros: u64,
    burst: u32,
}

impl Rate {
    /// `count` grants per `period`, burst 1.
    pub fn new(count: u32, period: Duration) -> Result<Self> {
        let period_micros = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Self::checked(count, period_micros, 1)
            .map_err(|reason| invalid(format!("{count}/{}", format_period(period_micros)), reason))
    }

    pub fn per_second(count: u32) -> Result<Self> {
        Self::new(count, Duration::from_secs(1))
    }

    pub fn per_minute(count: u32) -> Result<Self> {
        Self::new(count, Duration::from_secs(60))
    }

    pub fn per_hour(count: u32) -> Result<Self> {
        Self::new(count, Duration::from_secs(3600))
    }

    /// The same rate with another burst (at least 1).
    pub fn with_burst(self, burst: u32) -> Result<Self> {
        Self::checked(self.count, self.period_micros, burst).map_err(|reason| {
            let shown = Rate { burst, ..self };
            invalid(shown.to_string(), reason)
        })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period_micros)
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Time between two grants at full speed: `period / count`, rounded *up* to a microsecond so
    /// that rounding can only make the limiter stricter.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros())
    }

    pub(crate) fn interval_micros(&self) -> u64 {
        self.period_micros.div_ceil(u64::from(self.count))
    }

    /// The most grants any closed window of length `window` may hold: `⌊count × window / period⌋
    /// + burst`.
    pub fn max_in_window(&self, window: Duration) -> u64 {
        let window = window.as_micros();
        let per_window = window * u128::from(self.count) / u128::from(self.period_micros);
        u64::try_from(per_window)
            .unwrap_or(u64::MAX)
            .saturating_add(u64::from(self.burst))
    }

    /// Grants per second at full speed.
    pub fn per_second_f64(&self) -> f64 {
        f64::from(self.count) * MICROS_PER_S as f64 / self.period_micros as f64
    }

    fn checked(count: u32, period_micros: u64, burst: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("rate must be positive".into());
        }
        if period_micros == 0 {
            return Err("period must be positive".into());
        }
        if period_micros > MAX_SPAN_MICROS {
            return Err("period must be at most 365 days".into());
        }
        if u64::from(count) > period_micros {
            return Err("rate too high: at most one grant per microsecond".into());
        }
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        if burst > MAX_BURST {
            return Err(format!("burst must be at most {MAX_BURST}"));
        }
        let rate = Rate {
            count,
            period_micros,
            burst,
        };
        if rate.interval_micros().saturating_mul(u64::from(burst)) > MAX_SPAN_MICROS {
            return Err("burst window (burst × period / count) must be at most 365 days".into());
        }
        Ok(rate)
    }
}

fn invalid(input: String, reason: impl Into<String>) -> Error {
    Error::InvalidRate {
        input,
        reason: reason.into(),
    }
}

impl FromStr for Rate {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        parse(input).map_err(|reason| invalid(input.to_owned(), reason))
    }
}

fn parse(input: &str) -> Result<Rate, String> {
    let mut parts = input.split(',');
    let head = parts.next().unwrap_or_default().trim();
    let Some((count, period)) = head.split_once('/') else {
        return Err("expected COUNT/PERIOD, like \"8/s\", \"50/m\" or \"3000/h\"".into());
    };
    let count = parse_count(count.trim())?;
    let period_micros = parse_period(period.trim())?;
    let mut burst = None;
    for option in parts {
        let option = option.trim();
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!(
                "expected an option like \"burst=4\", got {option:?}"
            ));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "burst" if burst.is_some() => return Err("burst given twice".into()),
            "burst" => {
                let value = value.trim();
                if value.starts_with('-') {
                    return Err("burst must be at least 1".into());
                }
                let b: u32 = value
                    .parse()
                    .map_err(|_| format!("burst must be a whole number, got {value:?}"))?;
                burst = Some(b);
            }
            other => {
                return Err(format!(
                    "unknown option {other:?}: the only option is burst"
                ));
            }
        }
    }
    Rate::checked(count, period_micros, burst.unwrap_or(1))
}

fn parse_count(count: &str) -> Result<u32, String> {
    if count.starts_with('-') {
        return Err("rate must be positive".into());
    }
    if count.is_empty() {
        return Err("missing count before '/'".into());
    }
    match count.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) if count.chars().all(|c| c.is_ascii_digit()) => Err("count is too large".into()),
        Err(_) => Err(format!(
            "count must be a whole number, got {count:?} (write \"1/2s\" rather than \"0.5/s\")"
        )),
    }
}

fn parse_period(period: &str) -> Result<u64, String> {
    let split = period
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(period.len());
    let (multiplier, unit) = period.split_at(split);
    let multiplier: u64 = if multiplier.is_empty() {
        1
    } else {
        multiplier
            .parse()
            .map_err(|_| format!("period multiplier {multiplier:?} is too large"))?
    };
    if multiplier == 0 {
        return Err("period must be positive".into());
    }
    let unit_micros = match unit.trim().to_ascii_lowercase().as_str() {
        "" => return Err("missing unit after '/': use ms, s, m, h or d".into()),
        "ms" | "msec" | "millisecond" | "milliseconds" => MICROS_PER_MS,
        "s" | "sec" | "secs" | "second" | "seconds" => MICROS_PER_S,
        "m" | "min" | "mins" | "minute" | "minutes" => MICROS_PER_M,
        "h" | "hr" | "hour" | "hours" => MICROS_PER_H,
        "d" | "day" | "days" => MICROS_PER_D,
        other => return Err(format!("unknown unit {other:?}: use ms, s, m, h or d")),
    };
    multiplier
        .checked_mul(unit_micros)
        .ok_or_else(|| "period is too long".to_owned())
}

fn format_period(micros: u64) -> String {
    let units = [
        (MICROS_PER_D, "d"),
        (MICROS_PER_H, "h"),
        (MICROS_PER_M, "m"),
        (MICROS_PER_S, "s"),
    ];
    for (size, name) in units {
        if micros >= size && micros.is_multiple_of(size) {
            return with_multiplier(micros / size, name);
        }
    }
    if micros >= MICROS_PER_MS && micros.is_multiple_of(MICROS_PER_MS) {
        return with_multiplier(micros / MICROS_PER_MS, "ms");
    }
    // Not expressible in the string syntax; shown for messages only.
    format!("{micros}us")
}

fn with_multiplier(n: u64, unit: &str) -> String {
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n}{unit}")
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, format_period(self.period_micros))?;
        if self.burst != 1 {
            write!(f, ",burst={}", self.burst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
