//! Suppressions: accepted findings, each with a written reason, optionally bound to a file's
//! digest (a changed file re-opens the finding) and an expiry date (an expired suppression stops
//! applying and is itself reported).

use crate::config::PolicyError;
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use std::fmt;

/// A calendar date (UTC), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(i64);

impl Date {
    /// Today, in UTC.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date((secs / 86_400) as i64)
    }

    /// The day a Unix timestamp (seconds) falls on, and the seconds since that midnight (UTC).
    pub fn from_unix(secs: i64) -> (Date, u32) {
        (Date(secs.div_euclid(86_400)), secs.rem_euclid(86_400) as u32)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let mut parts = s.splitn(3, '-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        let days_in_month = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            _ => return None,
        };
        if d == 0 || d > days_in_month {
            return None;
        }
        Some(Date(days_from_civil(y, m, d)))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuppressionFile {
    pub(crate) rule: String,
    path: String,
    #[serde(default)]
    sha256: Option<String>,
    reason: String,
    #[serde(default)]
    expires: Option<toml::Value>,
}

/// One suppression from the policy.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// The rule id it applies to.
    pub rule: String,
    /// The path glob as written.
    pub path: String,
    matcher: GlobMatcher,
    /// The file digest it is bound to, if any.
    pub sha256: Option<String>,
    /// Why the finding is accepted.
    pub reason: String,
    /// The last day it applies.
    pub expires: Option<Date>,
}

impl Suppression {
    pub(crate) fn from_file(
        raw: SuppressionFile,
        rule_id: String,
        origin: &str,
    ) -> Result<Suppression, PolicyError> {
        let at = format!("{origin}: [[suppress]] {} {:?}", raw.rule, raw.path);
        if raw.reason.trim().is_empty() {
            return Err(PolicyError(format!("{at}: a suppression needs a `reason`")));
        }
        // `*` stays within a directory; `**` crosses directories.
        let matcher = GlobBuilder::new(&raw.path)
            .literal_separator(true)
            .build()
            .map_err(|e| PolicyError(format!("{at}: bad path glob: {e}")))?
            .compile_matcher();
        if let Some(d) = &raw.sha256
            && (d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(PolicyError(format!("{at}: sha256 must be 64 hex digits")));
        }
        let expires =
            match raw.expires {
                None => None,
                Some(v) => {
                    let text = match &v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Datetime(d) => d.to_string(),
                        _ => String::new(),
                    };
                    Some(Date::parse(&text).ok_or_else(|| {
                        PolicyError(format!("{at}: expires must be a date like 2027-01-31"))
                    })?)
                }
            };
        Ok(Suppression {
            rule: rule_id,
            path: raw.path,
            matcher,
            sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
            reason: raw.reason,
            expires,
        })
    }

    /// True if it covers `rule` in the file at `path` with digest `sha256` (ignoring expiry).
    pub fn covers(&self, rule: &str, path: &str, sha256: &str) -> bool {
        self.rule == rule && self.matches_file(path, sha256)
    }

    /// True if its path glob (and digest, when bound) match the file.
    pub fn matches_file(&self, path: &str, sha256: &str) -> bool {
        self.matcher.is_match(path) && self.sha256.as_deref().is_none_or(|d| d == sha256)
    }

    /// True once the expiry date has passed.
    pub fn expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|e| today > e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_validate() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-26", "2099-12-31"] {
            assert_eq!(Date::parse(s).unwrap().to_string(), s);
        }
        assert!(Date::parse("2027-02-29").is_none());
        assert!(Date::parse("2027-13-01").is_none());
        assert!(Date::parse("27-01-01").is_none());
        assert!(Date::parse("2027-01-01").unwrap() > Date::parse("2026-12-31").unwrap());
        assert!(Date::today() > Date::parse("2024-01-01").unwrap());
    }
}
