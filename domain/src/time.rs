//! Fast reading of the UTC timestamps the store writes (`2026-11-22T16:38:00.264825918Z`).
//!
//! Replaying events parses two timestamps or more per event; chrono's general RFC 3339 parser
//! was a third of all decoding work, so the exact shape Minqing writes is read by hand and
//! anything else falls back to chrono.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserializer, Serializer};

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` directly, and any other RFC 3339 time through chrono.
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    fast(s).or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

fn fast(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[b.len() - 1] != b'Z'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac)? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year as i32, digits(&b[5..7])?, digits(&b[8..10])?)?
        .and_hms_nano_opt(
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
            nanos,
        )
        .map(|t| t.and_utc())
}

/// `#[serde(with = "crate::time::utc")]`: written as chrono writes it, read with [`parse_utc`].
pub mod utc {
    use super::*;

    /// Writes the time as chrono's serde does (RFC 3339, `Z`).
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(t, s)
    }

    /// Reads an RFC 3339 time.
    ///
    /// # Errors
    /// When the text is not an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(Visitor)
    }

    /// Reads the text where it lies, without copying it into a `String` first.
    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 time")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_utc(text).ok_or_else(|| E::custom(format!("`{text}` is not an RFC 3339 time")))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_shapes_minqing_writes_and_others_parse_like_chrono() {
        for s in [
            "2026-11-22T16:38:00.264825918Z",
            "2026-11-22T16:38:00Z",
            "2026-11-22T16:38:00.5Z",
            "2024-02-29T23:59:59.999999Z",
            "2026-11-23T00:36:24+08:00",
            "2026-11-22T16:38:00.123-05:30",
        ] {
            let chrono = DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok();
            assert_eq!(parse_utc(s), chrono, "{s}");
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for s in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T16:38:00.Z",
            "2026-11-22T16:38:0xZ",
        ] {
            assert_eq!(parse_utc(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn every_time_chrono_writes_reads_back(secs in 0i64..4_102_444_800, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).expect("in range");
            let text = serde_json::to_string(&t).expect("serialises");
            prop_assert_eq!(parse_utc(text.trim_matches('"')), Some(t));
        }
    }
}
