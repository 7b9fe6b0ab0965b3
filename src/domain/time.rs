use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A restaurant-local calendar date in exactly `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate(NaiveDate);

impl LocalDate {
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            return Err(format!("`{s}` is not a date in the form YYYY-MM-DD"));
        }
        // Shaped, so every other byte is a digit: read them directly (a day view parses one
        // date per reservation, and chrono's format parser is most of that cost).
        let n =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |v, c| v * 10 + u32::from(c - b'0'));
        NaiveDate::from_ymd_opt(n(0..4) as i32, n(5..7), n(8..10))
            .map(LocalDate)
            .ok_or_else(|| format!("`{s}` is not a valid calendar date"))
    }
    pub fn naive(self) -> NaiveDate {
        self.0
    }
    pub fn from_naive(d: NaiveDate) -> Self {
        LocalDate(d)
    }
    pub fn pred(self) -> Self {
        LocalDate(self.0.pred_opt().expect("date in range"))
    }
    pub fn succ(self) -> Self {
        LocalDate(self.0.succ_opt().expect("date in range"))
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for LocalDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalDate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A local wall time `HH:MM` as minutes after local midnight; `24:00` (1440) ends the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(u16);

impl WallTime {
    pub const MIDNIGHT_END: WallTime = WallTime(1440);

    /// Parses `HH:MM` between `00:00` and `24:00`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let shaped =
            b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit());
        if !shaped {
            return Err(format!("`{s}` is not a time in the form HH:MM"));
        }
        let h = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
        let m = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(format!("`{s}` is not a valid time of day"));
        }
        Ok(WallTime(h * 60 + m))
    }
    /// Parses a start time: `24:00` is not a start.
    pub fn parse_start(s: &str) -> Result<Self, String> {
        match Self::parse(s)? {
            WallTime(1440) => Err(format!("`{s}` is not a valid start time")),
            t => Ok(t),
        }
    }
    pub fn from_minutes(m: u16) -> Self {
        assert!(m <= 1440);
        WallTime(m)
    }
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WallTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A start time (`HH:MM`, `24:00` refused) as serde reads one: `#[serde(deserialize_with)]`.
pub fn deserialize_start<'de, D: Deserializer<'de>>(d: D) -> Result<WallTime, D::Error> {
    let s = String::deserialize(d)?;
    WallTime::parse_start(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn naive_at(date: LocalDate, t: WallTime) -> NaiveDateTime {
    let m = t.minutes();
    if m == 1440 {
        date.succ().naive().and_time(NaiveTime::MIN)
    } else {
        date.naive()
            .and_hms_opt(u32::from(m / 60), u32::from(m % 60), 0)
            .expect("valid wall time")
    }
}

/// The instant of a local start time: `None` inside a DST gap; the first occurrence when ambiguous.
pub fn start_instant(tz: Tz, date: LocalDate, t: WallTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&naive_at(date, t))
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// The instant of an `open`/`close` boundary: inside a DST gap it is the first instant after the gap.
pub fn boundary_instant(tz: Tz, date: LocalDate, t: WallTime) -> DateTime<Utc> {
    let mut naive = naive_at(date, t);
    for _ in 0..=24 * 60 {
        if let Some(d) = tz.from_local_datetime(&naive).earliest() {
            return d.with_timezone(&Utc);
        }
        naive += chrono::Duration::minutes(1);
    }
    unreachable!("no DST gap lasts a day")
}

/// The local date of an instant in a timezone.
pub fn local_date_of(tz: Tz, at: DateTime<Utc>) -> LocalDate {
    LocalDate(at.with_timezone(&tz).date_naive())
}

/// The local `HH:MM` of an instant (seconds dropped).
pub fn local_time_of(tz: Tz, at: DateTime<Utc>) -> WallTime {
    use chrono::Timelike;
    let l = at.with_timezone(&tz);
    WallTime((l.hour() * 60 + l.minute()) as u16)
}

/// `start`/`end` wire form: `YYYY-MM-DDTHH:MM:SSZ`.
///
/// Written digit by digit: every slot of an availability answer carries two, and chrono's
/// `format` parses its pattern on every call. Years outside 0–9999 and leap seconds go through
/// chrono (they never name a slot).
pub fn fmt_slot_instant(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let mut out = String::with_capacity(20);
    let year = year as u32;
    for (n, then) in [
        (year / 100, ""),
        (year % 100, "-"),
        (t.month(), "-"),
        (t.day(), "T"),
        (t.hour(), ":"),
        (t.minute(), ":"),
        (t.second(), "Z"),
    ] {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
        out.push_str(then);
    }
    out
}

/// Other instants: RFC 3339 with `Z`, millisecond fractions.
pub fn fmt_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub mod slot_instant {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::fmt_slot_instant(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

pub mod instant {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::fmt_instant(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.collect_str(&super::super::fmt_instant(*t)),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_only_in_the_stated_form() {
        assert!(LocalDate::parse("2026-12-05").is_ok());
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-1-01",
            "20261201",
            "2026-12-05T",
            "",
        ] {
            assert!(LocalDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_parse_as_chronos_own_parser_reads_them() {
        for y in [0, 1900, 1999, 2000, 2023, 2024, 2100, 9999] {
            for m in 0..=13 {
                for d in 0..=32 {
                    let s = format!("{y:04}-{m:02}-{d:02}");
                    let ours = LocalDate::parse(&s).ok().map(LocalDate::naive);
                    let chrono = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
                    assert_eq!(ours, chrono, "{s}");
                }
            }
        }
    }

    #[test]
    fn times_parse_only_in_the_stated_form() {
        assert_eq!(WallTime::parse("19:15").unwrap().minutes(), 19 * 60 + 15);
        assert_eq!(WallTime::parse("24:00").unwrap(), WallTime::MIDNIGHT_END);
        assert!(WallTime::parse_start("24:00").is_err());
        for bad in ["25:00", "24:01", "9:00", "19:60", "19-00", "1900", ""] {
            assert!(WallTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gap_times_have_no_start_but_boundaries_move_past_the_gap() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let d = LocalDate::parse("2027-03-28").unwrap();
        assert!(start_instant(tz, d, WallTime::parse("02:30").unwrap()).is_none());
        let b = boundary_instant(tz, d, WallTime::parse("02:30").unwrap());
        assert_eq!(fmt_slot_instant(b), "2027-03-28T01:00:00Z");
    }

    #[test]
    fn ambiguous_times_use_the_first_occurrence() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let d = LocalDate::parse("2027-10-31").unwrap();
        let t = start_instant(tz, d, WallTime::parse("02:30").unwrap()).unwrap();
        assert_eq!(fmt_slot_instant(t), "2027-10-31T00:30:00Z");
    }

    proptest::proptest! {
        /// The same text as chrono's pattern, over any instant from year 0 to 9999.
        #[test]
        fn slot_instants_are_written_as_chrono_writes_them(
            secs in -62_167_219_200i64..=253_402_300_799, // 0000-01-01 to 9999-12-31T23:59:59
        ) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let chrono = t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            proptest::prop_assert_eq!(fmt_slot_instant(t), chrono);
        }
    }

    #[test]
    fn slot_instants_outside_four_digit_years_still_format() {
        let t = DateTime::from_timestamp(253_402_300_800, 0).unwrap(); // 10000-01-01
        assert_eq!(
            fmt_slot_instant(t),
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
        let t = Utc.with_ymd_and_hms(2026, 12, 5, 7, 5, 9).unwrap();
        assert_eq!(fmt_slot_instant(t), "2026-12-05T07:05:09Z");
    }
}
