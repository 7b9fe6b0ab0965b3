//! JSON integers as JSON Schema counts them: `7` and `7.0` are the same integer, `7.5` is none.
//! For `#[serde(deserialize_with = "crate::wire::int::exact")]` on `i64` members (and
//! `int::option` on `Option<i64>` ones). An integer beyond `i64` (`9223372036854775808`, `1e30`)
//! is still an integer, of the right type: it reads as the nearest `i64`, which every member's
//! range check then refuses with `422` (a `400` is for the wrong type only).
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // Integral (finite, no fraction): the nearest i64 (`as` saturates).
                if v.is_finite() && v.fract() == 0.0 {
                    Ok(Int(v as i64))
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

pub fn exact<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Int::deserialize(d).map(|i| i.0)
}

pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<Int>::deserialize(d).map(|o| o.map(|i| i.0))
}

/// An optional member that, when present, must be an integer (`null` is the wrong type).
pub fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    exact(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::exact")]
        n: i64,
        #[serde(default, deserialize_with = "super::option")]
        o: Option<i64>,
    }

    fn parse(v: serde_json::Value) -> Option<(i64, Option<i64>)> {
        serde_json::from_value::<T>(v).ok().map(|t| (t.n, t.o))
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        assert_eq!(parse(json!({"n": 7})), Some((7, None)));
        assert_eq!(parse(json!({"n": 7.0, "o": -2.0})), Some((7, Some(-2))));
        assert_eq!(parse(json!({"n": -7, "o": null})), Some((-7, None)));
        assert_eq!(parse(json!({"n": 7.5})), None);
        assert_eq!(parse(json!({"n": "7"})), None);
        // Integers past i64 read as its bounds, which every range check refuses.
        assert_eq!(parse(json!({"n": 1e300})), Some((i64::MAX, None)));
        assert_eq!(parse(json!({"n": -1e300})), Some((i64::MIN, None)));
        assert_eq!(
            parse(json!({"n": u64::MAX, "o": 1e19})),
            Some((i64::MAX, Some(i64::MAX)))
        );
    }
}
