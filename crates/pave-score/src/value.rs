//! Borrowed views of the values a condition compares, and the coercions between them:
//! numeric strings as numbers, RFC 3339 strings as instants. Borrowing keeps the hot
//! path free of `Value` clones; an entity is scored against many scorecards.

use serde_json::{Map, Value};

/// A property's (or a condition value's) value, borrowed from the entity or the
/// scorecard. `Null` is both "absent" and JSON `null`: users cannot tell them apart
/// in a Component and Port treats them alike.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    List(List<'a>),
    Object(&'a Map<String, Value>),
}

/// A list is either JSON (spec and properties) or the entity's own tags.
#[derive(Clone, Copy, Debug)]
pub(crate) enum List<'a> {
    Json(&'a [Value]),
    Strings(&'a [String]),
}

impl<'a> List<'a> {
    pub(crate) fn len(self) -> usize {
        match self {
            List::Json(items) => items.len(),
            List::Strings(items) => items.len(),
        }
    }

    pub(crate) fn get(self, index: usize) -> Option<Val<'a>> {
        match self {
            List::Json(items) => items.get(index).map(Val::of),
            List::Strings(items) => items.get(index).map(|s| Val::Str(s)),
        }
    }

    /// `any` that stops at the first error, so a list with an element of the wrong
    /// type reports it instead of quietly skipping it.
    pub(crate) fn try_any<E>(
        self,
        mut predicate: impl FnMut(Val<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        match self {
            List::Json(items) => {
                for item in items {
                    if predicate(Val::of(item))? {
                        return Ok(true);
                    }
                }
            }
            List::Strings(items) => {
                for item in items {
                    if predicate(Val::Str(item))? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    pub(crate) fn any(self, mut predicate: impl FnMut(Val<'a>) -> bool) -> bool {
        self.try_any::<()>(|v| Ok(predicate(v))).unwrap_or(false)
    }
}

impl<'a> Val<'a> {
    pub(crate) fn of(value: &'a Value) -> Val<'a> {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            // Every JSON number has an f64 value; integers beyond 2^53 lose precision,
            // which no scorecard threshold needs.
            Value::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
            Value::String(s) => Val::Str(s),
            Value::Array(items) => Val::List(List::Json(items)),
            Value::Object(map) => Val::Object(map),
        }
    }

    /// For error messages: "a string", "an array", ...
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Val::Null => "absent",
            Val::Bool(_) => "a boolean",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::List(_) => "an array",
            Val::Object(_) => "an object",
        }
    }

    /// Port's emptiness: absent, null, "", [] and {}. Numbers and booleans never are.
    pub(crate) fn is_empty(self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.is_empty(),
            Val::List(list) => list.len() == 0,
            Val::Object(map) => map.is_empty(),
            Val::Bool(_) | Val::Num(_) => false,
        }
    }

    /// The value as a number: a number, or a string that spells one.
    pub(crate) fn as_number(self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(n),
            Val::Str(s) => parse_number(s),
            _ => None,
        }
    }
}

/// Equality with pave's coercions: a number equals a string that spells it (Kubernetes
/// annotations are strings, Port properties are typed), a boolean equals "true" or
/// "false", arrays equal element-wise, objects by JSON equality. Absent equals nothing.
pub(crate) fn loosely_equal(a: Val<'_>, b: Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => false,
        (Val::Num(x), other) | (other, Val::Num(x)) => other.as_number() == Some(x),
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Bool(x), Val::Str(s)) | (Val::Str(s), Val::Bool(x)) => s == bool_str(x),
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len()
                && (0..x.len()).all(|i| match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => loosely_equal(p, q),
                    _ => false,
                })
        }
        (Val::Object(x), Val::Object(y)) => x == y,
        _ => false,
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A decimal number as JSON or YAML spells one (`81`, `-0.5`, `1e3`, `+2`). Rust's
/// `f64::from_str` alone would also take `inf` and `NaN`, which are not numbers to a
/// user comparing coverage.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// An instant: seconds since the Unix epoch and nanoseconds. Ordered as a tuple.
pub(crate) type Instant = (i64, u32);

/// An RFC 3339 date-time (`2024-06-01T12:00:00Z`, `2024-06-01T21:00:00.5+09:00`), or a
/// full-date (`2024-06-01`, midnight UTC) because people write those in YAML. A time
/// without an offset is refused: it names no instant.
///
/// Written by hand rather than pulling in a date crate: the engine only orders
/// instants, and this is the one format Port and Kubernetes use.
pub(crate) fn parse_date(s: &str) -> Option<Instant> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)? as i64;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some((days * 86_400, 0));
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    // 60 is a leap second, which RFC 3339 allows.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Digits past nanoseconds are dropped, not rounded.
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let count = i - start;
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let hours = digits(b, i + 1, 2)?;
            let minutes = digits(b, i + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset;
    Some((seconds, nanos))
}

fn digits(b: &[u8], at: usize, count: usize) -> Option<u32> {
    let slice = b.get(at..at + count)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_yaml_spells_them() {
        assert_eq!(parse_number("81"), Some(81.0));
        assert_eq!(parse_number("-0.5"), Some(-0.5));
        assert_eq!(parse_number("+2"), Some(2.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        for not_a_number in [
            "", "-", "inf", "NaN", "81%", " 81", "1e", "0x10", "1.2.3", "e5",
        ] {
            assert_eq!(parse_number(not_a_number), None, "{not_a_number:?}");
        }
    }

    #[test]
    fn rfc3339_dates_order_as_instants() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_date("1970-01-01"), Some((0, 0)));
        assert_eq!(parse_date("2000-03-01T00:00:00Z"), Some((951_868_800, 0)));
        assert_eq!(
            parse_date("2024-06-01T09:00:00+09:00"),
            parse_date("2024-06-01T00:00:00Z")
        );
        assert_eq!(
            parse_date("2024-06-01T00:00:00.123Z"),
            Some((1_717_200_000, 123_000_000))
        );
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some((-1, 0)));
        assert!(parse_date("2024-02-29").is_some());
        for not_a_date in [
            "2023-02-29",
            "2024-13-01",
            "2024-06-01T00:00:00",
            "2024-06-01T24:00:00Z",
            "2024-06-01T00:00:00.Z",
            "2024-6-1",
            "yesterday",
            "81",
            "2024-06-01T00:00:00+0900",
        ] {
            assert_eq!(parse_date(not_a_date), None, "{not_a_date:?}");
        }
    }
}
